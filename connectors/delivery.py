"""Outbound delivery: push bot and agent messages to Slack/Telegram, retrying with back-off, never dropping."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio

from domain.enums import Channel
from domain.models import Conversation, OutboundClaim, StoredMessage
from handoff.notify import ChangeNotifier

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The platform refused the message or could not be reached; the text says why (no secrets)."""


class ChannelSender(Protocol):
    """Sends one message to the customer on a platform.

    Contract: returns the platform's id for the sent message (or None); raises DeliveryError when the
    message was not accepted, so it is kept and retried.
    """

    async def send(self, conversation: Conversation, message: StoredMessage) -> str | None: ...


class OutboxStore(Protocol):
    """``storage.conversations.ConversationRepository``: outbound messages leased to one process at a time."""

    def claim_deliveries(self, owner: str, now: datetime, lease: timedelta, limit: int = 50) -> list[OutboundClaim]: ...

    def mark_delivered(self, message_id: int, owner: str, platform_id: str | None = None,
                       resent: bool = False) -> bool: ...

    def mark_delivery_failed(self, message_id: int, owner: str, error: str, retry_at: datetime) -> int: ...

    def postpone_delivery(self, message_id: int, owner: str, until: datetime) -> bool: ...


def backoff(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds before the next try after ``attempts`` failures: exponential, capped."""
    return float(min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


class DeliveryWorker:
    """Delivers due messages leased to this process; every process runs one, and a message goes to one of them.

    A lease outlives the slowest send (platform calls time out well before it); a process that dies mid-send
    leaves its messages leased until the lease expires, then another process sends them (the platform may
    have received the interrupted attempt: that is logged, the only case where a customer could see a
    message twice).
    """

    def __init__(self, store: OutboxStore, senders: Mapping[Channel, ChannelSender], notifier: ChangeNotifier,
                 owner: str, *, retry_base_seconds: float = 5.0, retry_max_seconds: float = 600.0,
                 batch_size: int = 50, lease_seconds: float = 120.0) -> None:
        self.store = store
        self.senders = dict(senders)
        self.notifier = notifier
        self.owner = owner
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)

    async def run_once(self, now: datetime | None = None) -> tuple[int, int]:
        """Try every message due now once (each leased to this process first); returns (delivered, failed)."""
        now = now or datetime.now(UTC)
        claimed = await anyio.to_thread.run_sync(self.store.claim_deliveries, self.owner, now, self.lease,
                                                 self.batch_size)
        delivered = failed = 0
        held: dict[str, datetime] = {}  # conversation -> when its failed message is retried
        for item in claimed:
            message, conversation = item.message, item.conversation
            if conversation.id in held:  # an earlier message of this conversation failed: keep the order
                await anyio.to_thread.run_sync(self.store.postpone_delivery, message.id, self.owner,
                                               held[conversation.id])
                continue
            if item.interrupted:
                log.warning("message %s on %s: the process sending it died; sending it again (the customer may "
                            "have received it already)", message.id, conversation.channel.value)
            sender = self.senders.get(conversation.channel)
            try:
                if sender is None:
                    raise DeliveryError(f"the {conversation.channel.value} channel is not configured")
                platform_id = await sender.send(conversation, message)
            except Exception as e:  # any failure keeps the message for a retry
                reason = str(e) if isinstance(e, DeliveryError) else type(e).__name__
                attempts = message.delivery_attempts
                retry_at = now + timedelta(seconds=backoff(attempts, self.retry_base, self.retry_max))
                await anyio.to_thread.run_sync(self.store.mark_delivery_failed, message.id, self.owner, reason,
                                               retry_at)
                held[conversation.id] = retry_at
                log.warning("delivery of message %s on %s failed (attempt %d): %s", message.id,
                            conversation.channel.value, attempts, reason)
                failed += 1
                continue
            if not await anyio.to_thread.run_sync(self.store.mark_delivered, message.id, self.owner, platform_id,
                                                  item.interrupted):
                log.error("message %s was sent but its lease had passed to another process", message.id)
            delivered += 1
        if delivered or failed:
            self.notifier.notify()
        return delivered, failed
