"""The customer chat page at ``/`` in real headless Chromium against the real app (MiniLM, demo articles).

Every check is on what the customer sees (the DOM) or on the API transcript behind it, and waits with
Playwright's auto-retrying ``expect``; nothing sleeps.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.helpers import (
    HANDOFF_STATUS,
    HUMAN_REQUEST,
    STORAGE_KEY,
    api_transcript,
    customer_bubbles,
    open_chat,
    replies,
    send,
    stored_session,
)
from tests.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# A paraphrase from demo/eval/kb_questions.jsonl that MiniLM answers with one clear winner
# (0.82 for account-delete-account, the runner-up article 0.74).
QUESTION = "I want to get rid of my cadence account for good"
ARTICLE_ID = "account-delete-account"
ARTICLE_TITLE = "Close your Cadence account"
INJECTION = '<img src=x onerror="window.__pwned=1"><b>bold</b>'
STREAM_URL = re.compile(r"/api/conversations/[^/]+/stream$")
POLL_URL = re.compile(r"/api/conversations/[^/]+/messages\?after=\d+$")


def test_question_is_a_known_paraphrase() -> None:
    """The question used below stays in the evaluation set with the article it should find."""
    lines = (REPO / "demo" / "eval" / "kb_questions.jsonl").read_text(encoding="utf-8").splitlines()
    pairs = {(row["text"], row["article_id"]) for row in map(json.loads, filter(None, lines))}
    assert (QUESTION, ARTICLE_ID) in pairs


def _expect_bold_as_in_the_passage(page: Page) -> list[str]:
    """The answer's **menu names** are shown in bold, without the asterisks; returns the bold words."""
    (stored,) = [m for m in api_transcript(page)["messages"] if m["kind"] == "answer"]
    bold = re.findall(r"\*\*(.+?)\*\*", stored["citations"][0]["passage"])
    answer = replies(page, "answer")
    expect(answer.locator(".msg__bubble strong")).to_have_text(bold)
    expect(answer.locator(".msg__bubble")).not_to_contain_text("**")
    return bold


def test_menu_names_in_an_answer_are_bold(page: Page) -> None:
    open_chat(page)
    send(page, "how do I cancel my subscription")
    expect(replies(page, "answer")).to_have_count(1)
    assert "Subscription" in _expect_bold_as_in_the_passage(page)


def test_question_gets_a_cited_answer_that_links_to_the_article(page: Page) -> None:
    open_chat(page)
    send(page, QUESTION)

    expect(customer_bubbles(page)).to_have_text([QUESTION])
    answer = replies(page, "answer")
    expect(answer).to_have_count(1)
    link = answer.locator("a.citation__title")
    expect(link).to_have_text(ARTICLE_TITLE)
    expect(link).to_have_attribute("href", re.compile(rf"/help/articles/{ARTICLE_ID}$"))
    expect(answer.get_by_text("Did this help?")).to_be_visible()
    expect(page.get_by_label("Your message")).to_have_value("")
    _expect_bold_as_in_the_passage(page)

    with page.expect_popup() as popup:
        link.click()
    article = popup.value
    expect(article).to_have_url(re.compile(rf"/help/articles/{ARTICLE_ID}$"))
    expect(article.locator("h1")).to_have_text(ARTICLE_TITLE)


def test_asking_for_a_person_hands_off_and_stays_with_the_team(page: Page) -> None:
    open_chat(page)
    status = page.locator("#status[role='status']")  # hidden by CSS while empty
    expect(status).to_be_empty()

    with page.expect_request(STREAM_URL):  # from now on the agent's replies stream in
        send(page, HUMAN_REQUEST)
    expect(replies(page, "handoff")).to_have_count(1)
    expect(status).to_have_text(HANDOFF_STATUS)

    # The next message waits for the agent: the page must keep saying so.
    send(page, "Thanks, I'll wait here.")
    expect(customer_bubbles(page)).to_have_text([HUMAN_REQUEST, "Thanks, I'll wait here."])
    expect(status).to_have_text(HANDOFF_STATUS)
    assert api_transcript(page)["status"] == "human"

    with page.expect_request(STREAM_URL):  # a restored conversation that is with the team streams again
        page.reload()
    expect(status).to_have_text(HANDOFF_STATUS)


def test_when_the_stream_fails_the_page_polls_for_the_agent(page: Page) -> None:
    page.route(STREAM_URL, lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": {"code": "unavailable", "message": "no streams here"}}'))
    open_chat(page)
    send(page, HUMAN_REQUEST)
    expect(page.locator("#status")).to_have_text(HANDOFF_STATUS)
    with page.expect_request(POLL_URL):
        pass  # the fallback: the page polls for the agent's reply
    with page.expect_request(POLL_URL):
        pass  # and keeps polling
    expect(page.get_by_role("alert")).to_be_hidden()  # the customer is not bothered with it


def test_markup_in_a_message_is_shown_as_text_never_run(page: Page) -> None:
    open_chat(page)
    send(page, INJECTION)

    expect(customer_bubbles(page)).to_have_text([INJECTION])
    # Wait for the bot's turn too, so an injected <img> would have had its time to fail and fire onerror.
    expect(page.locator("#messages li[data-sender='bot']:not(.msg--welcome)")).not_to_have_count(0)
    expect(page.locator("#messages img")).to_have_count(0)
    expect(page.locator("#messages b")).to_have_count(0)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


def test_a_blank_message_is_not_sent(page: Page) -> None:
    open_chat(page)
    error = page.get_by_role("alert")
    expect(error).to_be_hidden()

    send(page, "   ")
    expect(error).to_be_visible()
    expect(error).to_have_text("Please type a question first.")
    page.get_by_label("Your message").press("Enter")
    expect(error).to_have_text("Please type a question first.")
    expect(page.locator("#messages li.msg--customer")).to_have_count(0)
    assert stored_session(page) is None, "no conversation should be created for a blank message"

    send(page, QUESTION)
    expect(customer_bubbles(page)).to_have_text([QUESTION])
    expect(error).to_be_hidden()


def test_reload_restores_the_conversation_and_new_conversation_clears_it(page: Page) -> None:
    open_chat(page)
    send(page, QUESTION)
    expect(replies(page, "answer")).to_have_count(1)
    session = stored_session(page)

    page.reload()
    expect(customer_bubbles(page)).to_have_text([QUESTION])
    answer = replies(page, "answer")
    expect(answer).to_have_count(1)
    expect(answer.locator("a.citation__title")).to_have_text(ARTICLE_TITLE)
    assert stored_session(page) == session

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#messages li")).to_have_count(1)
    expect(page.locator("#messages li.msg--welcome")).to_be_visible()
    assert stored_session(page) is None

    page.reload()
    expect(page.locator("#messages li.msg--welcome")).to_be_visible()
    expect(page.locator("#messages li")).to_have_count(1)


def test_a_server_error_on_reload_keeps_the_conversation(page: Page) -> None:
    open_chat(page)
    send(page, QUESTION)
    expect(replies(page, "answer")).to_have_count(1)
    session = stored_session(page)

    conversation_url = re.compile(r"/api/conversations/[^/?]+$")
    page.route(conversation_url, lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": {"code": "unavailable", "message": "restarting"}}'))
    page.reload()
    expect(page.get_by_role("alert")).to_have_text(
        "Your conversation could not be loaded right now. Reload the page to try again.")
    assert stored_session(page) == session, "a server hiccup must not throw the customer's token away"

    page.unroute(conversation_url)
    page.reload()
    expect(customer_bubbles(page)).to_have_text([QUESTION])
    expect(page.get_by_role("alert")).to_be_hidden()

    # A conversation the server does not know (4xx) is dropped quietly and the page starts afresh.
    page.evaluate("([key, value]) => window.localStorage.setItem(key, value)",
                  [STORAGE_KEY, json.dumps({"id": "no-such-conversation", "token": "ct_invalid"})])
    page.reload()
    expect(page.locator("#messages li")).to_have_count(1)
    page.wait_for_function("key => window.localStorage.getItem(key) === null", arg=STORAGE_KEY)
    expect(page.get_by_role("alert")).to_be_hidden()


def test_no_on_an_answer_records_unhelpful_feedback(page: Page) -> None:
    open_chat(page)
    send(page, QUESTION)
    answer = replies(page, "answer")
    expect(answer).to_have_count(1)

    answer.get_by_role("button", name="No").click()
    expect(answer.locator(".feedback")).to_have_text("Thanks, noted.")
    expect(answer.get_by_role("button")).to_have_count(0)

    answers = [m for m in api_transcript(page)["messages"] if m["kind"] == "answer"]
    assert [m["feedback"] for m in answers] == ["unhelpful"]

    page.reload()  # the recorded feedback is shown again instead of the buttons
    answer = replies(page, "answer")
    expect(answer.locator(".feedback")).to_have_text("Thanks, noted.")
    expect(answer.get_by_role("button")).to_have_count(0)


def test_a_send_that_fails_during_a_restart_is_retried_until_stored_once(page: Page) -> None:
    open_chat(page)
    send(page, "hello")  # the conversation exists before the "restart"
    expect(replies(page, "respond")).to_have_count(1)
    messages_url = re.compile(r"/api/conversations/[^/]+/messages$")
    attempts: list[str] = []

    def restarting(route: Route) -> None:
        attempts.append(json.loads(route.request.post_data or "{}")["client_message_id"])
        if len(attempts) == 1:
            route.fetch()  # the server stores and answers it...
            route.abort("connectionreset")  # ...but the process dies before the answer gets out
        elif len(attempts) <= 3:  # then the service is still starting
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": {"code": "unavailable", "message": "restarting"}}')
        else:
            route.continue_()

    page.route(messages_url, restarting)
    send(page, QUESTION)
    expect(page.get_by_role("alert")).to_contain_text("Reconnecting")
    expect(replies(page, "answer")).to_have_count(1)
    expect(page.get_by_role("alert")).to_be_hidden()
    assert len(attempts) == 4 and len(set(attempts)) == 1  # always the same client_message_id
    stored = [m["text"] for m in api_transcript(page)["messages"] if m["sender"] == "customer"]
    assert stored == ["hello", QUESTION]  # stored once, whatever the retries
