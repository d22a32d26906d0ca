"""The KPI endpoints through HTTP: who may read them, input validation, figures from real turns, the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN_PASSWORD, bearer, staff_token, start

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def supervisor(client: TestClient) -> dict[str, str]:
    return bearer(staff_token(client, "kpi-sup", "supervisor"))


@pytest.fixture(scope="module")
def scenario(client: TestClient, supervisor: dict[str, str]) -> None:
    """One conversation the bot answers alone; one handed off, answered, resolved and rated 5."""
    bot_only, auth = start(client)
    answer = client.post(f"/api/conversations/{bot_only}/messages", headers=auth,
                         json={"text": "Cancel Premium on the web"}).json()
    assert answer["decision"] in ("answer", "suggest"), answer
    client.post(f"/api/conversations/{bot_only}/messages/{answer['replies'][0]['id']}/feedback", headers=auth,
                json={"helpful": True})
    human, auth = start(client, name="Kim")
    turn = client.post(f"/api/conversations/{human}/messages", headers=auth,
                       json={"text": "I want to talk to a real person"}).json()
    assert turn["decision"] == "handoff", turn
    (item,) = [h for h in client.get("/api/handoffs", headers=supervisor).json() if h["conversation_id"] == human]
    assert client.post(f"/api/handoffs/{item['id']}/reply", headers=supervisor,
                       json={"text": "Hello Kim"}).status_code == 200
    assert client.post(f"/api/handoffs/{item['id']}/resolve", headers=supervisor).status_code == 200
    assert client.post(f"/api/conversations/{human}/csat", headers=auth, json={"score": 5}).status_code == 204


def test_figures_from_real_turns(client: TestClient, supervisor: dict[str, str], scenario: None) -> None:
    response = client.get("/api/kpis", headers=supervisor)
    assert response.status_code == 200, response.text
    kpis = response.json()
    assert kpis["window"]["days"] == 30 and kpis["window"]["to"].startswith(
        (TODAY + timedelta(days=1)).isoformat())
    conversations = kpis["conversations"]
    assert (conversations["total"], conversations["deflected"], conversations["handed_off"]) == (2, 1, 1)
    assert (conversations["deflection_rate"], conversations["handoff_rate"]) == (0.5, 0.5)
    assert conversations["by_channel"][0] == {"key": "web", "count": 2}
    assert kpis["handoffs"] == {"total": 1, "resolved": 1, "by_reason": [{"key": "customer_request", "count": 1}]}
    assert kpis["first_response"]["bot"]["count"] == 2 and kpis["first_response"]["bot"]["p50_seconds"] >= 0
    assert kpis["first_response"]["agent"]["count"] == 1 and kpis["resolution"]["count"] == 1
    assert kpis["csat"] == {"resolved": 1, "responses": 1, "response_rate": 1.0, "average": 5.0,
                            "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}
    assert kpis["answers"] == {"answered": 1, "helpful": 1, "unhelpful": 0, "unhelpful_rate": 0.0}
    assert [t["urgency"] for t in kpis["sla"]["targets"]] == ["critical", "high", "normal", "low"]
    assert kpis["sla"]["targets"][0] == {"urgency": "critical", "first_response_minutes": 5.0,
                                         "resolution_minutes": 60.0}
    all_teams = [line for line in kpis["sla"]["lines"] if line["team"] is None]
    assert sum(line["handoffs"] for line in all_teams) == 1
    assert sum(line["first_response_met"] for line in all_teams) == 1
    assert sum(i["messages"] for i in kpis["intents"]) == 2
    today = kpis["daily"][-1]
    assert today["day"] == TODAY.isoformat() and (today["conversations"], today["handoffs"]) == (2, 1)
    assert len(kpis["daily"]) == 30 and all(p["conversations"] == 0 for p in kpis["daily"][:-1])
    assert {"key": "billing", "name": "Billing"} in kpis["teams"]

    one_day = client.get("/api/kpis", headers=supervisor, params={"from": TODAY.isoformat(),
                                                                  "to": TODAY.isoformat()}).json()
    assert one_day["window"]["days"] == 1 and one_day["conversations"]["total"] == 2
    slack = client.get("/api/kpis", headers=supervisor, params={"channel": "slack"}).json()
    assert slack["conversations"]["total"] == 0 and slack["conversations"]["by_channel"] == [
        {"key": "slack", "count": 0}]


def test_csv_export_of_the_daily_series(client: TestClient, supervisor: dict[str, str], scenario: None) -> None:
    params = {"from": (TODAY - timedelta(days=2)).isoformat(), "to": TODAY.isoformat()}
    response = client.get("/api/kpis.csv", headers=supervisor, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="frontdesk-kpis-{params["from"]}-to-{params["to"]}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["date"] for r in rows] == [(TODAY - timedelta(days=d)).isoformat() for d in (2, 1, 0)]
    assert rows[0]["conversations"] == "0" and rows[0]["deflection_rate"] == "" and rows[0]["csat_average"] == ""
    assert {k: rows[-1][k] for k in ("conversations", "deflected", "handed_off", "deflection_rate", "handoffs",
                                     "resolved", "csat_responses", "csat_average", "unhelpful_answers")} == {
        "conversations": "2", "deflected": "1", "handed_off": "1", "deflection_rate": "0.5000", "handoffs": "1",
        "resolved": "1", "csat_responses": "1", "csat_average": "5.0000", "unhelpful_answers": "0"}


@pytest.mark.parametrize("path", ["/api/kpis", "/api/kpis.csv"])
def test_only_supervisors_and_admins(client: TestClient, path: str) -> None:
    admin = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    assert client.get(path, headers=bearer(admin)).status_code == 200
    assert client.get(path, headers=bearer(staff_token(client, "kpi-boss", "supervisor"))).status_code == 200
    for role in ("agent", "editor", "trainer"):
        refused = client.get(path, headers=bearer(staff_token(client, f"kpi-{role}", role)))
        assert refused.status_code == 403, role
        assert refused.json()["error"]["code"] == "forbidden"
    assert client.get(path).status_code == 401
    _, customer = start(client)
    assert client.get(path, headers=customer).status_code == 401


@pytest.mark.parametrize(("params", "message"), [
    ({"from": "yesterday"}, "from: 'yesterday' is not a date; use YYYY-MM-DD or an ISO 8601 date-time"),
    ({"to": "2026-02-30"}, "to: '2026-02-30' is not a date"),
    ({"from": "2026-11-05", "to": "2026-11-01"}, "from (2026-11-05T00:00:00+00:00) must be before to "
                                                 "(2026-11-02T00:00:00+00:00)"),
    ({"from": "2026-11-05T10:00:00Z", "to": "2026-11-05T10:00:00Z"}, "must be before to"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "is longer than 366 days"),
    ({"team": "nope"}, "unknown team 'nope' (teams: "),
    ({"channel": "fax"}, "channel must be one of: api, slack, telegram, web"),
])
def test_bad_input_is_a_clear_422(client: TestClient, supervisor: dict[str, str], params: dict[str, str],
                                  message: str) -> None:
    for path in ("/api/kpis", "/api/kpis.csv"):
        response = client.get(path, headers=supervisor, params=params)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input" and message in error["message"], error


def test_date_times_and_zones(client: TestClient, supervisor: dict[str, str]) -> None:
    window = client.get("/api/kpis", headers=supervisor, params={
        "from": "2026-11-01T10:00:00+02:00", "to": "2026-11-01T12:30:00"}).json()["window"]
    assert (window["from"], window["to"], window["days"]) == (
        "2026-11-01T08:00:00Z", "2026-11-01T12:30:00Z", 1)
