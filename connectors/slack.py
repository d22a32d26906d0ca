"""The Slack channel: Events API webhook (Bolt) -> pipeline, and ``chat.postMessage`` for outbound messages."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import aiohttp
from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.channels import PlatformInbox, PlatformMessage, citations_of
from connectors.delivery import DeliveryError
from domain.enums import Channel, Sender
from domain.errors import ConfigurationError
from domain.models import Conversation, StoredMessage
from settings import Settings

log = logging.getLogger(__name__)

# auth.test answers with these when the token itself is bad: refuse to start (fail closed).
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BAD_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


def unescape(text: str) -> str:
    """Slack escapes ``&``, ``<`` and ``>`` in message text; the customer typed the plain characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Our text as Slack shows it literally (``<`` would start a link or mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dm_message(body: dict[str, Any]) -> PlatformMessage | None:
    """The customer message in an Events API payload, or None for anything that is not a plain DM.

    Only ``message`` events in ``im`` channels without a ``subtype`` (edits, joins, bot posts, ...) and not
    from a bot count; Bolt has already dropped the bot's own events.
    """
    event = body.get("event") or {}
    if (event.get("type") != "message" or event.get("channel_type") != "im" or event.get("subtype")
            or event.get("bot_id") or not event.get("user") or not event.get("channel")):
        return None
    team = body.get("team_id") or event.get("team") or ""
    event_id = body.get("event_id")
    if not event_id:
        return None
    return PlatformMessage(Channel.SLACK, f"{team}:{event['user']}", str(event["channel"]),
                           unescape(str(event.get("text") or "")), f"slack:{event_id}")


def slack_text(message: StoredMessage, public_base_url: str) -> str:
    """The message in Slack markup: escaped text, an agent's name, cited articles as ``<url|title>`` links."""
    text = escape(message.text)
    if message.sender == Sender.BOT:  # help-center **bold** is Slack's *bold*
        text = _BOLD.sub(r"*\1*", text)
    if message.sender == Sender.AGENT and message.author:
        text = f"*{escape(message.author)}*: {text}"
    links = [f"<{url.replace('|', '%7C').replace('>', '%3E')}|{escape(title)}>"
             for title, url in citations_of(message, public_base_url)]
    if len(links) == 1:
        text += f"\nSource: {links[0]}"
    elif links:
        text += "\n" + "\n".join(f"• {link}" for link in links)
    return text


class SlackSender:
    """``ChannelSender`` for Slack: one ``chat.postMessage`` into the customer's DM channel."""

    def __init__(self, client: AsyncWebClient, public_base_url: str) -> None:
        self.client = client
        self.public_base_url = public_base_url

    async def send(self, conversation: Conversation, message: StoredMessage) -> str | None:
        """Post the message; returns its ``ts``.

        Raises:
            DeliveryError: Slack answered ``ok: false`` (its error code is the reason) or could not be reached.
        """
        if not conversation.external_ref:
            raise DeliveryError("the conversation has no Slack channel to reply to")
        try:
            response = await self.client.chat_postMessage(
                channel=conversation.external_ref, text=slack_text(message, self.public_base_url),
                unfurl_links=False, unfurl_media=False)
        except SlackApiError as e:
            data = e.response.data if isinstance(e.response.data, dict) else {}
            reason = data.get("error") or f"HTTP {e.response.status_code}"
            raise DeliveryError(f"Slack refused the message: {reason}") from e
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as e:
            raise DeliveryError(f"Slack could not be reached ({type(e).__name__})") from e
        ts = response.get("ts")
        return str(ts) if ts else None


class SlackConnector:
    """Bolt in HTTP mode behind ``POST /slack/events``: verifies signatures, acks, hands DMs to the pipeline.

    Bolt checks the ``v0`` signature and the 5-minute timestamp window (401 otherwise), answers
    ``url_verification``, drops the bot's own events (it learns the bot's ids from ``auth.test``, which is
    why the token must be an ``xoxb-`` bot token) and acks before the listener runs. Replies are not posted
    here: the turn stores them ``pending`` and the delivery worker sends them with :class:`SlackSender`.
    Retries of an event carry the same ``event_id``, which is the delivery key, so a turn runs once.
    """

    def __init__(self, settings: Settings) -> None:
        cfg = settings.slack
        if cfg.bot_token is None or cfg.signing_secret is None:
            raise ConfigurationError("Slack is enabled but its bot token or signing secret is missing")
        self.client = AsyncWebClient(token=cfg.bot_token.get_secret_value(), base_url=cfg.api_base_url, timeout=15)
        # Everything is passed explicitly so Bolt does not fall back to SLACK_* environment variables.
        self.bolt = AsyncApp(client=self.client, signing_secret=cfg.signing_secret.get_secret_value(),
                             # Store (and answer) before acking: a crash after the ack would lose the message.
                             # A turn takes milliseconds; Slack's 3 s limit is far away, and its retries are
                             # de-duplicated by event_id anyway.
                             process_before_response=True)
        self.bolt.event("message")(self._on_message)
        self.bolt.event(re.compile(".*"))(self._on_other_event)  # subscribed but unused: ack, no 404
        self.handler = AsyncSlackRequestHandler(self.bolt)
        self.sender = SlackSender(self.client, settings.server.public_base_url)
        self.router = APIRouter(tags=["channels"])
        self.router.add_api_route("/slack/events", self._events, methods=["POST"], response_class=Response,
                                  summary="Slack Events API webhook (signed by Slack)")
        self._inbox: PlatformInbox | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        """Check the token with ``auth.test``.

        Raises:
            ConfigurationError: Slack rejected the token. An unreachable Slack is only logged: the app
                starts, Bolt answers 5xx until Slack is back, and Slack retries those events.
        """
        try:
            await self.client.auth_test()
        except SlackApiError as e:
            data = e.response.data if isinstance(e.response.data, dict) else {}
            if data.get("error") in _BAD_TOKEN_ERRORS:
                raise ConfigurationError(f"Slack rejected the bot token ({data['error']})") from None
            log.warning("Slack auth.test failed at startup: %s", data.get("error") or e.response.status_code)
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as e:
            log.warning("Slack is not reachable at startup (%s); events will be retried by Slack", type(e).__name__)

    def attach(self, inbox: PlatformInbox) -> None:
        """Hand DMs to ``inbox`` from now on (before this, events are acked and dropped)."""
        self._inbox = inbox

    async def stop(self) -> None:
        """Wait (briefly) for turns that are still running."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=10)

    async def _events(self, request: Request) -> Response:
        """Slack's Events API deliveries; Bolt reads the raw body itself (needed for the signature)."""
        return await self.handler.handle(request)

    async def _on_message(self, body: dict[str, Any]) -> None:
        message = dm_message(body)
        if message is None or self._inbox is None:
            return
        task = asyncio.create_task(self._receive(self._inbox, message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await task

    async def _on_other_event(self) -> None:
        return None

    async def _receive(self, inbox: PlatformInbox, message: PlatformMessage) -> None:
        try:
            await inbox.areceive(message)
        except Exception as e:  # already acked; Slack will not retry. Type only: messages may quote the text.
            log.error("Slack event %s could not be handled: %s", message.delivery_key, type(e).__name__)
