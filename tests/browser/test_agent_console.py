"""The agent console at ``/agent`` in real headless Chromium against the real app: logging in and out, the
queue filters, every action on a handoff, delivery retries, escaping and the live connection."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TELEGRAM_SECRET
from tests.browser.helpers import DeskApi, log_in, open_handoff, queue_item
from tests.fakes.telegram_api import FakeTelegram

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TOKEN_KEY = "frontdesk.staff.token"
INJECTION = '<img src=x onerror="window.__pwned=1"><b>bold</b> I want to talk to a real person'
DOUBLE_CHARGE = "I was charged twice this month, I want my money back"


def test_login_errors_session_and_logout(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    console = new_page()
    console.goto("/agent")
    console.get_by_label("Username").fill(ann.username)
    console.get_by_label("Password").fill("not-the-password")
    console.get_by_role("button", name="Log in").click()
    error = console.get_by_test_id("login-error")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(console.get_by_test_id("login-view")).to_be_visible()

    log_in(console, ann)
    token = console.evaluate("key => sessionStorage.getItem(key)", TOKEN_KEY)
    assert token and token.startswith("st_")
    assert token not in console.url
    console.reload()  # the session survives a reload of the tab
    expect(console.get_by_test_id("me")).to_have_text("Ann Agent · agent")
    expect(console.get_by_test_id("live-indicator")).to_have_text("live")

    console.get_by_role("button", name="Log out").click()
    expect(console.get_by_test_id("login-view")).to_be_visible()
    assert console.evaluate("key => sessionStorage.getItem(key)", TOKEN_KEY) is None
    assert desk_api.http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_staff_without_the_agent_role_are_turned_away(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    editor = desk_api.staff("editor", "Ed Editor")
    console = new_page()
    console.goto("/agent")
    console.get_by_label("Username").fill(editor.username)
    console.get_by_label("Password").fill(editor.password)
    console.get_by_role("button", name="Log in").click()
    expect(console.get_by_test_id("login-error")).to_have_text(
        "This account cannot use the agent desk (it needs the agent or supervisor role).")
    expect(console.get_by_test_id("handoff-detail")).to_be_hidden()


def test_queue_filters(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent", skills=["refunds"])
    _, billing_id = desk_api.handoff("Lee", DOUBLE_CHARGE)
    _, technical_id = desk_api.handoff("Kim")
    billing = desk_api.get(f"/api/handoffs/{billing_id}")["handoff"]
    assert (billing["team"], billing["urgency"]) == ("billing", "high"), billing
    console = new_page()
    log_in(console, ann)
    items = console.get_by_test_id("queue-item")
    expect(queue_item(console, billing_id)).to_be_visible()
    expect(queue_item(console, technical_id)).to_be_visible()
    expect(queue_item(console, billing_id).get_by_test_id("urgency-badge")).to_have_text("high")

    team, urgency, state = (console.get_by_test_id(f"filter-{name}") for name in ("team", "urgency", "state"))
    mine = console.get_by_label("Mine")
    team.select_option(label="Billing")
    expect(queue_item(console, technical_id)).to_have_count(0)
    expect(queue_item(console, billing_id)).to_be_visible()
    assert all(t.startswith("Billing · T") for t in items.get_by_test_id("queue-team").all_text_contents())

    team.select_option(label="All teams")
    urgency.select_option(label="High")
    expect(queue_item(console, technical_id)).to_have_count(0)
    expect(queue_item(console, billing_id)).to_be_visible()
    assert set(items.get_by_test_id("urgency-badge").all_text_contents()) == {"high"}
    urgency.select_option(label="Any")

    mine.check()
    expect(items).to_have_count(0)
    expect(console.get_by_test_id("queue-empty")).to_be_visible()
    mine.uncheck()
    open_handoff(console, technical_id)
    console.get_by_test_id("claim").click()
    expect(console.get_by_test_id("detail-state")).to_have_text(f"Claimed by {ann.username}")
    mine.check()
    expect(items).to_have_count(1)
    expect(queue_item(console, technical_id)).to_be_visible()

    mine.uncheck()
    state.select_option(label="Open")
    expect(queue_item(console, technical_id)).to_have_count(0)
    expect(queue_item(console, billing_id)).to_be_visible()
    state.select_option(label="Claimed")
    expect(queue_item(console, billing_id)).to_have_count(0)
    expect(queue_item(console, technical_id)).to_be_visible()


def test_notes_intent_transfer_escalate_reopen(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    _, handoff_id = desk_api.handoff("Kim", "I want to talk to a real person about my bill")
    console = new_page()
    log_in(console, ann)
    open_handoff(console, handoff_id)
    console.get_by_test_id("claim").click()
    expect(console.get_by_test_id("detail-state")).to_have_text(f"Claimed by {ann.username}")

    console.get_by_label("Internal note").fill("Customer is on the family plan")
    console.get_by_role("button", name="Add note").click()
    expect(console.get_by_test_id("note")).to_have_count(1)
    expect(console.get_by_test_id("note")).to_contain_text("Customer is on the family plan")
    expect(console.get_by_label("Internal note")).to_have_value("")

    console.get_by_test_id("intent-select").select_option("billing_charge_dispute")
    console.get_by_role("button", name="Set intent").click()
    expect(console.get_by_test_id("detail-corrected-intent")).to_have_text("billing_charge_dispute")

    console.get_by_role("button", name="Transfer…").click()
    form = console.get_by_test_id("transfer-form")
    form.get_by_label("Team").select_option("billing")  # labelled "Billing (off duty)" out of hours
    form.get_by_label("Reason").fill("it is about a charge")
    form.get_by_role("button", name="Move").click()
    expect(form).to_be_hidden()
    expect(console.get_by_test_id("detail-team")).to_have_text("Billing · tier 1")
    expect(console.get_by_test_id("detail-state")).to_have_text("Open")
    expect(console.get_by_test_id("note").last).to_contain_text("to billing tier 1")
    expect(console.get_by_test_id("note").last).to_contain_text("it is about a charge")

    console.get_by_test_id("claim").click()
    console.get_by_test_id("escalate").click()
    expect(console.get_by_test_id("detail-team")).to_have_text("Billing · tier 2")
    expect(console.get_by_test_id("why-not")).to_have_text("You can't take this one: this handoff needs a tier 2 agent")
    console.get_by_test_id("claim").click()
    expect(console.get_by_test_id("action-error")).to_have_text("this handoff needs a tier 2 agent")

    detail = desk_api.get(f"/api/handoffs/{handoff_id}")
    assert (detail["handoff"]["team"], detail["handoff"]["tier"]) == ("billing", 2)
    assert detail["handoff"]["corrected_intent"] == "billing_charge_dispute"
    assert next(n["text"] for n in detail["notes"]) == "Customer is on the family plan"

    # A supervisor resolves it; the agent's console follows live and offers to reopen.
    sue = desk_api.staff("supervisor", "Sue Supervisor")
    assert desk_api.http.post(f"/api/handoffs/{handoff_id}/resolve",
                              headers={"Authorization": f"Bearer {sue.token}"}).status_code == 200
    expect(console.get_by_test_id("detail-state")).to_have_text("Resolved")
    expect(console.get_by_test_id("resolve")).to_be_hidden()
    expect(console.get_by_test_id("send-reply")).to_be_disabled()
    console.get_by_test_id("reopen").click()
    expect(console.get_by_test_id("detail-state")).to_have_text("Open")
    expect(console.get_by_test_id("send-reply")).to_be_enabled()


def test_an_undelivered_agent_message_is_shown_kept_and_retried(
        new_page: Callable[[], Page], desk_api: DeskApi, fake_telegram: FakeTelegram) -> None:
    """A Telegram customer; the Bot API refuses the agent's reply; the console shows it; Retry delivers it."""
    ann = desk_api.staff("agent", "Ann Agent")
    chat = 700_000 + uuid.uuid4().int % 100_000
    name = f"Tele {uuid.uuid4().hex[:6]}"
    update = {"update_id": chat, "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": chat, "type": "private", "first_name": name},
        "from": {"id": chat, "is_bot": False, "first_name": name}, "text": "I want to talk to a real person"}}
    webhook = desk_api.http.post("/telegram/webhook", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert webhook.status_code == 200, webhook.text
    fake_telegram.wait_sent(str(chat))  # the handoff notice reached the customer
    (handoff,) = [h for h in desk_api.get("/api/handoffs?with_context=true")
                  if h["channel"] == "telegram" and h["context"]["customer"]["display_name"] == name]
    fake_telegram.log.fail_next("sendMessage", 1, status=400, reason="Bad Request: chat not found")

    console = new_page()
    log_in(console, ann)
    open_handoff(console, handoff["id"])
    console.get_by_label("Reply to the customer").fill("Are you still there?")
    console.get_by_test_id("send-reply").click()
    message = console.locator("[data-testid='transcript-message'][data-sender='agent']")
    expect(message.get_by_test_id("undelivered")).to_contain_text("chat not found", ignore_case=True)
    assert [c.params["text"] for c in fake_telegram.sent(str(chat))][-1] != "Are you still there?"

    message.get_by_role("button", name="Retry").click()
    expect(message.get_by_test_id("undelivered")).to_have_count(0)
    delivered = fake_telegram.wait_sent(str(chat), count=2)
    assert delivered[-1].params["text"].endswith("Are you still there?")
    expect(console.get_by_test_id("action-error")).to_be_hidden()


def test_customer_text_is_shown_as_text_in_the_console(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    _, handoff_id = desk_api.handoff("<b>Kim</b>", INJECTION)
    console = new_page()
    log_in(console, ann)
    expect(queue_item(console, handoff_id).get_by_test_id("queue-summary")).to_have_text(INJECTION)
    open_handoff(console, handoff_id)
    expect(console.get_by_test_id("detail-title")).to_have_text(f"#{handoff_id} · {INJECTION}")
    expect(console.get_by_test_id("customer-name")).to_have_text("<b>Kim</b>")
    expect(console.locator("[data-testid='transcript-message'][data-sender='customer'] [data-testid='message-text']")
           ).to_have_text(INJECTION)
    expect(console.locator("#desk-view img, #desk-view b")).to_have_count(0)
    assert console.evaluate("() => typeof window.__pwned") == "undefined"


def test_the_live_indicator_reconnects(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    console = new_page()
    stream = re.compile(r"/api/desk/stream$")
    console.route(stream, lambda route: route.fulfill(status=503, body="{}", content_type="application/json"))
    console.goto("/agent")
    console.get_by_label("Username").fill(ann.username)
    console.get_by_label("Password").fill(ann.password)
    console.get_by_role("button", name="Log in").click()
    indicator = console.get_by_test_id("live-indicator")
    expect(indicator).to_have_text("reconnecting…")
    console.unroute(stream)
    expect(indicator).to_have_text("live")  # back-off: 1 s, 2 s, 4 s ... well within the timeout

    # New handoffs now show up without a reload.
    _, handoff_id = desk_api.handoff("Kim")
    expect(queue_item(console, handoff_id)).to_be_visible()


def test_an_agent_links_two_profiles_of_one_customer(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    tag = uuid.uuid4().hex[:8]
    earlier = desk_api.http.post("/api/conversations", json={"name": f"Rosa {tag}", "email": f"rosa-{tag}@example.com"})
    earlier_id = earlier.json()["conversation_id"]
    _, handoff_id = desk_api.handoff(f"Rosa D {tag}")
    console = new_page()
    log_in(console, ann)
    open_handoff(console, handoff_id)
    expect(console.get_by_test_id("customer-earlier")).to_have_text("None: first contact.")

    console.get_by_label("Link another profile").fill(f"rosa-{tag}@")
    console.get_by_test_id("link-find").click()
    result = console.get_by_test_id("link-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text(f"rosa-{tag}@example.com")
    result.get_by_test_id("link-merge").click()

    expect(console.get_by_test_id("customer-earlier").locator("li")).to_have_count(1)
    expect(console.get_by_test_id("customer-email")).to_have_text(f"rosa-{tag}@example.com")
    expect(console.get_by_test_id("link-results").locator("li")).to_have_count(0)
    detail = desk_api.get(f"/api/handoffs/{handoff_id}")
    assert [c["conversation_id"] for c in detail["customer"]["conversations"]] == [earlier_id]
