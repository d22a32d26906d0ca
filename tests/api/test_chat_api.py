"""The customer JSON API: conversations, messages, transcripts, feedback and every bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.errors import INTERNAL_MESSAGE
from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings, PolicySettings
from tests.api.conftest import ADMIN_PASSWORD, bearer, staff_token, start
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def test_health_readiness_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    spec = client.get("/openapi.json").json()
    assert "/api/conversations/{conversation_id}/messages" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_conversation_round_trip(client: TestClient) -> None:
    cid, auth = start(client, name="Kim")
    turn = client.post(f"/api/conversations/{cid}/messages", headers=auth,
                       json={"text": "  I was charged twice on my card  "})
    assert turn.status_code == 200, turn.text
    body = turn.json()
    assert body["message"]["text"] == "I was charged twice on my card"
    assert body["message"]["sender"] == "customer"
    assert body["decision"] in {"answer", "suggest", "handoff", "clarify", "respond"}
    assert body["replies"] and all(r["sender"] == "bot" for r in body["replies"])
    transcript = client.get(f"/api/conversations/{cid}", headers=auth).json()
    assert transcript["id"] == cid and transcript["channel"] == "web"
    assert [m["id"] for m in transcript["messages"]] == [body["message"]["id"]] + [r["id"] for r in body["replies"]]
    after = client.get(f"/api/conversations/{cid}/messages", params={"after": body["message"]["id"]}, headers=auth)
    assert [m["id"] for m in after.json()] == [r["id"] for r in body["replies"]]


def test_answers_carry_citations_and_take_feedback(client: TestClient) -> None:
    cid, auth = start(client)
    # Lexically close to a demo article, so even the hash encoder answers it.
    body = client.post(f"/api/conversations/{cid}/messages", headers=auth,
                       json={"text": "Cancel Premium on the web"}).json()
    assert body["decision"] in ("answer", "suggest")
    reply = body["replies"][0]
    citation = reply["citations"][0]
    assert citation["url"] == f"/help/articles/{citation['article_id']}"
    assert citation["title"] and citation["passage"]
    feedback = client.post(f"/api/conversations/{cid}/messages/{reply['id']}/feedback", headers=auth,
                           json={"helpful": False})
    assert feedback.status_code == 200 and feedback.json()["message"]["feedback"] == "unhelpful"
    # The first unhelpful answer gets a follow-up question, not yet a person.
    follow_up = feedback.json()["replies"]
    assert [r["kind"] for r in follow_up] == ["follow_up"] and feedback.json()["conversation_status"] == "bot"
    own = client.post(f"/api/conversations/{cid}/messages/{body['message']['id']}/feedback", headers=auth,
                      json={"helpful": True})
    assert own.status_code == 404


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"text": ""}, "the message is empty"),
        ({"text": "   \n\t  "}, "the message is empty"),
        ({"text": "\x00\x01"}, "the message is empty"),
        ({"text": "x" * 301}, "the message has 301 characters; the limit is 300"),
        ({}, "text: Field required"),
        ({"text": 42}, "text: Input should be a valid string"),
        ({"text": "hi", "client_message_id": "x" * 101}, "client_message_id"),
    ],
)
def test_bad_messages_get_a_readable_422(client: TestClient, payload: dict[str, object], fragment: str) -> None:
    cid, auth = start(client)
    response = client.post(f"/api/conversations/{cid}/messages", headers=auth, json=payload)
    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]
    assert client.get(f"/api/conversations/{cid}", headers=auth).json()["messages"] == []


def test_malformed_json_is_a_422(client: TestClient) -> None:
    cid, auth = start(client)
    response = client.post(f"/api/conversations/{cid}/messages", content=b"{not json",
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


def test_access_rules(client: TestClient) -> None:
    cid, auth = start(client)
    other_cid, other_auth = start(client)
    assert client.get("/api/conversations/not-a-conversation", headers=auth).status_code == 404
    assert client.get(f"/api/conversations/{cid}").status_code == 401
    forbidden = client.get(f"/api/conversations/{cid}", headers=other_auth)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    assert client.post(f"/api/conversations/{cid}/messages", headers=other_auth,
                       json={"text": "hi"}).status_code == 403
    assert client.get(f"/api/conversations/{cid}", headers=bearer("ct_guess")).status_code == 403
    # A customer token never opens staff endpoints.
    assert client.get("/api/handoffs", headers=auth).status_code == 401
    assert client.get(f"/api/conversations/{other_cid}", headers=other_auth).status_code == 200


def test_retried_post_with_the_same_client_id_is_processed_once(client: TestClient) -> None:
    cid, auth = start(client)
    payload = {"text": "how do I reset my password", "client_message_id": "c-1"}
    first = client.post(f"/api/conversations/{cid}/messages", headers=auth, json=payload).json()
    second = client.post(f"/api/conversations/{cid}/messages", headers=auth, json=payload).json()
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["message"]["id"] == first["message"]["id"]
    assert [r["id"] for r in second["replies"]] == [r["id"] for r in first["replies"]]
    assert len(client.get(f"/api/conversations/{cid}", headers=auth).json()["messages"]) == 1 + len(
        first["replies"])


@pytest.fixture(scope="module")
def patient_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A bot that asks again instead of handing off when it has no answer (the hash encoder finds none)."""
    settings = make_settings(tmp_path_factory.mktemp("patient"), policy=PolicySettings(handoff_on_no_answer=False),
                             auth=AuthSettings(bootstrap_admin_password=SecretStr(ADMIN_PASSWORD)))
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as test_client:
        yield test_client


def test_asking_for_a_human_creates_a_handoff_agents_can_read(patient_client: TestClient) -> None:
    client = patient_client
    cid, auth = start(client, name="Rosa", email="rosa@example.com")
    first = client.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "my playlist disappeared"})
    assert first.json()["handed_off"] is False, first.json()
    turn = client.post(f"/api/conversations/{cid}/messages", headers=auth,
                       json={"text": "I want to talk to a real person please"}).json()
    assert turn["decision"] == "handoff" and turn["handed_off"] is True and turn["conversation_status"] == "human"
    assert "person will reply here" in turn["replies"][0]["text"]
    assert client.get(f"/api/conversations/{cid}", headers=auth).json()["status"] == "human"

    agent = staff_token(client, "agent-ann", "agent")
    queue = client.get("/api/handoffs", headers=bearer(agent)).json()
    mine = [h for h in queue if h["conversation_id"] == cid]
    assert len(mine) == 1 and mine[0]["reason"] == "customer_request" and mine[0]["context"] == {}
    detail = client.get(f"/api/handoffs/{mine[0]['id']}", headers=bearer(agent)).json()["handoff"]
    texts = [line["text"] for line in detail["context"]["transcript"]]
    assert texts[0] == "my playlist disappeared" and texts[-1] == "I want to talk to a real person please"
    assert detail["context"]["customer"]["display_name"] == "Rosa"
    assert detail["context"]["customer"]["email"] == "rosa@example.com"
    assert len(detail["context"]["intents"]) == 2
    assert detail["summary"].startswith("my playlist disappeared")

    # Later messages go to the human: no bot reply.
    quiet = client.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "hello?"}).json()
    assert quiet["decision"] == "wait_for_agent" and quiet["replies"] == []
    assert quiet["handed_off"] is False and quiet["conversation_status"] == "human"


def test_handoff_queue_filters(client: TestClient) -> None:
    agent = staff_token(client, "agent-filter", "agent")
    bad = client.get("/api/handoffs", params={"state": "lost"}, headers=bearer(agent))
    assert bad.status_code == 422 and "state must be" in bad.json()["error"]["message"]
    assert client.get("/api/handoffs", params={"team": "nobody"}, headers=bearer(agent)).json() == []
    assert client.get("/api/handoffs/987654", headers=bearer(agent)).status_code == 404


def test_internal_errors_never_show_internals(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    cid, auth = start(client)
    services = client.app.state.services  # type: ignore[attr-defined]

    def broken(*args: object) -> None:
        raise RuntimeError("secret internal detail")

    # Outside the pipeline's own error handling (which would turn the error into a handoff instead).
    monkeypatch.setattr(services.pipeline, "handle", broken)
    # Same app, but let the server's own error handler answer instead of re-raising into the test.
    lenient = TestClient(client.app, raise_server_exceptions=False)
    response = lenient.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "hello"})
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": INTERNAL_MESSAGE}}
    assert "secret" not in response.text and "Traceback" not in response.text
