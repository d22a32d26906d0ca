"""The trainers' page at ``/trainer`` in real headless Chromium against the real app (real MiniLM): the inbox,
relabelling with a regression case, a live retrain with its steps and evaluation, activation, rollback checked
against today's regression cases, "Keep current" (a rejected candidate), undoing a decision, removing an added
example, the nlu.yml export, who may use the page, and escaping of customer text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import DeskApi, Staff, bearer, log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RETRAIN_TIMEOUT_MS = 180_000  # MiniLM encodes every training example on a CPU (other tests share the cores)
NONSENSE = "zorblax fizzwop qrumble"
INJECTION = '<img src=x onerror="window.__pwned=1"><b>bold</b> glorp my wibbly snorkelvat'
INTENT = "cancel_subscription"


def log_in_trainer(page: Page, staff: Staff) -> None:
    """Log into /trainer and wait until the inbox is loaded."""
    page.goto("/trainer")
    expect(page.get_by_test_id("login-view")).to_be_visible()
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("me")).to_contain_text(staff.display_name)
    expect(page.get_by_test_id("active-version")).not_to_have_text("…")


def inbox_message(page: Page, text: str) -> Locator:
    return page.get_by_test_id("inbox-message").filter(has=page.get_by_test_id("message-text").get_by_text(
        text, exact=True))


def customer_says(desk_api: DeskApi, text: str) -> None:
    conversation_id, headers = desk_api.customer("Oz")
    desk_api.say(conversation_id, headers, text)


def watch_job(page: Page) -> None:
    """Record every percentage and current step the retrain shows (window.__progress, window.__steps)."""
    page.evaluate("""() => {
        window.__progress = [];
        window.__steps = [];
        const node = document.querySelector("[data-testid='job-percent']");
        new MutationObserver(() => window.__progress.push(node.textContent))
            .observe(node, {childList: true, characterData: true, subtree: true});
        new MutationObserver(() => {
            const current = document.querySelector("[data-testid='job-step'][data-state='current']");
            if (current) window.__steps.push(current.dataset.step);
        }).observe(document.querySelector("[data-testid='job-steps']"), {attributes: true, subtree: true});
    }""")


def active_version(desk_api: DeskApi, token: str) -> str:
    return next(v["version"] for v in desk_api.get("/api/trainer/versions", token) if v["status"] == "active")


def test_relabel_retrain_activate_and_roll_back(new_page: Callable[[], Page], desk_api: DeskApi,
                                                  tmp_path: Path) -> None:
    trainer = desk_api.staff("trainer", "Tia Trainer")
    customer_says(desk_api, NONSENSE)
    original = active_version(desk_api, trainer.token)
    page = new_page()
    log_in_trainer(page, trainer)
    expect(page.get_by_test_id("active-version")).to_have_text(original)
    expect(page.locator(f"[data-testid='version'][data-version='{original}']")).to_have_attribute(
        "data-status", "active")

    # The message is in the inbox, with why, the model's guess and its confidence.
    message = inbox_message(page, NONSENSE)
    expect(message).to_have_count(1)
    expect(message.get_by_test_id("reason").first).to_be_visible()
    expect(message.get_by_test_id("guess")).not_to_be_empty()
    expect(message.get_by_test_id("confidence")).to_contain_text("%")
    expect(page.get_by_test_id("cluster").filter(has=message).get_by_test_id("cluster-size")).to_contain_text(
        "message")

    # Relabel it, kept as a regression case.
    actions = message.get_by_test_id("message-actions")
    actions.get_by_test_id("intent-select").select_option(INTENT)
    actions.get_by_test_id("keep-regression").check()
    actions.get_by_test_id("relabel").click()
    expect(page.get_by_test_id("status")).to_have_text(
        f"Relabelled 1 message as {INTENT} (kept as regression cases).")
    expect(message).to_have_count(0)
    case = page.get_by_test_id("regression-case").filter(has_text=NONSENSE)
    expect(case.get_by_test_id("case-intent")).to_have_text(INTENT)

    # The corrected nlu.yml downloads with the relabelled example under its intent.
    with page.expect_download() as download_info:
        page.get_by_test_id("export").click()
    download = download_info.value
    assert download.suggested_filename == "nlu.yml"
    saved = tmp_path / "nlu.yml"
    download.save_as(saved)
    blocks = {b.get("intent"): b for b in yaml.safe_load(saved.read_text())["nlu"]}
    assert NONSENSE in blocks[INTENT]["examples"]

    # Retrain: the progress follows the job until it is done, then the evaluation is shown.
    watch_job(page)
    page.get_by_test_id("retrain").click()
    expect(page.get_by_test_id("retrain")).to_be_disabled()
    expect(page.get_by_test_id("job-percent")).to_have_text("100%", timeout=RETRAIN_TIMEOUT_MS)
    expect(page.get_by_test_id("job-stage")).to_have_text("Done: the candidate is ready.")
    seen = page.evaluate("() => window.__progress")
    assert seen[-1] == "100%" and len(set(seen)) >= 2, seen  # at least one intermediate state was drawn
    # The steps: fitting the folds was shown as the current step on the way, and all are done now.
    assert "fitting" in page.evaluate("() => window.__steps"), page.evaluate("() => window.__steps")
    expect(page.locator("[data-testid='job-step'][data-state='done']")).to_have_count(3)

    evaluation = page.get_by_test_id("evaluation")
    expect(evaluation).to_be_visible()
    candidate = evaluation.get_attribute("data-version")
    assert candidate and candidate != original
    table = evaluation.get_by_test_id("evaluation-table")
    expect(table.locator("thead th")).to_have_count(3)  # metric, candidate, active
    expect(table.locator("thead th").nth(1)).to_contain_text(candidate)
    expect(table.locator("thead th").nth(2)).to_contain_text(original)
    for metric in ("accuracy", "macro_f1"):
        expect(table.locator(f"tr[data-metric='{metric}'] td")).to_have_count(2)
        expect(table.locator(f"tr[data-metric='{metric}'] td").first).to_contain_text("%")
    expect(table.locator("tr[data-metric='regression_failures'] td").first).to_have_text(
        "0 of 1" if evaluation.get_by_test_id("regression-failures").is_hidden() else "1 of 1")
    expect(table.locator("tr[data-metric='false_oos'] td")).to_have_count(2)
    # How the comparison is fair is said under the table.
    expect(table.locator("caption")).to_contain_text("chosen by a hash of each text")
    expect(table.locator("caption")).to_contain_text("fitted again without the slice")  # the startup model
    expect(page.get_by_test_id("keep-current")).to_be_visible()
    expect(page.locator(f"[data-testid='version'][data-version='{candidate}']")).to_have_attribute(
        "data-status", "candidate")

    # Activate (the button says "Activate anyway" if the candidate failed the case).
    page.get_by_test_id("activate-candidate").click()
    expect(page.get_by_test_id("active-version")).to_have_text(candidate)
    expect(evaluation).to_be_hidden()
    expect(page.get_by_test_id("status")).to_have_text(f"Version {candidate} is now serving customers.")
    expect(page.locator(f"[data-testid='version'][data-version='{candidate}']")).to_have_attribute(
        "data-status", "active")
    assert active_version(desk_api, trainer.token) == candidate
    cases = desk_api.get("/api/trainer/regression-cases", trainer.token)
    assert [(c["text"], c["expected_intent"]) for c in cases if c["text"] == NONSENSE] == [(NONSENSE, INTENT)]

    # Roll back to the version served before (the rest of the session keeps the original model). Today's
    # regression case runs through it first: if it gets the case wrong, the page says which and lets the trainer
    # activate it anyway.
    previous = page.locator(f"[data-testid='version'][data-version='{original}']")
    expect(previous).to_have_attribute("data-status", "retired")
    metrics = next(v for v in desk_api.get("/api/trainer/versions", trainer.token)
                   if v["version"] == candidate)["metrics"]
    previous.get_by_test_id("rollback").click()
    if metrics["active"]["regression_failures"]:
        expect(page.get_by_test_id("versions-error")).to_contain_text(f"'{NONSENSE}' (expected {INTENT}, got ")
        expect(page.get_by_test_id("active-version")).to_have_text(candidate)
        page.get_by_test_id("force-activate").click()
    expect(page.get_by_test_id("active-version")).to_have_text(original)
    expect(previous).to_have_attribute("data-status", "active")
    assert active_version(desk_api, trainer.token) == original


def test_keep_current_rejects_the_candidate(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    trainer = desk_api.staff("trainer", "Kim Keeper")
    text = f"kept-current probe {uuid.uuid4().hex[:8]} hello there"
    customer_says(desk_api, text)
    original = active_version(desk_api, trainer.token)
    page = new_page()
    log_in_trainer(page, trainer)
    # New data (an added example), so the retrain makes a new candidate.
    actions = inbox_message(page, text).get_by_test_id("message-actions")
    actions.get_by_test_id("intent-select").select_option("greet")
    actions.get_by_test_id("add-example").click()
    expect(page.get_by_test_id("status")).to_have_text("Added 1 message as examples of greet.")

    page.get_by_test_id("retrain").click()
    expect(page.get_by_test_id("job-stage")).to_have_text("Done: the candidate is ready.",
                                                          timeout=RETRAIN_TIMEOUT_MS)
    evaluation = page.get_by_test_id("evaluation")
    expect(evaluation).to_be_visible()
    candidate = evaluation.get_attribute("data-version")
    assert candidate and candidate != original
    expect(page.get_by_test_id("keep-current")).to_have_text("Keep current")
    page.get_by_test_id("keep-current").click()
    expect(page.get_by_test_id("status")).to_have_text(f"Kept {original}; the candidate {candidate} is rejected.")
    expect(evaluation).to_be_hidden()
    item = page.locator(f"[data-testid='version'][data-version='{candidate}']")
    expect(item).to_have_attribute("data-status", "rejected")
    expect(item.locator(".version__meta").filter(has_text="rejected")).to_contain_text(f"by {trainer.username}")
    expect(page.get_by_test_id("active-version")).to_have_text(original)
    assert active_version(desk_api, trainer.token) == original

    # The decision is the server's: another session is not offered the rejected candidate again.
    again = new_page()
    log_in_trainer(again, trainer)
    expect(again.locator(f"[data-testid='version'][data-version='{candidate}']")).to_have_attribute(
        "data-status", "rejected")
    expect(again.get_by_test_id("evaluation")).to_be_hidden()
    example = next(e for e in desk_api.get("/api/trainer/examples", trainer.token) if e["text"] == text)
    assert desk_api.http.delete(f"/api/trainer/examples/{example['id']}",
                                headers=bearer(trainer.token)).status_code == 204


def test_undo_a_decision_and_remove_an_added_example(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    trainer = desk_api.staff("trainer", "Uma Undo")
    tag = uuid.uuid4().hex[:8]
    relabelled, marked = f"glimmer quoggle {tag}", f"sprocket wheeble {tag}"
    customer_says(desk_api, relabelled)
    customer_says(desk_api, marked)
    page = new_page()
    log_in_trainer(page, trainer)

    actions = inbox_message(page, relabelled).get_by_test_id("message-actions")
    actions.get_by_test_id("intent-select").select_option(INTENT)
    actions.get_by_test_id("keep-regression").check()
    actions.get_by_test_id("relabel").click()
    expect(page.get_by_test_id("status")).to_contain_text(f"Relabelled 1 message as {INTENT}")
    inbox_message(page, marked).get_by_test_id("message-actions").get_by_test_id("mark-oos").click()
    expect(page.get_by_test_id("status")).to_have_text("Marked 1 message out of scope.")

    # Both decisions are listed, newest first, and so are the examples they added.
    decisions = page.get_by_test_id("review")
    expect(decisions.first.get_by_test_id("review-text")).to_have_text(marked)
    expect(decisions.first.get_by_test_id("review-action")).to_have_text("marked out of scope")
    decision = decisions.filter(has=page.get_by_test_id("review-text").get_by_text(relabelled, exact=True))
    expect(decision.get_by_test_id("review-action")).to_have_text(f"relabelled as {INTENT}")
    examples = page.get_by_test_id("example")
    expect(examples.first.get_by_test_id("example-text")).to_have_text(marked)
    expect(examples.first.get_by_test_id("example-intent")).to_have_text("out of scope")
    added = examples.filter(has=page.get_by_test_id("example-text").get_by_text(relabelled, exact=True))
    expect(added.get_by_test_id("example-intent")).to_have_text(INTENT)
    expect(page.get_by_test_id("regression-case").filter(has_text=relabelled)).to_have_count(1)

    # Undo the relabel: the message is back in the inbox, its example and regression case are gone.
    decision.get_by_test_id("undo-review").click()
    expect(page.get_by_test_id("status")).to_have_text(
        "Undone: the message is back in the inbox; its training example and its regression case removed.")
    expect(inbox_message(page, relabelled)).to_have_count(1)
    expect(decision).to_have_count(0)
    expect(added).to_have_count(0)
    expect(page.get_by_test_id("regression-case").filter(has_text=relabelled)).to_have_count(0)

    # Remove the out-of-scope example on its own: the message stays reviewed.
    removed = examples.filter(has=page.get_by_test_id("example-text").get_by_text(marked, exact=True))
    removed.get_by_test_id("remove-example").click()
    expect(page.get_by_test_id("status")).to_have_text("Example removed: the next retrain no longer learns it.")
    expect(removed).to_have_count(0)
    expect(inbox_message(page, marked)).to_have_count(0)
    texts = [e["text"] for e in desk_api.get("/api/trainer/examples", trainer.token)]
    assert relabelled not in texts and marked not in texts


def test_agents_are_turned_away_and_admins_find_the_page(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    agent = desk_api.staff("agent", "Ann Agent")
    page = new_page()
    page.goto("/trainer")
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill(agent.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("This page is for trainers.")
    expect(page.get_by_test_id("login-view")).to_be_visible()
    expect(page.get_by_test_id("clusters")).to_be_hidden()
    assert desk_api.http.get("/api/trainer/inbox", headers=bearer(agent.token)).status_code == 403

    # The refused account keeps its staff session: the agent console takes it as it is, without a link here
    # (the link is only there for trainers and admins).
    page.goto("/agent")
    expect(page.get_by_test_id("me")).to_have_text("Ann Agent · agent")
    expect(page.get_by_test_id("open-trainer")).to_be_hidden()
    admin = desk_api.staff("admin", "Ada Admin")
    console = new_page()
    log_in(console, admin)
    console.get_by_test_id("open-trainer").click()
    expect(console).to_have_url(re.compile(r"/trainer$"))
    expect(console.get_by_test_id("me")).to_have_text("Ada Admin · admin")  # the same staff session
    expect(console.get_by_test_id("open-agent")).to_be_visible()


def test_customer_text_is_shown_as_text(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    trainer = desk_api.staff("trainer", "Tom Trainer")
    customer_says(desk_api, INJECTION)
    page = new_page()
    log_in_trainer(page, trainer)
    message = inbox_message(page, INJECTION)
    expect(message.get_by_test_id("message-text")).to_have_text(INJECTION)
    expect(page.get_by_test_id("clusters").locator("img, b")).to_have_count(0)

    actions = message.get_by_test_id("message-actions")
    actions.get_by_test_id("keep-regression").check()
    actions.get_by_test_id("mark-oos").click()
    expect(page.get_by_test_id("status")).to_have_text("Marked 1 message out of scope (kept as regression cases).")
    case = page.get_by_test_id("regression-case").filter(has_text="snorkelvat")
    expect(case.get_by_test_id("case-text")).to_have_text(INJECTION)
    expect(case.get_by_test_id("case-intent")).to_have_text("out of scope")
    expect(page.get_by_test_id("regression-cases").locator("img, b")).to_have_count(0)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"

    case.get_by_test_id("delete-case").click()
    expect(case).to_have_count(0)
    assert INJECTION not in [c["text"] for c in desk_api.get("/api/trainer/regression-cases", trainer.token)]
