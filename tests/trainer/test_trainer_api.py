"""The trainer loop through HTTP: inbox, actions and their undo, added examples, background retrain, comparison,
activation, rejection, rollback, export."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr

from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings
from tests.conftest import make_settings

pytestmark = pytest.mark.integration
PASSWORD = "trainer-admin-password"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("trainer"),
                             auth=AuthSettings(bootstrap_admin_password=SecretStr(PASSWORD)))
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as test_client:
        yield test_client


def login(client: TestClient, username: str, roles: list[str]) -> dict[str, str]:
    admin = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD}).json()["token"]
    client.post("/api/admin/users", headers={"Authorization": f"Bearer {admin}"},
                json={"username": username, "password": f"{username}-pw-1", "roles": roles})
    token = client.post("/api/auth/login", json={"username": username, "password": f"{username}-pw-1"}).json()
    return {"Authorization": f"Bearer {token['token']}"}


def say(client: TestClient, *texts: str) -> str:
    created = client.post("/api/conversations", json={}).json()
    auth = {"Authorization": f"Bearer {created['customer_token']}"}
    for text in texts:
        assert client.post(f"/api/conversations/{created['conversation_id']}/messages", headers=auth,
                           json={"text": text}).status_code == 200
    return str(created["conversation_id"])


def inbox_messages(client: TestClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    body = client.get("/api/trainer/inbox", headers=auth).json()
    return {m["text"]: m for c in body["clusters"] for m in c["messages"]}


def wait_job(client: TestClient, auth: dict[str, str], job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 240  # two fits (candidate and the startup model's recipe) on a shared CPU
    while time.monotonic() < deadline:
        job = client.get(f"/api/trainer/jobs/{job_id}", headers=auth).json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError("the retrain did not finish")


def test_only_trainers_and_admins(client: TestClient) -> None:
    agent = login(client, "t-agent", ["agent"])
    assert client.get("/api/trainer/inbox", headers=agent).status_code == 403
    assert client.post("/api/trainer/retrain", headers=agent).status_code == 403
    assert client.get("/api/trainer/inbox").status_code == 401
    trainer = login(client, "t-trainer", ["trainer"])
    assert client.get("/api/trainer/inbox", headers=trainer).status_code == 200


def test_the_whole_loop(client: TestClient, tmp_path: Path) -> None:
    trainer = login(client, "loop-trainer", ["trainer"])
    say(client, "zorblax fizzwop qrumble", "my kazoo subscription glorps")
    say(client, "xyzzy plugh frotz")
    items = inbox_messages(client, trainer)
    assert {"zorblax fizzwop qrumble", "my kazoo subscription glorps", "xyzzy plugh frotz"} <= set(items)
    first = items["zorblax fizzwop qrumble"]
    assert "out of scope" in first["reasons"] or "low confidence" in first["reasons"]
    assert first["model_version"].startswith("lin-")  # the default method: the linear head

    bad = client.post("/api/trainer/actions", headers=trainer,
                      json={"message_ids": [first["message_id"]], "action": "relabel", "intent": "nope"})
    assert bad.status_code == 422 and "unknown intent" in bad.json()["error"]["message"]
    assert client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [first["message_id"]], "action": "relabel", "intent": "cancel_subscription",
        "keep_as_regression": True}).json() == {"applied": 1}
    assert client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [items["xyzzy plugh frotz"]["message_id"]], "action": "mark_oos"}).json()["applied"] == 1
    assert client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [items["my kazoo subscription glorps"]["message_id"]], "action": "ignore"}).status_code == 200
    remaining = inbox_messages(client, trainer)
    assert not {"zorblax fizzwop qrumble", "my kazoo subscription glorps", "xyzzy plugh frotz"} & set(remaining)
    cases = client.get("/api/trainer/regression-cases", headers=trainer).json()
    assert [(c["text"], c["expected_intent"]) for c in cases] == [("zorblax fizzwop qrumble", "cancel_subscription")]

    before = client.get("/api/trainer/versions", headers=trainer).json()
    active_before = next(v for v in before if v["status"] == "active")
    started = client.post("/api/trainer/retrain", headers=trainer)
    assert started.status_code == 202
    job = wait_job(client, trainer, started.json()["id"])
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["step"] == "done", job
    candidate = next(v for v in client.get("/api/trainer/versions", headers=trainer).json()
                     if v["version"] == job["candidate_version"])
    assert candidate["status"] == "candidate" and candidate["training_size"] > 300
    metrics = candidate["metrics"]
    assert metrics["heldout_size"] > 0 and metrics["regression_cases"] == 1
    assert set(metrics["candidate"]) >= {"accuracy", "macro_f1", "false_oos", "regression_failures", "version"}
    assert metrics["heldout"]["out_of_scope"] == 0 and "oos_recall" not in metrics["candidate"]
    # The startup model learnt from all of nlu.yml: its recipe is fitted again without the held-out slice.
    assert metrics["active"]["version"] == active_before["version"] and metrics["active"]["basis"] == "refit"

    if metrics["candidate"]["regression_failures"]:
        refused = client.post(f"/api/trainer/versions/{candidate['version']}/activate", headers=trainer)
        assert refused.status_code == 409 and "'zorblax fizzwop qrumble' (expected cancel_subscription, got " in (
            refused.json()["error"]["message"])
        activated = client.post(f"/api/trainer/versions/{candidate['version']}/activate", headers=trainer,
                                json={"force": True})
    else:
        activated = client.post(f"/api/trainer/versions/{candidate['version']}/activate", headers=trainer)
    assert activated.status_code == 200 and activated.json()["status"] == "active"

    # New predictions come from the new version; the relabelled message is now a training example.
    say(client, "zorblax fizzwop qrumble")
    services = client.app.state.services  # type: ignore[attr-defined]
    assert services.pipeline.classifier.version == candidate["version"]
    vector = services.encoder.encode(["zorblax fizzwop qrumble"])[0]
    assert services.pipeline.classifier.predict("zorblax fizzwop qrumble", vector).top_intent == "cancel_subscription"

    # Rolling back runs today's regression case through the startup model, which never learnt it.
    refused = client.post(f"/api/trainer/versions/{active_before['version']}/activate", headers=trainer)
    assert refused.status_code == 409, refused.text
    assert "fails 1 of 1 regression case(s): 'zorblax fizzwop qrumble' (expected cancel_subscription, got " in (
        refused.json()["error"]["message"])
    assert services.pipeline.classifier.version == candidate["version"]
    rolled_back = client.post(f"/api/trainer/versions/{active_before['version']}/activate", headers=trainer,
                              json={"force": True})
    assert rolled_back.status_code == 200 and services.pipeline.classifier.version == active_before["version"]
    statuses = {v["version"]: v["status"] for v in client.get("/api/trainer/versions", headers=trainer).json()}
    assert statuses[active_before["version"]] == "active" and statuses[candidate["version"]] == "retired"

    exported = client.get("/api/trainer/export", headers=trainer)
    assert exported.status_code == 200 and exported.headers["content-disposition"].endswith('filename="nlu.yml"')
    doc = yaml.safe_load(exported.text)
    blocks = {(b.get("intent") or b.get("synonym") or b.get("regex") or b.get("lookup")): b for b in doc["nlu"]}
    assert "zorblax fizzwop qrumble" in blocks["cancel_subscription"]["examples"]
    assert "xyzzy plugh frotz" not in exported.text  # out-of-scope examples are not an intent
    assert any("synonym" in b for b in doc["nlu"]) and any("regex" in b for b in doc["nlu"])


def test_agent_corrections_reach_the_inbox(client: TestClient) -> None:
    trainer = login(client, "corr-trainer", ["trainer"])
    supervisor = login(client, "corr-sup", ["supervisor"])
    cid = say(client, "I want to talk to a human about my invoice")
    (handoff,) = [h for h in client.get("/api/handoffs", headers=supervisor).json() if h["conversation_id"] == cid]
    client.put(f"/api/handoffs/{handoff['id']}/intent", headers=supervisor, json={"intent": "refund_request"})
    items = inbox_messages(client, trainer)
    item = items["I want to talk to a human about my invoice"]
    assert item["corrected_intent"] == "refund_request" and "corrected by an agent" in item["reasons"]


def test_undo_a_review_and_remove_an_added_example(client: TestClient) -> None:
    trainer = login(client, "undo-trainer", ["trainer"])
    say(client, "wumpus gronk bazzle", "fnord quib lorpa")
    items = inbox_messages(client, trainer)
    relabelled, ignored = items["wumpus gronk bazzle"], items["fnord quib lorpa"]
    client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [relabelled["message_id"]], "action": "relabel", "intent": "refund_request",
        "keep_as_regression": True})
    client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [ignored["message_id"]], "action": "ignore"})
    reviews = client.get("/api/trainer/reviews", headers=trainer).json()
    assert [(r["text"], r["action"], r["intent"], r["reviewed_by"]) for r in reviews[:2]] == [
        ("fnord quib lorpa", "ignore", None, "undo-trainer"),
        ("wumpus gronk bazzle", "relabel", "refund_request", "undo-trainer")]
    examples = client.get("/api/trainer/examples", headers=trainer).json()
    assert examples[0]["text"] == "wumpus gronk bazzle" and examples[0]["intent"] == "refund_request"
    assert examples[0]["message_id"] == relabelled["message_id"]

    undone = client.delete(f"/api/trainer/reviews/{relabelled['message_id']}", headers=trainer)
    assert undone.status_code == 200 and undone.json() == {
        "message_id": relabelled["message_id"], "action": "relabel", "removed_example": True,
        "removed_regression_case": True}
    assert "wumpus gronk bazzle" in inbox_messages(client, trainer)
    assert "wumpus gronk bazzle" not in [e["text"] for e in client.get("/api/trainer/examples", headers=trainer).json()]
    assert "wumpus gronk bazzle" not in [c["text"] for c in
                                         client.get("/api/trainer/regression-cases", headers=trainer).json()]
    assert client.delete(f"/api/trainer/reviews/{relabelled['message_id']}", headers=trainer).status_code == 404

    # An added example can be removed on its own; the message stays reviewed.
    client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [relabelled["message_id"]], "action": "mark_oos"})
    example = next(e for e in client.get("/api/trainer/examples", headers=trainer).json()
                   if e["text"] == "wumpus gronk bazzle")
    assert example["intent"] is None
    assert client.delete(f"/api/trainer/examples/{example['id']}", headers=trainer).status_code == 204
    assert client.delete(f"/api/trainer/examples/{example['id']}", headers=trainer).status_code == 404
    assert "wumpus gronk bazzle" not in inbox_messages(client, trainer)
    agent = login(client, "undo-agent", ["agent"])
    assert client.get("/api/trainer/examples", headers=agent).status_code == 403
    assert client.delete(f"/api/trainer/reviews/{ignored['message_id']}", headers=agent).status_code == 403


def test_keep_current_rejects_the_candidate(client: TestClient) -> None:
    trainer = login(client, "reject-trainer", ["trainer"])
    say(client, "snizzle wobbet quarn")  # new data, so a new candidate
    message = inbox_messages(client, trainer)["snizzle wobbet quarn"]
    client.post("/api/trainer/actions", headers=trainer, json={
        "message_ids": [message["message_id"]], "action": "add_example", "intent": "greet"})
    active = next(v for v in client.get("/api/trainer/versions", headers=trainer).json() if v["status"] == "active")
    job = wait_job(client, trainer, client.post("/api/trainer/retrain", headers=trainer).json()["id"])
    assert job["status"] == "succeeded", job
    version = job["candidate_version"]
    assert version != active["version"]
    rejected = client.post(f"/api/trainer/versions/{version}/reject", headers=trainer)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["rejected_by"] == "reject-trainer"
    listed = next(v for v in client.get("/api/trainer/versions", headers=trainer).json() if v["version"] == version)
    assert listed["status"] == "rejected" and listed["rejected_at"] and listed["pruned_at"] is None
    again = client.post(f"/api/trainer/versions/{version}/reject", headers=trainer)
    assert again.status_code == 409 and "not a candidate" in again.json()["error"]["message"]
    services = client.app.state.services  # type: ignore[attr-defined]
    assert services.pipeline.classifier.version == active["version"]
