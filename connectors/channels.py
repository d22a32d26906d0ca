"""Shared by the Slack and Telegram connectors: platform message -> conversation -> pipeline, text rules, start-up."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
from fastapi import APIRouter

from api.auth import new_customer_token
from bot.inbound import clean_text
from connectors.delivery import ChannelSender
from domain.enums import Channel
from domain.errors import ValidationError
from domain.models import Conversation, CustomerIdentity, InboundMessage, StoredMessage, TurnResult
from handoff.notify import ChangeNotifier
from settings import Settings

if TYPE_CHECKING:
    from connectors.slack import SlackConnector
    from connectors.telegram import TelegramConnector
    from wiring import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlatformMessage:
    """An authenticated customer message as a platform connector read it."""

    channel: Channel
    user_key: str  # the customer's id on the platform: the identity's external_id
    reply_to: str  # where replies go (Slack DM channel, Telegram chat): the conversation's external_ref
    text: str
    delivery_key: str  # globally unique and namespaced, e.g. slack:<event_id>; retries reuse it
    display_name: str | None = None


class ConversationFinder(Protocol):
    """The parts of ``storage.conversations.ConversationRepository`` the inbox uses."""

    def open_conversation_for(self, channel: Channel, identity: CustomerIdentity) -> Conversation | None: ...

    def create_conversation(self, channel: Channel, token_hash: str, display_name: str | None = None,
                            email: str | None = None, identity: CustomerIdentity | None = None,
                            external_ref: str | None = None) -> Conversation: ...


class TurnHandler(Protocol):
    """``bot.pipeline.TurnPipeline``."""

    def handle(self, inbound: InboundMessage) -> TurnResult: ...


def platform_text(raw: str, max_chars: int) -> str | None:
    """The customer's text cleaned by ``bot.inbound.clean_text``; None when nothing is left.

    A platform cannot show the customer a 422, so over-long text is cut to the limit and ends with a note
    saying so (agents see it in the transcript) instead of being dropped.
    """
    try:
        full = clean_text(raw, sys.maxsize)
    except ValidationError:
        return None  # empty or only whitespace / control characters
    if len(full) <= max_chars:
        return full
    note = f" [...] (shortened: the message had {len(full)} characters; the limit is {max_chars})"
    if len(note) >= max_chars:
        return clean_text(full[:max_chars], max_chars)
    return clean_text(full[:max_chars - len(note)].rstrip() + note, max_chars)


def absolute_url(url: str, public_base_url: str) -> str:
    """An article link usable outside the web chat: relative URLs are put under the public base URL."""
    if "://" in url:
        return url
    return public_base_url.rstrip("/") + "/" + url.lstrip("/")


def citations_of(message: StoredMessage, public_base_url: str) -> list[tuple[str, str]]:
    """(title, absolute url) of each article a bot message cites."""
    cited = message.payload.get("citations") or []
    return [(str(c.get("title") or c.get("url")), absolute_url(str(c.get("url")), public_base_url))
            for c in cited if isinstance(c, dict) and c.get("url")]


class PlatformInbox:
    """Runs a platform message through the pipeline in the customer's open conversation."""

    def __init__(self, conversations: ConversationFinder, pipeline: TurnHandler, notifier: ChangeNotifier,
                 max_chars: int) -> None:
        self.conversations = conversations
        self.pipeline = pipeline
        self.notifier = notifier
        self.max_chars = max_chars
        # Find-or-create must not race within this process (two first messages at once would start two
        # conversations); across processes it still can, and the customer then simply has two.
        self._lock = threading.Lock()

    def conversation_for(self, message: PlatformMessage) -> Conversation:
        """The customer's open conversation on this channel; started on first contact or after one closed."""
        identity = CustomerIdentity(message.channel.value, message.user_key)
        with self._lock:
            found = self.conversations.open_conversation_for(message.channel, identity)
            if found is not None:
                return found
            _, unusable = new_customer_token()  # the customer reaches this conversation only on the platform
            return self.conversations.create_conversation(message.channel, unusable, message.display_name,
                                                          identity=identity, external_ref=message.reply_to)

    def receive(self, message: PlatformMessage) -> TurnResult | None:
        """Handle one message (blocking: database and encoder); None when it had no text.

        Replies are stored ``pending`` and the delivery worker, woken here, sends them.
        """
        text = platform_text(message.text, self.max_chars)
        if text is None:
            log.debug("ignored an empty %s message (%s)", message.channel.value, message.delivery_key)
            return None
        conversation = self.conversation_for(message)
        result = self.pipeline.handle(InboundMessage(conversation.id, text, message.channel, message.delivery_key))
        self.notifier.notify()
        log.info("%s message %s -> conversation %s: %s%s", message.channel.value, message.delivery_key,
                 conversation.id, result.decision.value, " (repeat delivery)" if result.duplicate else "")
        return result

    async def areceive(self, message: PlatformMessage) -> TurnResult | None:
        """:meth:`receive` in a worker thread."""
        return await anyio.to_thread.run_sync(self.receive, message)


class PlatformChannels:
    """The enabled platform connectors: routes at app creation; token checks, then senders, in the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slack: SlackConnector | None = None
        self.telegram: TelegramConnector | None = None
        # The SDKs are imported only for the channels that are enabled.
        if settings.slack.enabled:
            from connectors.slack import SlackConnector

            self.slack = SlackConnector(settings)
        if settings.telegram.enabled:
            from connectors.telegram import TelegramConnector

            self.telegram = TelegramConnector(settings)

    def routers(self) -> list[APIRouter]:
        """The webhook routes of the enabled channels."""
        return [c.router for c in (self.slack, self.telegram) if c is not None]

    async def connect(self) -> None:
        """Check the tokens with the platforms (Slack ``auth.test``, Telegram ``getMe``); call it first.

        Raises:
            ConfigurationError: a platform rejected the configured token. An unreachable platform is only
                logged: its webhook answers 5xx (the platform re-sends) and deliveries wait until it answers.
        """
        try:
            for connector in (self.slack, self.telegram):
                if connector is not None:
                    await connector.connect()
        except BaseException:
            await self.stop()  # release what the other connector opened
            raise

    def attach(self, services: Services) -> None:
        """Start taking messages: platform messages go to the services' pipeline."""
        inbox = PlatformInbox(services.conversations, services.pipeline, services.notifier,
                              self.settings.chat.max_message_chars)
        for connector in (self.slack, self.telegram):
            if connector is not None:
                connector.attach(inbox)

    def senders(self) -> dict[Channel, ChannelSender]:
        """Who delivers outbound messages on each enabled platform (for the delivery worker)."""
        found: dict[Channel, ChannelSender] = {}
        if self.slack is not None:
            found[Channel.SLACK] = self.slack.sender
        if self.telegram is not None:
            found[Channel.TELEGRAM] = self.telegram.sender
        return found

    async def stop(self) -> None:
        """Let running turns finish and release the SDKs' connections."""
        for connector in (self.slack, self.telegram):
            if connector is not None:
                try:
                    await connector.stop()
                except Exception as e:  # shutting down: report and go on with the others
                    log.error("stopping a channel failed: %s", type(e).__name__)
