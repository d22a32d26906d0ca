"""What may go wrong with several processes: they start together on an empty database, one is killed with
``kill -9`` under load, PostgreSQL restarts under load. Nothing is lost, nothing is done twice, nothing hangs."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.cluster.private_postgres import private_postgres
from tests.cluster.servers import (
    Server,
    fresh_postgres_database,
    login,
    new_conversation,
    process_view,
    servers,
    top_hit,
)
from tests.fakes.runner import serve_in_thread
from tests.fakes.telegram_api import FakeTelegram
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

WEBHOOK_SECRET = "failure_webhook-secret"
QUESTIONS = ("how do I change my payment card", "I was charged twice", "hello", "the app crashes on my phone",
             "how do I download songs for offline listening", "thanks, bye", "can I share my plan with family")


def _rows(database: str, query: str) -> list[Any]:
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)))
    finally:
        engine.dispose()


def test_four_processes_started_at_once_on_an_empty_database_all_become_ready(
        postgres_database: str, tmp_path: Path) -> None:
    with fresh_postgres_database() as database, \
            servers(("p1", "p2", "p3", "p4"), tmp_path, database) as started:
        admin = login(started[0].url)
        views = [process_view(s.url, admin) for s in started]
        assert len({v["model_version"] for v in views}) == 1 and {v["articles"] for v in views} == {55}
        assert _rows(database, "SELECT count(*) FROM articles")[0][0] == 55
        assert _rows(database, "SELECT count(*) FROM model_versions")[0][0] == 1
        assert _rows(database, "SELECT count(*) FROM staff_users")[0][0] == 1


class Customers:
    """Web-chat customers posting to whichever process answers; a refused or cut-off post is sent again, with
    the same client_message_id, to the other process, the way the chat page retries."""

    def __init__(self, targets: list[Server]) -> None:
        self.targets = targets
        self.sent: dict[str, str] = {}  # client_message_id -> conversation id, for posts that were accepted
        self.retries = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def run(self, worker: int) -> None:
        conversation, auth = self._conversation(worker)
        for n in itertools.count():
            if self.stop.is_set():
                return
            key = f"w{worker}-m{n}"
            body = {"text": QUESTIONS[n % len(QUESTIONS)], "client_message_id": key}
            for attempt in itertools.count():
                server = self.targets[(worker + n + attempt) % len(self.targets)]
                try:
                    response = httpx.post(f"{server.url}/api/conversations/{conversation}/messages", json=body,
                                          headers=auth, timeout=30)
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                with self._lock:
                    self.retries += 1
                time.sleep(0.05)
            with self._lock:
                self.sent[key] = conversation

    def _conversation(self, worker: int) -> tuple[str, dict[str, str]]:
        for attempt in itertools.count():
            try:
                return new_conversation(self.targets[(worker + attempt) % len(self.targets)].url)
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("unreachable")


def test_kill_9_of_one_process_under_load_loses_and_doubles_nothing(postgres_database: str, tmp_path: Path) -> None:
    telegram = FakeTelegram()
    with serve_in_thread(telegram.app, "fake-telegram") as telegram_url, fresh_postgres_database() as database:
        telegram.base_url = telegram_url
        env = {"FRONTDESK_TELEGRAM__ENABLED": "true", "FRONTDESK_TELEGRAM__BOT_TOKEN": telegram.token,
               "FRONTDESK_TELEGRAM__WEBHOOK_SECRET": WEBHOOK_SECRET,
               "FRONTDESK_TELEGRAM__API_BASE_URL": f"{telegram_url}/bot",
               "FRONTDESK_TELEGRAM__FILE_BASE_URL": f"{telegram_url}/file/bot"}
        with servers(("a", "b"), tmp_path, database, env) as (a, b):
            customers = Customers([a, b])
            workers = [threading.Thread(target=customers.run, args=(i,), daemon=True) for i in range(8)]
            telegram_users: list[int] = []
            telegram_done = threading.Event()

            def telegram_load() -> None:
                for i in itertools.count():
                    if customers.stop.is_set():
                        break
                    user = 95_000 + i
                    body = {"update_id": 800_000 + i, "message": {
                        "message_id": i + 1, "date": int(time.time()), "text": QUESTIONS[i % len(QUESTIONS)],
                        "chat": {"id": user, "type": "private", "first_name": "Kim"},
                        "from": {"id": user, "is_bot": False, "first_name": "Kim"}}}
                    for attempt in itertools.count():  # Telegram re-sends an update until it gets a 2xx
                        server = (a, b)[(i + attempt) % 2]
                        try:
                            response = httpx.post(f"{server.url}/telegram/webhook", json=body, timeout=30,
                                                  headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
                            if response.status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        time.sleep(0.05)
                    telegram_users.append(user)
                    time.sleep(0.02)
                telegram_done.set()

            for w in workers:
                w.start()
            threading.Thread(target=telegram_load, daemon=True).start()
            wait_until(lambda: len(customers.sent) >= 60, timeout=120, what="load to build up", every=0.2)
            a.kill()  # kill -9 in the middle of the load
            killed_at = len(customers.sent)
            wait_until(lambda: len(customers.sent) >= killed_at + 60, timeout=120, what="b to carry the load",
                       every=0.2)
            customers.stop.set()
            for w in workers:
                w.join(60)
            assert telegram_done.wait(60)

            # Everything a customer sent is stored once and answered (or handed off) exactly once, by b.
            wait_until(lambda: _rows(database, "SELECT count(*) FROM messages WHERE status = 'received'")[0][0] == 0,
                       timeout=60, what="recovery of the turns a's death interrupted", every=0.5)
            web = {r.delivery_key: r for r in _rows(
                database, "SELECT id, delivery_key, status FROM messages WHERE sender = 'customer' "
                          "AND delivery_key LIKE 'web:%'")}
            expected = {f"web:{conversation}:{key}" for key, conversation in customers.sent.items()}
            assert expected <= set(web)  # nothing a customer got a 200 for is missing
            replies = {r.reply_to: r.n for r in _rows(
                database, "SELECT reply_to, count(*) AS n FROM messages WHERE sender = 'bot' AND reply_to IS NOT NULL "
                          "GROUP BY reply_to")}
            predictions = {r.message_id: r.n for r in _rows(
                database, "SELECT message_id, count(*) AS n FROM predictions GROUP BY message_id")}
            for key in expected:
                message = web[key]
                assert message.status == "processed"
                assert replies.get(message.id, 0) <= 1 and predictions.get(message.id, 0) <= 1
            assert all(n == 1 for n in replies.values())

            # Every Telegram reply reached its customer once (a send cut off by the kill may be repeated, and is
            # then marked as resent).
            def all_sent() -> bool:
                return all(telegram.sent(str(u)) for u in telegram_users)

            wait_until(all_sent, timeout=90, what="every Telegram reply", every=0.5)
            time.sleep(2)
            resent = {r.chat for r in _rows(
                database, "SELECT c.external_ref AS chat FROM messages m JOIN conversations c ON c.id = "
                          "m.conversation_id WHERE m.payload::text LIKE '%resent_after_interruption%'")}
            for user in telegram_users:
                count = len(telegram.sent(str(user)))
                assert count == 1 or (count == 2 and str(user) in resent), (user, count)
            assert b.proc is not None and b.proc.poll() is None


def test_a_postgres_restart_under_load_gives_503_then_recovers_by_itself(tmp_path: Path) -> None:
    with private_postgres() as postgres, servers(("a", "b"), tmp_path, postgres.url) as (a, b):
        conversation, auth = new_conversation(a.url)
        statuses: list[int] = []
        refusals: list[tuple[str | None, str]] = []
        stop = threading.Event()

        def load() -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                try:
                    response = httpx.post(f"{(a, b)[n % 2].url}/api/conversations/{conversation}/messages",
                                          headers=auth, timeout=20,
                                          json={"text": "hello", "client_message_id": f"pg-{uuid.uuid4().hex}"})
                    statuses.append(response.status_code)
                    if response.status_code == 503:
                        refusals.append((response.headers.get("Retry-After"), response.json()["error"]["code"]))
                except httpx.TimeoutException:
                    statuses.append(-1)  # a hang: never acceptable
                time.sleep(0.05)

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        wait_until(lambda: statuses.count(200) >= 5, what="load", timeout=60)
        postgres.stop()
        wait_until(lambda: 503 in statuses, what="503 while the database is down", timeout=60)
        assert httpx.get(f"{a.url}/readyz", timeout=20).status_code == 503
        postgres.start()
        seen = len(statuses)
        wait_until(lambda: statuses[seen:].count(200) >= 5, what="the service to reconnect by itself", timeout=90)
        stop.set()
        thread.join(30)
        assert set(statuses) <= {200, 503}, sorted(set(statuses))
        assert refusals and all(retry and code == "unavailable" for retry, code in refusals)
        for server in (a, b):
            def ready(s: Server = server) -> bool:
                return httpx.get(f"{s.url}/readyz", timeout=20).status_code == 200

            wait_until(ready, what=f"{server.name} ready again", timeout=60)
        # The change feed reconnected too: an edit through a reaches b.
        editor = login(a.url)
        article = {"title": "Echidna spines", "body": "Echidna spines are trimmed at the monotreme salon."}
        assert httpx.put(f"{a.url}/api/articles/echidna", json=article, headers=editor, timeout=30).is_success

        wait_until(lambda: top_hit(b.url, editor, "echidna spines monotreme salon") == "echidna",
                   what="b to follow changes again", timeout=30)


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two processes on one SQLite file (one host), as ``frontdesk serve --workers 2`` runs them."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    with servers(("a", "b"), tmp_path, database) as pair:
        yield pair[0], pair[1]


def test_two_processes_on_one_sqlite_file_follow_each_other(sqlite_pair: tuple[Server, Server]) -> None:
    a, b = sqlite_pair
    editor = login(a.url)
    article = {"title": "Numbat sightings", "body": "Report numbat sightings to the termite desk."}
    assert httpx.put(f"{a.url}/api/articles/numbat", json=article, headers=editor, timeout=30).is_success

    wait_until(lambda: top_hit(b.url, editor, "numbat sightings termite desk") == "numbat",
               what="b to find a's article", timeout=30)
    assert process_view(a.url, editor)["model_version"] == process_view(b.url, editor)["model_version"]


def test_serve_workers_2_runs_two_processes_and_replaces_one_that_dies(tmp_path: Path) -> None:
    server = Server("workers", tmp_path / "workers", f"sqlite:///{tmp_path / 'workers.db'}",
                    args=("--workers", "2")).start()
    try:
        server.wait_ready()
        admin = login(server.url)

        def owners(n: int = 40) -> set[tuple[str, int]]:
            seen = set()
            for _ in range(n):  # a new connection each time: the kernel spreads them over the workers
                view = process_view(server.url, admin)
                seen.add((view["process"], view["pid"]))
            return seen

        def two_workers(excluding: int = 0) -> set[tuple[str, int]] | None:
            seen = owners()
            return seen if len(seen) == 2 and excluding not in {pid for _, pid in seen} else None

        first = wait_until(two_workers, what="two workers answering")
        victim = sorted(pid for _, pid in first)[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_until(lambda: two_workers(excluding=victim), timeout=120,
                              what="uvicorn to start a new worker", every=0.5)
        assert len(replaced) == 2
        conversation, auth = new_conversation(server.url)
        turn = httpx.post(f"{server.url}/api/conversations/{conversation}/messages", headers=auth, timeout=30,
                          json={"text": "hello", "client_message_id": "w-1"})
        assert turn.status_code == 200
    finally:
        server.stop()
