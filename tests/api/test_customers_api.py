"""Customers across channels: signed in-app identities, search, linking two profiles, supervisor edits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.auth import identity_signature
from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings, ChatSettings
from tests.api.conftest import ADMIN_PASSWORD, bearer, staff_token
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

SECRET = "host-app-identity-secret"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("customers"),
        chat=ChatSettings(identity_secret=SecretStr(SECRET)),
        auth=AuthSettings(bootstrap_admin_password=SecretStr(ADMIN_PASSWORD)),
    )
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as test_client:
        yield test_client


def signed(user_id: str, tier: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user_id, "user_hash": identity_signature(SECRET, user_id, tier), **extra}
    if tier is not None:
        body["tier"] = tier
    return body


def converse(client: TestClient, body: dict[str, Any], text: str) -> tuple[str, dict[str, Any]]:
    created = client.post("/api/conversations", json=body)
    assert created.status_code == 201, created.text
    cid = created.json()["conversation_id"]
    turn = client.post(f"/api/conversations/{cid}/messages", headers=bearer(created.json()["customer_token"]),
                       json={"text": text})
    assert turn.status_code == 200, turn.text
    return cid, turn.json()


def handoff_of(client: TestClient, agent: dict[str, str], cid: str) -> dict[str, Any]:
    """The handoff detail of a conversation: ``handoff`` (with the context at handoff) and the live ``customer``."""
    (item,) = [h for h in client.get("/api/handoffs", headers=agent).json() if h["conversation_id"] == cid]
    detail = client.get(f"/api/handoffs/{item['id']}", headers=agent)
    assert detail.status_code == 200, detail.text
    return dict(detail.json())


def test_a_signed_in_customer_is_recognised_across_conversations(client: TestClient) -> None:
    first, _ = converse(client, signed("u-1001", name="Kim", email="kim@example.com"), "hello")
    second, turn = converse(client, signed("u-1001"), "I want to talk to a real person")
    assert turn["decision"] == "handoff"
    sup = bearer(staff_token(client, "cust-sue", "supervisor"))
    detail = handoff_of(client, sup, second)
    for customer in (detail["handoff"]["context"]["customer"], detail["customer"]):
        assert customer["display_name"] == "Kim" and customer["email"] == "kim@example.com"
        assert [tuple(i.values()) for i in customer["identities"]] == [("web", "u-1001")]
    assert [c["conversation_id"] for c in detail["handoff"]["context"]["customer"]["earlier_conversations"]] == [first]
    assert [c["conversation_id"] for c in detail["customer"]["conversations"]] == [first]


def test_the_signed_tier_feeds_urgency(client: TestClient) -> None:
    cid, _ = converse(client, signed("u-vip", tier="premium"), "get me a human please")
    sup = bearer(staff_token(client, "cust-sue", "supervisor"))
    handoff = handoff_of(client, sup, cid)["handoff"]
    assert handoff["context"]["customer"]["tier"] == "premium"
    assert any("premium" in reason for reason in handoff["context"]["urgency_reasons"]), handoff["context"]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"user_id": "u-1", "user_hash": "0" * 64}, 403, "does not match"),
    ({"user_id": "u-1"}, 422, "needs user_hash"),
    ({"user_id": "u-1", "user_hash": identity_signature(SECRET, "u-1"), "tier": "premium"}, 403, "does not match"),
    ({"tier": "premium"}, 422, "only accepted with a signed user_id"),
])
def test_unsigned_or_forged_identities_are_refused(client: TestClient, body: dict[str, Any], status: int,
                                                   words: str) -> None:
    response = client.post("/api/conversations", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert SECRET not in response.text


def test_without_a_secret_identities_are_not_accepted(tmp_path: Any) -> None:
    with TestClient(create_app(make_settings(tmp_path), encoder=HashEncoder(384))) as plain:
        response = plain.post("/api/conversations", json=signed("u-1"))
        assert response.status_code == 422
        assert "identity_secret" in response.json()["error"]["message"]


def test_agents_find_and_link_two_profiles_of_one_person(client: TestClient) -> None:
    web, _ = converse(client, signed("u-2002", name="Rosa Diaz", email="rosa@example.com"), "hello")
    anon, _ = converse(client, {"name": "Rosa D."}, "I want to talk to a real person")
    agent = bearer(staff_token(client, "cust-ann", "agent"))
    target = handoff_of(client, agent, anon)["customer"]["customer_id"]

    found = client.get("/api/customers", params={"q": "ROSA@example"}, headers=agent)
    assert found.status_code == 200
    (rosa,) = found.json()
    assert rosa["email"] == "rosa@example.com" and [c["conversation_id"] for c in rosa["conversations"]] == [web]
    assert client.get("/api/customers", params={"q": "u-2002"}, headers=agent).json()[0]["customer_id"] == (
        rosa["customer_id"])

    merged = client.post(f"/api/customers/{target}/merge", json={"other_customer_id": rosa["customer_id"]},
                         headers=agent)
    assert merged.status_code == 200, merged.text
    profile = merged.json()
    assert (profile["display_name"], profile["email"]) == ("Rosa D.", "rosa@example.com")
    assert profile["identities"] == [{"channel": "web", "external_id": "u-2002"}]
    assert {c["conversation_id"] for c in profile["conversations"]} == {web, anon}
    # The handoff now shows the linked history, and the old profile is gone.
    customer = handoff_of(client, agent, anon)["customer"]
    assert [c["conversation_id"] for c in customer["conversations"]] == [web]
    assert customer["identities"] == [{"channel": "web", "external_id": "u-2002"}]
    assert client.get(f"/api/customers/{rosa['customer_id']}", headers=agent).status_code == 404
    # The signed-in customer's next conversation lands on the merged profile.
    again, _ = converse(client, signed("u-2002"), "hi again")
    ids = {c["conversation_id"] for c in client.get(f"/api/customers/{target}", headers=agent).json()["conversations"]}
    assert ids == {web, anon, again}


def test_customer_api_rules(client: TestClient) -> None:
    agent = bearer(staff_token(client, "cust-ann", "agent"))
    editor = bearer(staff_token(client, "cust-eddie", "editor"))
    sup = bearer(staff_token(client, "cust-sue", "supervisor"))
    cid, _ = converse(client, signed("u-3003", name="Lee"), "hello")
    (lee,) = client.get("/api/customers", params={"q": "u-3003"}, headers=agent).json()

    assert client.get("/api/customers", params={"q": "lee"}).status_code == 401
    assert client.get("/api/customers", params={"q": "lee"}, headers=editor).status_code == 403
    assert client.get("/api/customers", params={"q": "l"}, headers=agent).status_code == 422
    assert client.get("/api/customers", params={"q": "%"}, headers=agent).status_code == 422
    assert client.get("/api/customers", params={"q": "5%_x"}, headers=agent).json() == []
    assert client.get("/api/customers/999999", headers=agent).status_code == 404
    self_merge = client.post(f"/api/customers/{lee['customer_id']}/merge",
                             json={"other_customer_id": lee["customer_id"]}, headers=agent)
    assert self_merge.status_code == 422 and "itself" in self_merge.json()["error"]["message"]
    assert client.post(f"/api/customers/{lee['customer_id']}/merge", json={"other_customer_id": 999999},
                       headers=agent).status_code == 404

    assert client.patch(f"/api/customers/{lee['customer_id']}", json={"tier": "vip"}, headers=agent).status_code == 403
    assert client.patch(f"/api/customers/{lee['customer_id']}", json={"tier": "V I P"},
                        headers=sup).status_code == 422
    patched = client.patch(f"/api/customers/{lee['customer_id']}", json={"tier": "vip"}, headers=sup)
    assert patched.status_code == 200 and patched.json()["tier"] == "vip" and patched.json()["display_name"] == "Lee"
    # A customer token is no staff credential.
    token = client.post("/api/conversations", json={}).json()["customer_token"]
    assert client.get("/api/customers", params={"q": "lee"}, headers=bearer(token)).status_code == 401
    assert cid
