"""The delivery worker (retry with back-off, never drop) and the SLA monitor, on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.delivery import DeliveryError, DeliveryWorker, backoff
from domain.enums import Channel
from domain.models import Conversation, StoredMessage
from handoff.monitor import watch_sla
from handoff.notify import ChangeNotifier
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.desk import DeskStore
from storage.events import EventLog
from tests.storage.test_desk_contract import open_handoff

pytestmark = pytest.mark.unit


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'delivery.db'}")
    database.migrate()
    yield database
    database.dispose()


class FlakySender:
    """A ChannelSender of our own for tests: fails the first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str | None, str]] = []

    async def send(self, conversation: Conversation, message: StoredMessage) -> str | None:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("platform answered 500")
        self.sent.append((conversation.external_ref, message.text))
        return f"p-{message.id}"


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 5), (2, 10), (3, 20), (6, 160), (20, 600)])
def test_backoff(attempts: int, seconds: float) -> None:
    assert backoff(attempts, 5, 600) == seconds


def test_failed_delivery_is_kept_retried_and_delivered(db: Database) -> None:
    _, hid = open_handoff(db, channel=Channel.TELEGRAM)
    repo = ConversationRepository(db)
    reply = DeskStore(db).reply(hid, "ann", "Ann", "Hello from Ann", delivery_status="pending")
    sender = FlakySender(failures=2)
    worker = DeliveryWorker(repo, {Channel.TELEGRAM: sender}, ChangeNotifier(), retry_base_seconds=5)
    now = datetime.now(UTC) + timedelta(seconds=1)

    assert asyncio.run(worker.run_once(now)) == (0, 2)  # the handoff notice and the agent reply both fail
    stuck = repo.get_message(reply.id)
    assert (stuck.delivery_status, stuck.delivery_error, stuck.delivery_attempts) == (
        "failed", "platform answered 500", 1)
    assert asyncio.run(worker.run_once(now + timedelta(seconds=1))) == (0, 0)  # not due yet
    assert asyncio.run(worker.run_once(now + timedelta(seconds=6))) == (2, 0)
    delivered = repo.get_message(reply.id)
    assert delivered.delivery_status == "delivered" and delivered.payload["platform_id"] == f"p-{reply.id}"
    assert [text for _, text in sender.sent][-1] == "Hello from Ann"


def test_a_channel_without_a_sender_keeps_its_messages(db: Database) -> None:
    open_handoff(db, channel=Channel.SLACK)
    repo = ConversationRepository(db)
    worker = DeliveryWorker(repo, {}, ChangeNotifier())
    assert asyncio.run(worker.run_once(datetime.now(UTC) + timedelta(seconds=1))) == (0, 1)
    (message, _) = repo.due_deliveries(datetime.now(UTC) + timedelta(days=1))[0]
    assert message.delivery_error == "the slack channel is not configured"


def test_sla_monitor_flags_and_wakes_streams(db: Database) -> None:
    _, hid = open_handoff(db, due_in=timedelta(seconds=-5))
    notifier = ChangeNotifier()

    async def scenario() -> bool:
        watcher = asyncio.create_task(watch_sla(DeskStore(db), notifier, every_seconds=0.05))
        try:
            return await notifier.wait(5)
        finally:
            watcher.cancel()

    assert asyncio.run(scenario()) is True
    breaches = [e for e in EventLog(db).after(0) if e.kind == "sla.breached"]
    assert [(e.handoff_id, e.payload["target"]) for e in breaches] == [(hid, "first_response")]
