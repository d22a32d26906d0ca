"""A customer and the agents, end to end, in real headless Chromium against the real app (MiniLM).

The customer uses the chat page at ``/``; agents and supervisors use the console at ``/agent`` in their own
browser contexts. Staff users are made through the admin API. Everything that should arrive live is
checked without reloading the page (a flag set in the page must survive), and every wait is an
auto-retrying ``expect``; nothing sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    HANDOFF_STATUS,
    DeskApi,
    assert_not_reloaded,
    customer_bubbles,
    log_in,
    mark_page,
    open_chat,
    open_handoff,
    queue_item,
    replies,
    send,
    stored_session,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# MiniLM does not understand this (a clarifying question), then the customer asks for a person, urgently.
NOT_UNDERSTOOD = "Can you recommend a good pizza place nearby?"
URGENT_HUMAN_REQUEST = "This is urgent, I want to talk to a real person"
URGENT_REASON = "the customer says it is urgent ('urgent')"
# A paraphrase from demo/eval/kb_questions.jsonl that MiniLM answers with one clear winner.
KB_QUESTION = "I want to get rid of my cadence account for good"
AGENT_REPLY = "Hi, this is Ann. Let me look into this for you."
POLL_URL = re.compile(r"/api/conversations/[^/]+/messages\?after=\d+$")


def test_customer_is_handed_to_an_agent_live_and_back_to_the_bot(
        page: Page, new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    console = new_page()
    log_in(console, ann)
    mark_page(console)

    # The customer: not understood once, then asks for a person -> handoff.
    open_chat(page)
    mark_page(page)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if POLL_URL.search(request.url) else None)
    send(page, NOT_UNDERSTOOD)
    expect(replies(page, "clarify")).to_have_count(1)
    send(page, URGENT_HUMAN_REQUEST)
    expect(replies(page, "handoff")).to_have_count(1)
    expect(page.locator("#status")).to_have_text(HANDOFF_STATUS)

    # The handoff carries the whole context (checked through the agents' API).
    session = stored_session(page)
    assert session is not None
    handoff = desk_api.handoff_for(session["id"])
    handoff_id = handoff["id"]
    context = handoff["context"]
    assert handoff["state"] == "open"
    assert handoff["reason"] == context["reason"] == "customer_request"
    assert URGENT_REASON in context["urgency_reasons"]
    assert [(line["sender"], line["text"]) for line in context["transcript"] if line["sender"] == "customer"] == [
        ("customer", NOT_UNDERSTOOD), ("customer", URGENT_HUMAN_REQUEST)]
    assert [line["sender"] for line in context["transcript"]] == ["customer", "bot", "customer"]
    assert [turn["message_id"] for turn in context["intents"]] == [
        line["message_id"] for line in context["transcript"] if line["sender"] == "customer"]
    customer = context["customer"]
    assert isinstance(customer["customer_id"], int)
    assert customer["earlier_conversations"] == []
    assert customer["display_name"] is None  # the chat page does not ask for a name
    detail = desk_api.get(f"/api/handoffs/{handoff_id}", ann.token)
    assert [m["kind"] for m in detail["transcript"] if m["sender"] == "bot"] == ["clarify", "handoff"]
    assert detail["csat"] is None

    # The agent sees it arrive in the queue without reloading, with its context, and claims it.
    item = queue_item(console, handoff_id)
    expect(item).to_be_visible()
    expect(item.get_by_test_id("queue-reason")).to_have_text("Customer asked for a person")
    expect(item.get_by_test_id("queue-state")).to_have_text("Open")
    assert_not_reloaded(console)
    open_handoff(console, handoff_id)
    expect(console.get_by_test_id("detail-reason-detail")).to_have_text(handoff["reason_detail"])
    expect(console.get_by_test_id("urgency-reasons")).to_contain_text(URGENT_REASON)
    expect(console.locator("[data-testid='transcript-message'][data-sender='customer']")).to_have_text(
        [re.compile(re.escape(NOT_UNDERSTOOD)), re.compile(re.escape(URGENT_HUMAN_REQUEST))])
    expect(console.get_by_test_id("customer-earlier")).to_have_text("None: first contact.")
    console.get_by_test_id("claim").click()
    expect(console.get_by_test_id("detail-state")).to_have_text(f"Claimed by {ann.username}")
    expect(item.get_by_test_id("queue-state")).to_have_text(f"Claimed by {ann.username}")

    # The reply reaches the customer live, with the agent's name.
    console.get_by_label("Reply to the customer").fill(AGENT_REPLY)
    console.get_by_test_id("send-reply").click()
    agent_message = page.locator("#messages li[data-sender='agent']")
    expect(agent_message.locator(".msg__bubble")).to_have_text(AGENT_REPLY)
    expect(agent_message.locator(".msg__author")).to_have_text("Ann Agent")
    expect(console.get_by_label("Reply to the customer")).to_have_value("")
    expect(console.locator("[data-testid='transcript-message'][data-sender='agent']")).to_contain_text(AGENT_REPLY)
    assert_not_reloaded(page)
    assert len(polls) <= 1, f"the reply should have been streamed, not polled: {polls}"  # 1 = catch-up at open

    # The customer answers; the agent sees it live in the open handoff.
    send(page, "Thanks, that would be great")
    expect(console.locator("[data-testid='transcript-message'][data-sender='customer']")).to_have_count(3)

    # Resolve: the customer is back with the bot and is asked for a rating.
    console.get_by_test_id("resolve").click()
    expect(console.get_by_test_id("detail-state")).to_have_text("Resolved")
    expect(console.get_by_test_id("reopen")).to_be_visible()
    rating = replies(page, "csat_request")
    expect(rating).to_have_count(1)
    expect(page.locator("#status")).to_be_empty()
    assert_not_reloaded(page)
    rating.get_by_role("button", name="4", exact=True).click()
    expect(rating.get_by_test_id("csat")).to_have_text("Thanks for rating us 4/5")
    expect(rating.get_by_role("button")).to_have_count(0)
    assert desk_api.get(f"/api/handoffs/{handoff_id}", ann.token)["csat"] == 4
    expect(console.get_by_test_id("detail-csat")).to_have_text("4/5")  # the console hears about it too

    # And the bot answers knowledge-base questions again.
    send(page, KB_QUESTION)
    expect(replies(page, "answer")).to_have_count(1)
    expect(customer_bubbles(page).last).to_have_text(KB_QUESTION)
    page.reload()  # the rating is remembered
    expect(replies(page, "csat_request").get_by_test_id("csat")).to_have_text("Thanks for rating us 4/5")


def test_two_agents_claiming_the_same_handoff_the_second_sees_the_conflict(
        new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    bob = desk_api.staff("agent", "Bob Agent")
    _, handoff_id = desk_api.handoff("Kim")
    ann_console, bob_console = new_page(), new_page()
    log_in(ann_console, ann)
    log_in(bob_console, bob)
    open_handoff(ann_console, handoff_id)
    open_handoff(bob_console, handoff_id)
    mark_page(bob_console)

    ann_console.get_by_test_id("claim").click()
    expect(ann_console.get_by_test_id("detail-state")).to_have_text(f"Claimed by {ann.username}")
    expect(ann_console.get_by_test_id("claim")).to_be_hidden()
    # Bob's console follows live, but he clicks anyway: the server refuses and says why.
    expect(bob_console.get_by_test_id("detail-state")).to_have_text(f"Claimed by {ann.username}")
    expect(queue_item(bob_console, handoff_id).get_by_test_id("queue-state")).to_have_text(
        f"Claimed by {ann.username}")
    with bob_console.expect_response(lambda r: r.url.endswith(f"/api/handoffs/{handoff_id}/claim")) as claimed:
        bob_console.get_by_test_id("claim").click()
    assert claimed.value.status == 409
    alert = bob_console.get_by_test_id("action-error")
    expect(alert).to_be_visible()
    expect(alert).to_have_text(f"this handoff was already claimed by {ann.username}")
    expect(alert).to_have_attribute("role", "alert")
    assert_not_reloaded(bob_console)

    # Replying or resolving someone else's handoff is refused visibly too.
    bob_console.get_by_label("Reply to the customer").fill("Let me take this one")
    bob_console.get_by_test_id("send-reply").click()
    expect(alert).to_have_text(f"this handoff is claimed by {ann.username}")
    expect(bob_console.get_by_label("Reply to the customer")).to_have_value("Let me take this one")  # kept
    bob_console.get_by_test_id("resolve").click()
    expect(alert).to_contain_text(f"it is claimed by {ann.username}")
    assert desk_api.get(f"/api/handoffs/{handoff_id}")["handoff"]["claimed_by"] == ann.username


def test_supervisor_manages_canned_responses_and_agents_fill_them_in(
        new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    sue = desk_api.staff("supervisor", "Sue Supervisor")
    _, handoff_id = desk_api.handoff("Kim")
    console = new_page()
    log_in(console, sue)

    panel = console.get_by_test_id("canned-panel")
    expect(panel).to_be_hidden()
    console.get_by_role("button", name="Canned responses").click()
    expect(panel).to_be_visible()
    title = f"Greeting {handoff_id}"
    # An unknown placeholder is refused with the server's explanation.
    panel.get_by_label("Title").fill(title)
    panel.get_by_label("Text").fill("Hi {customer}!")
    panel.get_by_role("button", name="Save template").click()
    expect(panel.get_by_test_id("canned-error")).to_contain_text("unknown placeholders {customer}")
    # A good one is saved for the technical team.
    panel.get_by_label("Team").select_option(label="Technical support")
    panel.get_by_label("Text").fill("Hi {customer_name}, this is {agent_name} from the team.")
    panel.get_by_role("button", name="Save template").click()
    expect(panel.get_by_test_id("canned-error")).to_be_hidden()
    template = panel.get_by_test_id("canned-item").filter(has_text=title)
    expect(template).to_have_count(1)
    expect(template).to_contain_text("Technical support")
    # Edited...
    template.get_by_role("button", name="Edit").click()
    expect(panel.get_by_label("Title")).to_have_value(title)
    panel.get_by_label("Text").fill("Hello {customer_name}, {agent_name} here. How can I help?")
    panel.get_by_role("button", name="Save template").click()
    expect(template.locator(".canned-item__body")).to_have_text(
        "Hello {customer_name}, {agent_name} here. How can I help?")
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()

    # ...and used in a reply box: the placeholders are filled for this customer and agent.
    open_handoff(console, handoff_id)
    picker = console.get_by_test_id("canned-select")
    expect(picker.locator("option", has_text=title)).to_have_count(1)
    picker.select_option(label=title)
    expect(console.get_by_label("Reply to the customer")).to_have_value(
        "Hello Kim, Sue Supervisor here. How can I help?")
    expect(picker).to_have_value("")

    # Deleting takes a second click to confirm; the picker forgets it.
    console.get_by_role("button", name="Canned responses").click()
    template.get_by_role("button", name="Delete").click()
    expect(template).to_have_count(1)
    template.get_by_role("button", name="Really delete?").click()
    expect(template).to_have_count(0)
    panel.get_by_role("button", name="Close").click()
    expect(picker.locator("option", has_text=title)).to_have_count(0)


def test_agents_do_not_get_the_canned_responses_panel(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    console = new_page()
    log_in(console, ann)
    expect(console.get_by_role("button", name="Canned responses")).to_be_hidden()
