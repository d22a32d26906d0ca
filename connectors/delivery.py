"""Outbound delivery: push bot and agent messages to Slack/Telegram, retrying with back-off, never dropping."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio

from domain.enums import Channel
from domain.models import Conversation, StoredMessage
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
    """``storage.conversations.ConversationRepository``."""

    def due_deliveries(self, now: datetime, limit: int = 50) -> list[tuple[StoredMessage, Conversation]]: ...

    def mark_delivered(self, message_id: int, platform_id: str | None = None) -> None: ...

    def mark_delivery_failed(self, message_id: int, error: str, retry_at: datetime) -> int: ...


def backoff(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds before the next try after ``attempts`` failures: exponential, capped."""
    return float(min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


class DeliveryWorker:
    """Delivers due messages; one pass per wake-up or poll interval."""

    def __init__(self, store: OutboxStore, senders: Mapping[Channel, ChannelSender], notifier: ChangeNotifier,
                 poll_seconds: float = 2.0, retry_base_seconds: float = 5.0, retry_max_seconds: float = 600.0,
                 batch_size: int = 50) -> None:
        self.store = store
        self.senders = dict(senders)
        self.notifier = notifier
        self.poll_seconds = poll_seconds
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.batch_size = batch_size

    async def run_once(self, now: datetime | None = None) -> tuple[int, int]:
        """Try every due message once; returns (delivered, failed)."""
        now = now or datetime.now(UTC)
        due = await anyio.to_thread.run_sync(self.store.due_deliveries, now, self.batch_size)
        delivered = failed = 0
        for message, conversation in due:
            sender = self.senders.get(conversation.channel)
            try:
                if sender is None:
                    raise DeliveryError(f"the {conversation.channel.value} channel is not configured")
                platform_id = await sender.send(conversation, message)
            except Exception as e:  # any failure keeps the message for a retry
                reason = str(e) if isinstance(e, DeliveryError) else type(e).__name__
                attempts = message.delivery_attempts + 1
                retry_at = now + timedelta(seconds=backoff(attempts, self.retry_base, self.retry_max))
                await anyio.to_thread.run_sync(self.store.mark_delivery_failed, message.id, reason, retry_at)
                log.warning("delivery of message %s on %s failed (attempt %d): %s", message.id,
                            conversation.channel.value, attempts, reason)
                failed += 1
                continue
            await anyio.to_thread.run_sync(self.store.mark_delivered, message.id, platform_id)
            delivered += 1
        if delivered or failed:
            self.notifier.notify()
        return delivered, failed

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            try:
                await self.run_once()
            except Exception as e:  # the database may be down; try again later
                log.error("delivery pass failed: %s", type(e).__name__)
            await self.notifier.wait(self.poll_seconds)
