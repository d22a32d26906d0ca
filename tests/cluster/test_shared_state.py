"""Separate ``frontdesk serve`` processes on one PostgreSQL database behave as one service: an article, a model
activation, a staff change or a live event made through one process reaches the other (real processes, hash
encoder, the real change feed over LISTEN/NOTIFY)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.servers import (
    Server,
    add_user,
    fresh_postgres_database,
    login,
    new_conversation,
    process_view,
    say,
    servers,
    top_hit,
)
from tests.conftest import REPO
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

ARTICLE = {"title": "Quokka passport renewal", "tags": ["quokka"],
           "body": "Renew a quokka passport at the zebra office.\n\n## Documents\nBring the quokka passport and "
                   "a zebra stamp to renew the quokka passport."}
QUESTION = "how do I renew my quokka passport at the zebra office"


@pytest.fixture(scope="module")
def database(postgres_database: str) -> Iterator[str]:
    """A fresh database for this module's processes (``postgres_database`` first: it fails in CI without one)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def pair(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two processes with separate data folders on one database, started at the same moment."""
    with servers(("a", "b"), tmp_path_factory.mktemp("pair"), database) as (a, b):
        yield a, b


def test_processes_started_together_on_an_empty_database_share_one_seed_and_one_model(
        pair: tuple[Server, Server]) -> None:
    a, b = pair
    admin = login(a.url)
    views = [process_view(s.url, admin) for s in pair]
    assert views[0]["process"] != views[1]["process"]
    assert views[0]["model_version"] == views[1]["model_version"]
    assert views[0]["articles"] == views[1]["articles"] == 55 and views[0]["chunks"] == views[1]["chunks"]
    assert all(v["change_feed_connected"] for v in views)
    versions = httpx.get(f"{b.url}/api/trainer/versions", headers=admin, timeout=30).json()
    assert [(v["status"], v["created_by"]) for v in versions] == [("active", "startup")]
    articles = httpx.get(f"{b.url}/api/articles", timeout=30).json()
    assert len(articles) == len({x["id"] for x in articles}) == 55


def test_an_article_edited_through_one_process_is_answered_from_by_the_other(pair: tuple[Server, Server]) -> None:
    a, b = pair
    editor = login(a.url)
    created = httpx.put(f"{a.url}/api/articles/quokka-passport", json=ARTICLE, headers=editor, timeout=30)
    assert created.status_code == 200, created.text
    wait_until(lambda: top_hit(b.url, editor, QUESTION) == "quokka-passport", what="b to find the new article")
    conversation, auth = new_conversation(b.url)
    turn = say(b.url, conversation, auth, QUESTION)
    cited = {c["url"] for reply in turn["replies"] for c in reply.get("citations", [])}
    assert turn["decision"] in ("answer", "suggest") and "/help/articles/quokka-passport" in cited

    edited = {**ARTICLE, "title": "Platypus licence", "tags": ["platypus"],
              "body": "Apply for a platypus licence online.\n\n## Steps\nFill in the platypus licence form."}
    assert httpx.put(f"{a.url}/api/articles/quokka-passport", json=edited, headers=editor, timeout=30).is_success
    wait_until(lambda: top_hit(b.url, editor, "platypus licence form") == "quokka-passport", what="the edit on b")
    hits = httpx.post(f"{b.url}/api/articles/try", json={"text": QUESTION}, headers=editor, timeout=30).json()["hits"]
    assert all("zebra" not in h["passage"] for h in hits)  # the old text is gone everywhere

    assert httpx.delete(f"{a.url}/api/articles/quokka-passport", headers=editor, timeout=30).status_code == 204
    wait_until(lambda: top_hit(b.url, editor, "platypus licence form") != "quokka-passport", what="the delete on b")
    turn = say(b.url, conversation, auth, "platypus licence form")
    cited = {c["url"] for reply in turn["replies"] for c in reply.get("citations", [])}
    assert "/help/articles/quokka-passport" not in cited


def test_a_cli_import_into_the_running_deployment_reaches_every_process(pair: tuple[Server, Server],
                                                                        tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "wombat.md").write_text("---\nid: wombat-parking\ntitle: Wombat parking permits\n---\n"
                                      "Wombat parking permits are issued at the marsupial desk.\n")
    env = {**pair[0].env, "FRONTDESK_DATA_DIR": str(tmp_path / "cli-data")}
    done = subprocess.run([sys.executable, "-m", "cli", "import-articles", str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 created" in done.stdout
    editor = login(pair[0].url)
    for server in pair:
        def found(s: Server = server) -> bool:
            return top_hit(s.url, editor, "wombat parking permit marsupial desk") == "wombat-parking"

        wait_until(found, what=f"{server.name} to find the imported article")


def test_a_model_activated_on_one_process_serves_on_the_other_also_after_it_restarts(
        pair: tuple[Server, Server], database: str, tmp_path: Path) -> None:
    a, b = pair
    trainer = login(a.url)
    # Something new to learn, so the retrained model is a new version.
    conversation, auth = new_conversation(a.url)
    turn = say(a.url, conversation, auth, "my quokka ate the invoice, can you resend it")
    acted = httpx.post(f"{a.url}/api/trainer/actions", headers=trainer, timeout=30,
                       json={"message_ids": [turn["message"]["id"]], "action": "relabel", "intent": "refund_request"})
    assert acted.status_code == 200, acted.text
    started = httpx.post(f"{a.url}/api/trainer/retrain", headers=trainer, timeout=30)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    def finished() -> dict[str, Any] | None:
        job = httpx.get(f"{b.url}/api/trainer/jobs/{job_id}", headers=trainer, timeout=30).json()  # progress on b
        return job if job["status"] in ("succeeded", "failed") else None

    job = wait_until(finished, timeout=240, what="the retrain", every=0.5)
    assert job["status"] == "succeeded", job
    candidate = job["candidate_version"]
    assert candidate != process_view(b.url, trainer)["model_version"]
    activated = httpx.post(f"{a.url}/api/trainer/versions/{candidate}/activate", headers=trainer, timeout=30)
    assert activated.status_code == 200, activated.text
    wait_until(lambda: process_view(b.url, trainer)["model_version"] == candidate, what="b to serve the candidate")

    b.stop()
    again = Server("b-again", tmp_path / "b-again", database).start().wait_ready()  # a new data folder, too
    try:
        assert process_view(again.url, trainer)["model_version"] == candidate
    finally:
        again.stop()
    b.start().wait_ready()


def test_fifty_claims_split_across_both_processes_have_one_winner(pair: tuple[Server, Server]) -> None:
    a, b = pair
    admin = login(a.url)
    conversation, auth = new_conversation(a.url)
    assert say(a.url, conversation, auth, "I want to talk to a human please")["handed_off"]
    handoff = next(h for h in httpx.get(f"{b.url}/api/handoffs", headers=admin, timeout=30).json()
                   if h["conversation_id"] == conversation)
    agents = [add_user(a.url, admin, f"claimer{i}", ["agent"]) for i in range(50)]
    barrier = threading.Barrier(50)
    results: list[int] = []

    def claim(i: int) -> None:
        server = pair[i % 2]
        barrier.wait()
        response = httpx.post(f"{server.url}/api/handoffs/{handoff['id']}/claim", headers=agents[i], timeout=60)
        results.append(response.status_code)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 49


def _read_stream(server: Server, headers: dict[str, str], events: list[tuple[str, str, dict[str, Any]]],
                 ended: threading.Event, ready: threading.Event) -> None:
    """Collect (id, kind, data) of a desk stream until it ends."""
    try:
        with httpx.stream("GET", f"{server.url}/api/desk/stream", headers=headers, timeout=60) as response:
            assert response.status_code == 200
            ready.set()
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith(":") or line.startswith("retry:"):
                    continue
                if not line:
                    if "event" in fields:
                        events.append((fields.get("id", ""), fields["event"], json.loads(fields.get("data", "{}"))))
                    fields = {}
                    continue
                key, _, value = line.partition(": ")
                fields[key] = value
    except httpx.HTTPError:
        pass
    finally:
        ready.set()
        ended.set()


def test_live_events_of_one_process_reach_streams_on_the_other_in_order_and_resume(
        pair: tuple[Server, Server]) -> None:
    a, b = pair
    admin = login(a.url)
    agent = add_user(a.url, admin, "streamer", ["agent", "supervisor"])
    events: list[tuple[str, str, dict[str, Any]]] = []
    ended, ready = threading.Event(), threading.Event()
    threading.Thread(target=_read_stream, args=(b, agent, events, ended, ready), daemon=True).start()
    assert ready.wait(30)
    conversation, auth = new_conversation(a.url)
    assert say(a.url, conversation, auth, "I want to talk to a human please")["handed_off"]
    handoff = next(h for h in httpx.get(f"{a.url}/api/handoffs", headers=admin, timeout=30).json()
                   if h["conversation_id"] == conversation)
    hid = handoff["id"]
    assert httpx.post(f"{a.url}/api/handoffs/{hid}/claim", headers=agent, timeout=30).status_code == 200
    for i in range(5):
        note = httpx.post(f"{a.url}/api/handoffs/{hid}/notes", headers=agent, json={"text": f"note {i}"}, timeout=30)
        assert note.status_code == 200, note.text

    def mine() -> list[tuple[str, str, dict[str, Any]]]:
        return [e for e in events if e[2].get("handoff_id") == hid]

    wait_until(lambda: len([e for e in mine() if e[1] == "note.added"]) == 5, what="the notes on b's stream")
    kinds = [kind for _, kind, _ in mine()]
    assert kinds[:2] == ["handoff.created", "handoff.claimed"] and kinds.count("note.added") == 5
    ids = [event_id for event_id, _, _ in events]
    assert len(ids) == len(set(ids))
    # Resume from the claim: exactly what came after it, in the same order.
    claim_id = next(e[0] for e in mine() if e[1] == "handoff.claimed")
    resumed: list[tuple[str, str, dict[str, Any]]] = []
    ended2, ready2 = threading.Event(), threading.Event()
    threading.Thread(target=_read_stream, args=(a, {**agent, "Last-Event-ID": claim_id}, resumed, ended2, ready2),
                     daemon=True).start()
    wait_until(lambda: len([e for e in resumed if e[2].get("handoff_id") == hid]) >= 5, what="the resumed stream")
    position = [e[0] for e in events].index(claim_id)
    after_claim = [e[0] for e in events[position + 1:] if e[2].get("handoff_id") == hid]
    assert [e[0] for e in resumed if e[2].get("handoff_id") == hid] == after_claim


def test_a_disabled_account_loses_its_open_stream_and_its_session_on_every_process(
        pair: tuple[Server, Server]) -> None:
    a, b = pair
    admin = login(a.url)
    agent = add_user(a.url, admin, "leaver", ["agent"])
    events: list[tuple[str, str, dict[str, Any]]] = []
    ended, ready = threading.Event(), threading.Event()
    threading.Thread(target=_read_stream, args=(b, agent, events, ended, ready), daemon=True).start()
    assert ready.wait(30)
    disabled = httpx.patch(f"{a.url}/api/admin/users/leaver", headers=admin, json={"active": False}, timeout=30)
    assert disabled.status_code == 200, disabled.text
    assert ended.wait(15), "b's stream stayed open for a disabled account"
    assert [kind for _, kind, _ in events][-1:] == ["auth"]
    assert httpx.get(f"{b.url}/api/handoffs", headers=agent, timeout=30).status_code == 401

    # A logout through one process ends that session's stream on the other as well.
    other = add_user(a.url, admin, "logsout", ["agent"])
    events2: list[tuple[str, str, dict[str, Any]]] = []
    ended2, ready2 = threading.Event(), threading.Event()
    threading.Thread(target=_read_stream, args=(b, other, events2, ended2, ready2), daemon=True).start()
    assert ready2.wait(30)
    assert httpx.post(f"{a.url}/api/auth/logout", headers=other, timeout=30).status_code == 204
    assert ended2.wait(15), "b's stream stayed open after a logout through a"
