"""The knowledge editors' page at ``/editor`` in real headless Chromium against the real app (real MiniLM): write an
article, find it in the list with the bot's usage, try a question, rename it and see the help center change, delete
it; who may use the page; article text with HTML shown as text in the preview.

The live server is shared by the whole session: every article here has a unique id and is deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import DeskApi, Staff, bearer

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

SECTION = "Descale the Orbitron espresso machine"
SECTION_TEXT = ("To descale the Orbitron espresso machine, dissolve two spoons of citric acid in the water tank, run "
                "the **Descale** program and rinse the boiler twice with fresh water.")
QUESTION = "How do I descale my Orbitron espresso machine?"
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>not bold</b>'


@pytest.fixture
def article_id(desk_api: DeskApi) -> Iterator[str]:
    """A unique article id; the article is deleted after the test if it still exists."""
    article_id = f"orbitron-descaling-{uuid.uuid4().hex[:8]}"
    yield article_id
    desk_api.http.delete(f"/api/articles/{article_id}", headers=bearer(desk_api.admin))


def log_in_editor(page: Page, staff: Staff) -> None:
    """Log into /editor and wait until the articles are listed."""
    page.goto("/editor")
    expect(page.get_by_test_id("login-view")).to_be_visible()
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("me")).to_contain_text(staff.display_name)
    expect(page.get_by_test_id("article-row").first).to_be_visible()


def row(page: Page, article_id: str) -> Locator:
    return page.locator(f"[data-testid='article-row'][data-article-id='{article_id}']")


def test_write_find_try_rename_and_delete_an_article(new_page: Callable[[], Page], desk_api: DeskApi,
                                                     article_id: str) -> None:
    editor = desk_api.staff("editor", "Edie Editor")
    page = new_page()
    log_in_editor(page, editor)

    # A new article, with a live preview of the section the bot will quote.
    page.get_by_test_id("new-article").click()
    expect(page.get_by_test_id("form-heading")).to_have_text("New article")
    page.get_by_test_id("field-id").fill("Not A Valid Id")
    expect(page.get_by_test_id("form-error")).to_contain_text("lowercase letters, digits and single dashes")
    page.get_by_test_id("field-id").fill(article_id)
    expect(page.get_by_test_id("form-error")).to_be_hidden()
    page.get_by_test_id("field-title").fill("Orbitron espresso machine care")
    page.get_by_test_id("field-tags").fill("orbitron, espresso, descaling")
    page.get_by_test_id("field-team").select_option("technical")
    page.get_by_test_id("field-body").fill(f"Keep your Orbitron in shape.\n\n## {SECTION}\n{SECTION_TEXT}\n")
    sections = page.get_by_test_id("preview-section")
    expect(sections).to_have_count(2)
    expect(sections.nth(1).get_by_test_id("preview-heading")).to_have_text(SECTION)
    expect(sections.nth(1).locator("strong")).to_have_text("Descale")
    expect(page.get_by_test_id("unsaved")).to_be_visible()

    # A body without text is refused with the API's message; the real body saves.
    body = page.get_by_test_id("field-body").input_value()
    page.get_by_test_id("field-body").fill("## Only a heading")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("headings but no text under them")
    page.get_by_test_id("field-body").fill(body)
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("status")).to_have_text("Created “Orbitron espresso machine care”. "
                                                       "The bot can use it from now on.")
    expect(page.get_by_test_id("form-heading")).to_have_text("Edit: Orbitron espresso machine care")
    expect(page.get_by_test_id("field-id")).to_be_disabled()
    expect(page.get_by_test_id("unsaved")).to_be_hidden()

    # It is in the list (found by the filter box), with no usage yet.
    page.get_by_test_id("filter-text").fill("orbitron")
    expect(page.get_by_test_id("article-row")).to_have_count(1)
    listed = row(page, article_id)
    expect(listed.get_by_test_id("article-open")).to_have_text("Orbitron espresso machine care")
    expect(listed.get_by_test_id("article-team")).to_have_text("Technical support")
    expect(listed.get_by_test_id("article-answered")).to_have_text("0")

    # "Try a question": the new article comes first, and the bot would use it.
    page.get_by_test_id("try-text").fill(QUESTION)
    page.get_by_test_id("try-submit").click()
    first = page.get_by_test_id("try-hit").first
    expect(first).to_have_attribute("data-article-id", article_id)
    expect(first.get_by_test_id("try-hit-chosen")).to_be_visible()
    expect(page.get_by_test_id("try-decision")).to_have_attribute("data-kind", "answer")
    expect(page.get_by_test_id("try-detail")).to_contain_text(f"section “{SECTION}”")

    # A customer asks the same and finds the answer unhelpful: the list shows it once refreshed.
    conversation_id, customer = desk_api.customer("Cora")
    turn = desk_api.say(conversation_id, customer, QUESTION)
    assert turn["decision"] == "answer", turn
    assert [c["article_id"] for c in turn["replies"][0]["citations"]] == [article_id]
    reaction = desk_api.http.post(f"/api/conversations/{conversation_id}/messages/{turn['replies'][0]['id']}/feedback",
                                  headers=customer, json={"helpful": False})
    assert reaction.status_code == 200, reaction.text

    # Rename it: the list and the public help center change.
    page.get_by_test_id("field-title").fill("Descaling your Orbitron")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("status")).to_have_text("Saved “Descaling your Orbitron”. "
                                                       "The bot uses the new text from now on.")
    expect(listed.get_by_test_id("article-open")).to_have_text("Descaling your Orbitron")
    expect(listed.get_by_test_id("article-answered")).to_have_text("1")
    expect(listed.get_by_test_id("article-unhelpful")).to_have_text("1")
    expect(listed).to_have_class("usage__row usage__row--attention usage__row--selected")
    with page.expect_popup() as popup:
        page.get_by_test_id("view-in-help").click()
    help_page = popup.value
    expect(help_page.get_by_role("heading", level=1)).to_have_text("Descaling your Orbitron")
    expect(help_page.get_by_role("heading", name=SECTION)).to_be_visible()
    help_page.close()

    # Delete it, after confirming.
    page.get_by_test_id("delete").click()
    expect(page.get_by_test_id("confirm-title")).to_have_text("Delete “Descaling your Orbitron”?")
    page.get_by_test_id("confirm-cancel").click()
    expect(page.get_by_test_id("confirm-dialog")).to_be_hidden()
    expect(listed).to_have_count(1)
    page.get_by_test_id("delete").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("status")).to_have_text("Deleted “Descaling your Orbitron”.")
    expect(listed).to_have_count(0)
    expect(page.get_by_test_id("form-heading")).to_have_text("New article")
    assert desk_api.http.get(f"/api/articles/{article_id}").status_code == 404
    assert page.request.get(f"/help/articles/{article_id}").status == 404


def test_an_agent_is_refused(page: Page, desk_api: DeskApi) -> None:
    agent = desk_api.staff("agent", "Andy Agent")
    page.goto("/editor")
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill(agent.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("This page is for knowledge editors")
    expect(page.locator("#editor-view")).to_be_hidden()


def test_html_in_an_article_is_shown_as_text(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    editor = desk_api.staff("editor", "Ezra Editor")
    page = new_page()
    log_in_editor(page, editor)
    page.get_by_test_id("new-article").click()
    page.get_by_test_id("field-title").fill("Markup <i>test</i>")
    page.get_by_test_id("field-body").fill(f"{INJECTION} and **real bold**\n\n## Heading <u>under</u>\n- {INJECTION}\n")
    preview = page.get_by_test_id("preview")
    expect(page.get_by_test_id("preview-section")).to_have_count(2)
    expect(page.get_by_test_id("preview-heading").first).to_have_text("Markup <i>test</i>")
    expect(page.get_by_test_id("preview-heading").nth(1)).to_have_text("Heading <u>under</u>")
    expect(page.get_by_test_id("preview-body").first).to_have_text(f"{INJECTION} and real bold")
    expect(page.get_by_test_id("preview-body").nth(1).locator("li")).to_have_text(INJECTION)
    expect(preview.locator("strong")).to_have_text("real bold")
    expect(preview.locator("img, script, b, i, u")).to_have_count(0)
    assert page.evaluate("() => window.__pwned") is None
    # The id follows the title until the editor types one.
    expect(page.get_by_test_id("field-id")).to_have_value("markup-i-test-i")
