"""The KPI page at ``/kpis`` in real headless Chromium: a supervisor sees tiles, charts and tables whose figures
come from conversations made through the API; agents are turned away; the CSV downloads."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import HUMAN_REQUEST, DeskApi, Staff, bearer, log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def js_percent(value: float | None) -> str:
    """A rate as the page shows it (JavaScript's Math.round rounds halves up)."""
    return "–" if value is None else f"{math.floor(value * 100 + 0.5)}%"


def js_score(value: float) -> str:
    """A CSAT average as the page shows it (toFixed(2) rounds the exact binary value, halves up)."""
    return f"{Decimal(value).quantize(Decimal('0.01'), ROUND_HALF_UP)} / 5"


def tile(page: Page, name: str) -> Locator:
    return page.get_by_test_id(f"tile-{name}").get_by_test_id("tile-value")


def log_in_kpis(page: Page, staff: Staff) -> None:
    page.goto("/kpis")
    expect(page.get_by_test_id("login-view")).to_be_visible()
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Log in").click()


def make_conversations(desk_api: DeskApi, supervisor: Staff) -> None:
    """One conversation the bot answers alone; one handed off, answered, resolved and rated 5."""
    alone, headers = desk_api.customer("Lee")
    desk_api.say(alone, headers, "How do I cancel Premium?")
    human, headers = desk_api.customer("Kim")
    assert desk_api.say(human, headers, HUMAN_REQUEST)["handed_off"]
    handoff_id = desk_api.handoff_for(human)["id"]
    auth = bearer(supervisor.token)
    assert desk_api.http.post(f"/api/handoffs/{handoff_id}/reply", headers=auth,
                              json={"text": "Hello Kim"}).status_code == 200
    assert desk_api.http.post(f"/api/handoffs/{handoff_id}/resolve", headers=auth).status_code == 200
    assert desk_api.http.post(f"/api/conversations/{human}/csat", headers=headers,
                              json={"score": 5}).status_code == 204


def test_supervisor_sees_kpis_of_real_conversations(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    sue = desk_api.staff("supervisor", "Sue Supervisor")
    before = desk_api.get("/api/kpis", sue.token)["conversations"]["total"]
    make_conversations(desk_api, sue)
    kpis: dict[str, Any] = desk_api.get("/api/kpis", sue.token)
    conversations = kpis["conversations"]
    assert conversations["total"] == before + 2

    page = new_page()
    log_in_kpis(page, sue)
    expect(page.get_by_test_id("me")).to_have_text("Sue Supervisor · supervisor")
    expect(tile(page, "conversations")).to_have_text(str(conversations["total"]))
    expect(tile(page, "deflection")).to_have_text(js_percent(conversations["deflection_rate"]))
    expect(tile(page, "handoff-rate")).to_have_text(js_percent(conversations["handoff_rate"]))
    expect(tile(page, "csat")).to_have_text(js_score(kpis["csat"]["average"]))
    expect(tile(page, "unhelpful")).to_have_text(str(kpis["answers"]["unhelpful"]))
    expect(page.get_by_test_id("tile-conversations").get_by_test_id("tile-detail")).to_have_text(
        f"{conversations['deflected']} bot only · {conversations['handed_off']} handed off")
    expect(page.get_by_test_id("window-note")).to_contain_text("30 days")

    # One bar per day; today's bar carries today's count (as a value and in its tooltip).
    bars = page.get_by_test_id("chart-conversations").locator("rect.chart__bar:not(.chart__bar--part)")
    expect(bars).to_have_count(30)
    today = kpis["daily"][-1]
    expect(bars.last).to_have_attribute("data-value", str(today["conversations"]))
    expect(bars.last.locator("title")).to_contain_text(f"{today['conversations']} conversations")
    for chart in ("chart-deflection", "chart-handoffs", "chart-csat"):
        expect(page.get_by_test_id(chart).locator("svg")).to_be_visible()

    expect(page.get_by_test_id("sla-urgency-table").locator("tbody tr")).to_have_count(4)
    lines = [line for line in kpis["sla"]["lines"] if line["team"] is not None]
    expect(page.get_by_test_id("sla-team-table").locator("tbody tr")).to_have_count(len(lines))
    reasons = page.get_by_test_id("reasons-table")
    expect(reasons).to_contain_text("Customer asked for a person")
    csat_five = page.get_by_test_id("csat-table").locator("tbody tr").first
    expect(csat_five.locator("td").nth(1)).to_have_text(str(kpis["csat"]["distribution"]["5"]))

    # A filter reloads the figures and lands in the address bar.
    page.get_by_test_id("filter-channel").select_option("slack")
    page.get_by_test_id("apply-filters").click()
    slack = desk_api.http.get("/api/kpis", params={"channel": "slack"}, headers=bearer(sue.token)).json()
    expect(tile(page, "conversations")).to_have_text(str(slack["conversations"]["total"]))
    expect(page).to_have_url(re.compile(r"/kpis\?.*channel=slack"))


def test_csv_download_and_bad_window(new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    admin_like = desk_api.staff("supervisor", "Sam Supervisor")
    page = new_page()
    log_in_kpis(page, admin_like)
    expect(tile(page, "conversations")).not_to_be_empty()
    with page.expect_download() as info:
        page.get_by_test_id("download-csv").click()
    download = info.value
    assert download.suggested_filename.startswith("frontdesk-kpis-") and download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines[0].startswith("date,conversations,deflected,handed_off,deflection_rate")
    assert len(lines) == 31

    page.get_by_test_id("filter-from").fill("2026-11-20")
    page.get_by_test_id("filter-to").fill("2026-11-10")
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("kpi-error")).to_contain_text("must be before to")


def test_agents_are_turned_away_and_supervisors_reach_it_from_the_desk(
        new_page: Callable[[], Page], desk_api: DeskApi) -> None:
    ann = desk_api.staff("agent", "Ann Agent")
    page = new_page()
    log_in_kpis(page, ann)
    expect(page.get_by_test_id("login-error")).to_have_text(
        "This account cannot see the KPIs (it needs the supervisor or admin role).")
    expect(page.get_by_test_id("tiles")).to_be_hidden()
    console = new_page()
    log_in(console, ann)
    expect(console.get_by_test_id("open-kpis")).to_be_hidden()

    sue = desk_api.staff("supervisor", "Sue Supervisor")
    desk = new_page()
    log_in(desk, sue)
    desk.get_by_test_id("open-kpis").click()
    expect(desk).to_have_url(re.compile(r"/kpis(\?|$)"))
    expect(tile(desk, "conversations")).not_to_be_empty()  # the desk's session carries over, no second login
    expect(desk.get_by_test_id("login-view")).to_be_hidden()
