"""The delivery worker (leased to one process, retried with back-off, in order, never dropped) and the SLA check,
on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.delivery import DeliveryError, DeliveryWorker, backoff
from domain.enums import Channel
from domain.models import Conversation, StoredMessage
from handoff.notify import ChangeNotifier
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.desk import DeskStore
from storage.events import EventLog
from storage.tail import Position
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


def _worker(repo: ConversationRepository, senders: dict[Channel, FlakySender], owner: str = "p1"
            ) -> DeliveryWorker:
    return DeliveryWorker(repo, senders, ChangeNotifier(), owner, retry_base_seconds=5)


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 5), (2, 10), (3, 20), (6, 160), (20, 600)])
def test_backoff(attempts: int, seconds: float) -> None:
    assert backoff(attempts, 5, 600) == seconds


def test_failed_delivery_is_kept_retried_in_order_and_delivered(db: Database) -> None:
    _, hid = open_handoff(db, channel=Channel.TELEGRAM)
    repo = ConversationRepository(db)
    reply = DeskStore(db).reply(hid, "ann", "Ann", "Hello from Ann", delivery_status="pending")
    sender = FlakySender(failures=2)
    worker = _worker(repo, {Channel.TELEGRAM: sender})
    now = datetime.now(UTC) + timedelta(seconds=1)

    # The handoff notice fails; the agent's reply after it waits for it instead of overtaking it.
    assert asyncio.run(worker.run_once(now)) == (0, 1)
    waiting = repo.get_message(reply.id)
    assert (waiting.delivery_status, waiting.delivery_attempts) == ("pending", 0)
    assert asyncio.run(worker.run_once(now + timedelta(seconds=1))) == (0, 0)  # not due yet
    assert asyncio.run(worker.run_once(now + timedelta(seconds=6))) == (0, 1)  # the notice fails again
    notice = repo.get_message(reply.id - 1)
    assert (notice.delivery_status, notice.delivery_error, notice.delivery_attempts) == (
        "failed", "platform answered 500", 2)
    assert asyncio.run(worker.run_once(now + timedelta(seconds=30))) == (2, 0)
    delivered = repo.get_message(reply.id)
    assert delivered.delivery_status == "delivered" and delivered.payload["platform_id"] == f"p-{reply.id}"
    assert [text for _, text in sender.sent][-1] == "Hello from Ann"
    assert len(sender.sent) == 2


def test_a_channel_without_a_sender_keeps_its_messages(db: Database) -> None:
    cid, _ = open_handoff(db, channel=Channel.SLACK)
    repo = ConversationRepository(db)
    worker = _worker(repo, {})
    assert asyncio.run(worker.run_once(datetime.now(UTC) + timedelta(seconds=1))) == (0, 1)
    (notice,) = [m for m in repo.transcript(cid) if m.delivery_status]
    assert notice.delivery_error == "the slack channel is not configured"


def test_a_message_is_leased_to_one_process_and_taken_over_when_it_dies(db: Database) -> None:
    open_handoff(db, channel=Channel.TELEGRAM)
    repo = ConversationRepository(db)
    now = datetime.now(UTC) + timedelta(seconds=1)
    lease = timedelta(seconds=120)
    (claimed,) = repo.claim_deliveries("p1", now, lease)
    assert not claimed.interrupted
    assert repo.claim_deliveries("p2", now, lease) == []  # leased to p1
    # p1 died mid-send: once the lease has passed, p2 sends it again and is told it may be a repeat.
    (taken,) = repo.claim_deliveries("p2", now + lease + timedelta(seconds=1), lease)
    assert taken.message.id == claimed.message.id and taken.interrupted
    assert repo.mark_delivered(claimed.message.id, "p1") is False  # p1's late report changes nothing
    assert repo.mark_delivered(taken.message.id, "p2") is True
    assert repo.get_message(taken.message.id).delivery_status == "delivered"
    assert repo.claim_deliveries("p1", now + timedelta(days=1), lease) == []


def test_sla_breaches_are_flagged_and_announced_once(db: Database) -> None:
    _, hid = open_handoff(db, due_in=timedelta(seconds=-5))
    desk = DeskStore(db)
    now = datetime.now(UTC)
    assert desk.flag_sla_breaches(now) == [(hid, "first_response")]
    assert desk.flag_sla_breaches(now) == []
    breaches = [e for e in EventLog(db).after(Position()) if e.kind == "sla.breached"]
    assert [(e.handoff_id, e.payload["target"]) for e in breaches] == [(hid, "first_response")]
