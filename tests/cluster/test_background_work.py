"""Background work runs exactly once across processes: outbound delivery (both delivery loops running, against
the fake Telegram and Slack APIs), the SLA monitor and the recovery of unanswered messages."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine, text

from domain.enums import Channel
from domain.models import InboundMessage
from storage.conversations import ConversationRepository
from storage.db import Database
from tests.cluster.servers import (
    Server,
    add_user,
    fresh_postgres_database,
    login,
    new_conversation,
    say,
    servers,
)
from tests.fakes.runner import serve_in_thread
from tests.fakes.slack_api import TEAM_ID, FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

SIGNING_SECRET = "cluster-signing-secret-0123456789"
WEBHOOK_SECRET = "cluster_webhook-secret"
_updates = itertools.count(700_000)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeTelegram, FakeSlack]]:
    """The fake platform APIs, served from this test process on 127.0.0.1."""
    telegram, slack = FakeTelegram(), FakeSlack()
    with serve_in_thread(telegram.app, "fake-telegram") as t_url, serve_in_thread(slack.app, "fake-slack") as s_url:
        telegram.base_url, slack.base_url = t_url, s_url
        yield telegram, slack


@pytest.fixture(scope="module")
def database(postgres_database: str) -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def pair(database: str, fakes: tuple[FakeTelegram, FakeSlack], tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[tuple[Server, Server]]:
    """Two processes with both channels enabled and SLA targets of seconds."""
    telegram, slack = fakes
    env = {
        "FRONTDESK_TELEGRAM__ENABLED": "true", "FRONTDESK_TELEGRAM__BOT_TOKEN": telegram.token,
        "FRONTDESK_TELEGRAM__WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FRONTDESK_TELEGRAM__API_BASE_URL": f"{telegram.base_url}/bot",
        "FRONTDESK_TELEGRAM__FILE_BASE_URL": f"{telegram.base_url}/file/bot",
        "FRONTDESK_SLACK__ENABLED": "true", "FRONTDESK_SLACK__BOT_TOKEN": slack.token,
        "FRONTDESK_SLACK__SIGNING_SECRET": SIGNING_SECRET, "FRONTDESK_SLACK__API_BASE_URL": f"{slack.base_url}/api/",
        "FRONTDESK_SERVER__PUBLIC_BASE_URL": "https://help.example.test",
    }
    for level in ("critical", "high", "normal", "low"):
        env[f"FRONTDESK_HANDOFF__SLA__{level.upper()}__FIRST_RESPONSE_MINUTES"] = "0.02"
        env[f"FRONTDESK_HANDOFF__SLA__{level.upper()}__RESOLUTION_MINUTES"] = "0.04"
    with servers(("a", "b"), tmp_path_factory.mktemp("work"), database, env) as (a, b):
        yield a, b


def telegram_update(server: Server, user: int, text: str) -> int:
    body = {"update_id": next(_updates), "message": {
        "message_id": next(_updates), "date": int(time.time()), "text": text,
        "chat": {"id": user, "type": "private", "first_name": "Kim"},
        "from": {"id": user, "is_bot": False, "first_name": "Kim"}}}
    response = httpx.post(f"{server.url}/telegram/webhook", json=body, timeout=60,
                          headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
    return response.status_code


def slack_dm(server: Server, user: str, text: str) -> int:
    body = {"token": "unused", "team_id": TEAM_ID, "api_app_id": "A0FAKEAPP", "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
            "event": {"type": "message", "channel_type": "im", "channel": f"D{user}", "user": user, "text": text,
                      "ts": f"{time.time():.6f}", "team": TEAM_ID}}
    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=raw)
    assert signature is not None
    response = httpx.post(f"{server.url}/slack/events", content=raw, timeout=60, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature})
    return response.status_code


def test_every_reply_is_delivered_once_while_both_delivery_loops_run(
        pair: tuple[Server, Server], fakes: tuple[FakeTelegram, FakeSlack]) -> None:
    telegram, slack = fakes
    users = list(range(91_000, 91_030))
    for i, user in enumerate(users):
        assert telegram_update(pair[i % 2], user, "how do I change my payment card") == 200
    slackers = [f"U{n:07d}" for n in range(20)]
    for i, slacker in enumerate(slackers):
        assert slack_dm(pair[i % 2], slacker, "my app keeps crashing") == 200
    wait_until(lambda: all(telegram.sent(str(u)) for u in users), timeout=60, what="every Telegram reply")
    wait_until(lambda: all(slack.posted(f"D{u}") for u in slackers), timeout=60, what="every Slack reply")
    # An agent replies to a Telegram customer through one process; either process's loop may deliver it.
    admin = login(pair[0].url)
    assert telegram_update(pair[0], 92_000, "I want to talk to a human") == 200
    telegram.wait_sent("92000", 1, timeout=30)
    handoff = wait_until(lambda: next((h for h in httpx.get(f"{pair[1].url}/api/handoffs", headers=admin,
                                                              timeout=30).json()
                                       if h["channel"] == "telegram"), None), what="the Telegram handoff")
    replied = httpx.post(f"{pair[1].url}/api/handoffs/{handoff['id']}/reply", headers=admin, timeout=30,
                         json={"text": "Hello, Ann here."})
    assert replied.status_code == 200, replied.text
    telegram.wait_sent("92000", 2, timeout=30)
    time.sleep(3)  # several more delivery passes of both processes: nothing may be sent again
    assert {u: len(telegram.sent(str(u))) for u in users} == dict.fromkeys(users, 1)
    assert {u: len(slack.posted(f"D{u}")) for u in slackers} == dict.fromkeys(slackers, 1)
    assert [c.params["text"] for c in telegram.sent("92000")][-1].endswith("Hello, Ann here.")
    assert len(telegram.sent("92000")) == 2


def _events(database: str, kind: str) -> list[Any]:
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT handoff_id, payload FROM events WHERE kind = :k ORDER BY id"),
                                     {"k": kind}))
    finally:
        engine.dispose()


def test_the_sla_monitor_flags_each_breach_once_across_processes(pair: tuple[Server, Server], database: str) -> None:
    handoffs = []
    for i in range(6):
        conversation, auth = new_conversation(pair[i % 2].url)
        assert say(pair[i % 2].url, conversation, auth, "I want to talk to a human please")["handed_off"]
        handoffs.append(conversation)
    admin = login(pair[0].url)
    ids = {h["id"] for h in httpx.get(f"{pair[0].url}/api/handoffs", headers=admin, timeout=30).json()
           if h["conversation_id"] in handoffs}
    assert len(ids) == 6

    def breached() -> list[Any] | None:
        events = [e for e in _events(database, "sla.breached") if e.handoff_id in ids]
        return events if len(events) >= 12 else None

    wait_until(breached, timeout=30, what="both SLA breaches of every handoff", every=0.5)
    time.sleep(3)  # more checks by both processes: still one event per breach
    events = [e for e in _events(database, "sla.breached") if e.handoff_id in ids]
    targets = sorted((e.handoff_id, (e.payload if isinstance(e.payload, dict) else json.loads(e.payload))["target"])
                     for e in events)
    assert targets == sorted((i, t) for i in ids for t in ("first_response", "resolution"))


def test_a_message_left_unanswered_by_a_dead_process_is_answered_once(pair: tuple[Server, Server],
                                                                       database: str) -> None:
    conversation, auth = new_conversation(pair[0].url)
    # What a process that died right after storing the message leaves behind: received, lease running out.
    db = Database(database)
    try:
        repo = ConversationRepository(db, inbound_lease=timedelta(seconds=1))
        stored, _ = repo.record_inbound(InboundMessage(conversation, "I was charged twice", Channel.WEB, "web:lost:1"))
        assert stored.status == "received"

        def answered() -> bool:
            return repo.get_message(stored.id).status == "processed"

        wait_until(answered, timeout=30, what="a live process to answer the message")
        time.sleep(2)
        replies = repo.replies_to(stored.id)
        assert len(replies) == 1
        assert datetime.now(UTC) - stored.created_at < timedelta(minutes=1)
    finally:
        db.dispose()
    transcript = httpx.get(f"{pair[1].url}/api/conversations/{conversation}", headers=auth, timeout=30).json()
    assert [m["sender"] for m in transcript["messages"]] == ["customer", "bot"]


def test_a_job_table_shows_who_ran_the_exclusive_jobs(pair: tuple[Server, Server]) -> None:
    admin = login(pair[0].url)
    agent = add_user(pair[0].url, admin, "ops-viewer", ["agent"])
    assert httpx.get(f"{pair[1].url}/api/admin/process", headers=agent, timeout=30).status_code == 403
    jobs = {j["name"]: j for j in httpx.get(f"{pair[1].url}/api/admin/process", headers=admin,
                                            timeout=30).json()["jobs"]}
    assert jobs["sla-monitor"]["runs"] > 0 and jobs["sla-monitor"]["held_by"]
    assert jobs["delivery"]["runs"] > 0 and jobs["recovery"]["runs"] > 0
