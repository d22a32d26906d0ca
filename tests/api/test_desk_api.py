"""The agent desk through HTTP: roles and teams, 409s, transfer, intents, notes, canned responses, resolve + CSAT."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN_PASSWORD, bearer, start

pytestmark = pytest.mark.integration


def admin(client: TestClient) -> dict[str, str]:
    token = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    return bearer(token)


def user(client: TestClient, username: str, roles: list[str], **extra: object) -> dict[str, str]:
    password = f"{username}-password"
    created = client.post("/api/admin/users", headers=admin(client),
                          json={"username": username, "password": password, "roles": roles, **extra})
    assert created.status_code in (201, 409), created.text
    return bearer(client.post("/api/auth/login", json={"username": username, "password": password}).json()["token"])


def handed_off(client: TestClient, text: str = "I want to talk to a real person") -> tuple[str, dict[str, str], int]:
    cid, auth = start(client, name="Kim")
    turn = client.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": text}).json()
    assert turn["decision"] == "handoff", turn
    sup = user(client, "desk-sup", ["supervisor"])
    (item,) = [h for h in client.get("/api/handoffs", headers=sup).json() if h["conversation_id"] == cid]
    return cid, auth, item["id"]


def test_handoff_reply_tells_the_customer_where_they_stand(client: TestClient) -> None:
    cid, auth = start(client)
    turn = client.post(f"/api/conversations/{cid}/messages", headers=auth,
                       json={"text": "please get me a human"}).json()
    text = turn["replies"][0]["text"]
    assert "a person will reply here" in text
    assert ("in the queue" in text or "next in line" in text or "Nobody from the team is on duty" in text), text


def test_queue_items_carry_sla_and_eligibility(client: TestClient) -> None:
    _, _, hid = handed_off(client)
    agent = user(client, "desk-ann", ["agent"])
    item = next(h for h in client.get("/api/handoffs", headers=agent).json() if h["id"] == hid)
    assert item["state"] == "open" and item["tier"] == 1 and item["can_take"] is True
    assert item["sla"]["first_response_breached"] is False and item["waiting_seconds"] >= 0
    assert item["channel"] == "web" and item["context"] == {}
    info = client.get("/api/desk", headers=agent).json()
    assert {t["key"] for t in info["teams"]} >= {"billing", "technical", "account", "trust_safety"}
    assert "refund_request" in info["intents"] and info["me"]["username"] == "desk-ann"


def test_claim_conflict_and_team_visibility(client: TestClient) -> None:
    _, _, hid = handed_off(client)
    team = client.get(f"/api/handoffs/{hid}", headers=admin(client)).json()["handoff"]["team"]
    ann = user(client, "claim-ann", ["agent"])
    bob = user(client, "claim-bob", ["agent"])
    outsider = user(client, "claim-out", ["agent"], teams=["billing" if team != "billing" else "account"])
    assert client.post(f"/api/handoffs/{hid}/claim", headers=ann).json()["claimed_by"] == "claim-ann"
    second = client.post(f"/api/handoffs/{hid}/claim", headers=bob)
    assert second.status_code == 409
    assert second.json()["error"]["message"] == "this handoff was already claimed by claim-ann"
    assert client.get(f"/api/handoffs/{hid}", headers=outsider).status_code == 403
    assert all(h["id"] != hid for h in client.get("/api/handoffs", headers=outsider).json())
    mine = client.get("/api/handoffs", params={"mine": True}, headers=ann).json()
    assert [h["id"] for h in mine] == [hid]


def test_tier_and_skills_gate_claims(client: TestClient) -> None:
    _, _, hid = handed_off(client)
    sup = user(client, "gate-sup", ["supervisor"])
    assert client.post(f"/api/handoffs/{hid}/escalate", headers=sup, json={"reason": "tricky"}).json()["tier"] == 2
    tier1 = user(client, "gate-t1", ["agent"])
    tier2 = user(client, "gate-t2", ["agent"], tier=2)
    refused = client.post(f"/api/handoffs/{hid}/claim", headers=tier1)
    assert refused.status_code == 403 and "tier 2" in refused.json()["error"]["message"]
    assert client.post(f"/api/handoffs/{hid}/claim", headers=tier2).status_code == 200


def test_full_agent_workflow(client: TestClient) -> None:
    cid, auth, hid = handed_off(client, "I want to talk to someone about my refund")
    ann = user(client, "flow-ann", ["agent"], display_name="Ann", skills=["refunds"])
    reply = client.post(f"/api/handoffs/{hid}/reply", headers=ann, json={"text": "Hi Kim, Ann here."})
    assert reply.status_code == 200 and reply.json()["author"] == "Ann" and reply.json()["delivery_status"] is None
    seen = client.get(f"/api/conversations/{cid}", headers=auth).json()
    assert seen["messages"][-1]["text"] == "Hi Kim, Ann here." and seen["messages"][-1]["sender"] == "agent"
    assert client.post(f"/api/handoffs/{hid}/notes", headers=ann, json={"text": "refund > 14 days"}).status_code == 200
    wrong = client.put(f"/api/handoffs/{hid}/intent", headers=ann, json={"intent": "no_such_intent"})
    assert wrong.status_code == 422
    assert client.put(f"/api/handoffs/{hid}/intent", headers=ann,
                      json={"intent": "refund_request"}).json()["corrected_intent"] == "refund_request"
    detail = client.get(f"/api/handoffs/{hid}", headers=ann).json()
    assert [n["text"] for n in detail["notes"]] == ["refund > 14 days"]
    assert detail["handoff"]["first_response_at"] is not None and detail["suggested_articles"]
    assert all(m["text"] != "refund > 14 days" for m in client.get(
        f"/api/conversations/{cid}", headers=auth).json()["messages"])  # notes never reach the customer

    bob = user(client, "flow-bob", ["agent"])
    assert client.post(f"/api/handoffs/{hid}/resolve", headers=bob).status_code == 403
    resolved = client.post(f"/api/handoffs/{hid}/resolve", headers=ann).json()
    assert resolved["handoff"]["state"] == "resolved" and resolved["message"]["kind"] == "csat_request"
    refused = client.post(f"/api/handoffs/{hid}/reply", headers=ann, json={"text": "one more thing"})
    assert refused.status_code == 409 and "reopen it before replying" in refused.json()["error"]["message"]

    # The bot owns the conversation again; a typed "4" answers the CSAT question.
    rated = client.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "4"}).json()
    assert rated["decision"] == "respond" and "4/5" in rated["replies"][0]["text"]
    assert client.get(f"/api/handoffs/{hid}", headers=ann).json()["csat"] == 4
    again = client.post(f"/api/conversations/{cid}/csat", headers=auth, json={"score": 5})
    assert again.status_code == 409
    back = client.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "Cancel Premium on the web"})
    assert back.json()["decision"] in ("answer", "suggest")

    reopened = client.post(f"/api/handoffs/{hid}/reopen", headers=bob).json()
    assert reopened["state"] == "open" and client.get(f"/api/conversations/{cid}", headers=auth).json()[
        "status"] == "human"


def test_csat_by_endpoint_validates(client: TestClient) -> None:
    cid, auth, hid = handed_off(client)
    sup = user(client, "csat-sup", ["supervisor"])
    client.post(f"/api/handoffs/{hid}/resolve", headers=sup)
    assert client.post(f"/api/conversations/{cid}/csat", headers=auth, json={"score": 9}).status_code == 422
    assert client.post(f"/api/conversations/{cid}/csat", headers=auth,
                       json={"score": 2, "comment": "slow"}).status_code == 204
    assert client.get(f"/api/handoffs/{hid}", headers=sup).json()["csat"] == 2


def test_transfer_validation(client: TestClient) -> None:
    _, _, hid = handed_off(client)
    sup = user(client, "xfer-sup", ["supervisor"])
    bad_team = client.post(f"/api/handoffs/{hid}/transfer", headers=sup, json={"team": "nope"})
    assert bad_team.status_code == 422 and "unknown team" in bad_team.json()["error"]["message"]
    bad_tier = client.post(f"/api/handoffs/{hid}/transfer", headers=sup, json={"tier": 9})
    assert bad_tier.status_code == 422 and "tiers 1 to 3" in bad_tier.json()["error"]["message"]
    moved = client.post(f"/api/handoffs/{hid}/transfer", headers=sup,
                        json={"team": "trust_safety", "reason": "possible fraud"}).json()
    assert moved["team"] == "trust_safety" and moved["state"] == "open"
    ann = user(client, "xfer-ann", ["agent"])
    not_mine = client.post(f"/api/handoffs/{hid}/transfer", headers=ann, json={"team": "billing"})
    assert not_mine.status_code == 403 and "claim it first" in not_mine.json()["error"]["message"]


def test_canned_responses(client: TestClient) -> None:
    _, _, hid = handed_off(client)
    sup = user(client, "canned-sup", ["supervisor"], display_name="Sue")
    ann = user(client, "canned-ann", ["agent"])
    body = {"title": "Refund window",
            "body": "Hi {customer_name}, I'm {agent_name}. See {article:billing-refund-policy}."}
    assert client.post("/api/canned", headers=ann, json=body).status_code == 403
    bad = client.post("/api/canned", headers=sup, json={**body, "body": "Hi {name}"})
    assert bad.status_code == 422 and "unknown placeholders {name}" in bad.json()["error"]["message"]
    created = client.post("/api/canned", headers=sup, json=body).json()
    assert [c["title"] for c in client.get("/api/canned", headers=ann).json()].count("Refund window") == 1
    text = client.get(f"/api/handoffs/{hid}/canned/{created['id']}", headers=sup).json()["text"]
    assert text.startswith("Hi Kim, I'm Sue. See ") and "/help/articles/billing-refund-policy" in text
    assert client.put(f"/api/canned/{created['id']}", headers=sup,
                      json={**body, "title": "Refunds"}).json()["title"] == "Refunds"
    assert client.delete(f"/api/canned/{created['id']}", headers=sup).status_code == 204
    assert client.get(f"/api/handoffs/{hid}/canned/{created['id']}", headers=sup).status_code == 404


def test_unhelpful_answers_get_a_follow_up_then_a_person(client: TestClient) -> None:
    cid, auth = start(client)
    first = client.post(f"/api/conversations/{cid}/messages", headers=auth,
                        json={"text": "Cancel Premium on the web"}).json()
    rated = client.post(f"/api/conversations/{cid}/messages/{first['replies'][0]['id']}/feedback", headers=auth,
                        json={"helpful": False}).json()
    assert [r["kind"] for r in rated["replies"]] == ["follow_up"]
    second = client.post(f"/api/conversations/{cid}/messages", headers=auth,
                         json={"text": "Update your payment method on the web"}).json()
    assert second["decision"] in ("answer", "suggest")
    handoff = client.post(f"/api/conversations/{cid}/messages/{second['replies'][0]['id']}/feedback",
                          headers=auth, json={"helpful": False}).json()
    assert handoff["conversation_status"] == "human" and handoff["replies"][0]["kind"] == "handoff"
    sup = user(client, "unhelpful-sup", ["supervisor"])
    (item,) = [h for h in client.get("/api/handoffs", headers=sup, params={"with_context": True}).json()
               if h["conversation_id"] == cid]
    assert item["reason"] == "unhelpful"
    reactions = [a["reaction"] for a in item["context"]["articles_offered"]]
    assert reactions and set(reactions) == {"unhelpful"}
