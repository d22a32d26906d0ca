"""The Telegram channel: webhook (python-telegram-bot) -> pipeline, and ``sendMessage`` for outbound messages."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from api.errors import error_body
from connectors.channels import PlatformInbox, PlatformMessage, citations_of
from connectors.delivery import DeliveryError
from domain.enums import Channel, Sender
from domain.errors import ConfigurationError
from domain.models import Conversation, StoredMessage
from settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one text message
START_TEXT = "hello"  # what the Start button means: the customer opens the chat


def telegram_text(message: StoredMessage, public_base_url: str) -> str:
    """Plain text (no parse mode, so nothing needs escaping); an agent's name; one line per cited article."""
    text = message.text
    if message.sender == Sender.BOT:  # plain text: the help center's **bold** markers would show as asterisks
        text = text.replace("**", "")
    if message.sender == Sender.AGENT and message.author:
        text = f"{message.author}: {text}"
    links = citations_of(message, public_base_url)
    if len(links) == 1:
        text += f"\nSource: {links[0][0]} - {links[0][1]}"
    elif links:
        text += "\n" + "\n".join(f"• {title} - {url}" for title, url in links)
    return text


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Parts of at most ``limit`` characters, cut at a line break or space where possible."""
    parts = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts


def private_text(update: Update) -> PlatformMessage | None:
    """The customer message of an update: private chats, text, a human sender; None for anything else."""
    message = update.message
    user = message.from_user if message else None
    if message is None or user is None or user.is_bot or message.chat.type != "private" or not message.text:
        return None
    text = message.text
    if text == "/start" or text.startswith("/start "):
        text = START_TEXT
    # chat + message id: stable across re-sends, unique forever (update_id turns random after a quiet week).
    return PlatformMessage(Channel.TELEGRAM, str(user.id), str(message.chat.id), text,
                           f"telegram:{message.chat.id}:{message.message_id}", display_name=user.full_name or None)


class TelegramSender:
    """``ChannelSender`` for Telegram: ``sendMessage`` to the customer's chat (split above 4096 characters)."""

    def __init__(self, connector: TelegramConnector, public_base_url: str) -> None:
        self.connector = connector
        self.public_base_url = public_base_url

    async def send(self, conversation: Conversation, message: StoredMessage) -> str | None:
        """Send the message; returns the id of its (last) Telegram message.

        Raises:
            DeliveryError: Telegram refused it or could not be reached (the reason never contains the token).
        """
        if not conversation.external_ref:
            raise DeliveryError("the conversation has no Telegram chat to reply to")
        await self.connector.ensure_ready()
        parts = split_text(telegram_text(message, self.public_base_url))
        if not parts:
            raise DeliveryError("the message has no text to send")
        sent_id = None
        for part in parts:
            try:
                sent = await self.connector.app.bot.send_message(chat_id=conversation.external_ref, text=part)
            except TelegramError as e:
                reason = self.connector.scrub(e.message)
                raise DeliveryError(f"Telegram did not accept the message ({type(e).__name__}: {reason})") from e
            sent_id = str(sent.message_id)
        return sent_id


class TelegramConnector:
    """``POST /telegram/webhook``: checks the secret header, parses the Update with PTB, hands it to the pipeline.

    The update is handled before the 200 goes back, so a message that got a 200 is stored. Updates we ignore
    get a 200 (Telegram re-sends non-2xx answers and holds back later updates meanwhile). A 503 asks for a
    re-send when the message could not be stored or handled (database down) or while PTB is not initialized
    yet (Bot API unreachable at startup); the delivery key (chat and message id) makes re-sends harmless.
    """

    def __init__(self, settings: Settings) -> None:
        cfg = settings.telegram
        if cfg.bot_token is None or cfg.webhook_secret is None:
            raise ConfigurationError("Telegram is enabled but its bot token or webhook secret is missing")
        self._token = cfg.bot_token.get_secret_value()
        self._secret = cfg.webhook_secret.get_secret_value().encode()
        self.app = (Application.builder().token(self._token).base_url(cfg.api_base_url)
                    .base_file_url(cfg.file_base_url).updater(None).build())
        self.sender = TelegramSender(self, settings.server.public_base_url)
        self.router = APIRouter(tags=["channels"])
        self.router.add_api_route("/telegram/webhook", self._webhook, methods=["POST"],
                                  summary="Telegram webhook (needs the X-Telegram-Bot-Api-Secret-Token header)")
        self._inbox: PlatformInbox | None = None
        self._ready = False
        self._ready_lock = asyncio.Lock()

    def scrub(self, text: str) -> str:
        """Text with the bot token removed (PTB puts it in URLs and some messages)."""
        return text.replace(self._token, "<token>")

    def attach(self, inbox: PlatformInbox) -> None:
        """Hand private text messages to ``inbox`` from now on."""
        self._inbox = inbox

    async def connect(self) -> None:
        """Initialize PTB (it calls ``getMe``).

        Raises:
            ConfigurationError: Telegram rejected the token. An unreachable Telegram is only logged: the
                webhook answers 503 (Telegram re-sends) and deliveries wait until it answers.
        """
        try:
            await self.ensure_ready()
        except DeliveryError as e:
            log.warning("%s; will try again when needed", e)

    async def ensure_ready(self) -> None:
        """Initialize the PTB application once.

        Raises:
            ConfigurationError: the token was rejected.
            DeliveryError: Telegram could not be reached.
        """
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            try:
                await self.app.initialize()
            except InvalidToken:
                raise ConfigurationError("Telegram rejected the bot token (getMe failed)") from None
            except TelegramError as e:
                raise DeliveryError(f"Telegram is not reachable ({type(e).__name__}: {self.scrub(e.message)})"
                                    ) from None
            self._ready = True

    async def register_webhook(self, url: str) -> None:
        """Tell Telegram to send updates to ``url`` with our secret token (``setWebhook``), private messages only.

        Raises:
            ConfigurationError: the token was rejected, or Telegram refused the URL (e.g. not HTTPS).
            DeliveryError: Telegram could not be reached.
        """
        await self.ensure_ready()
        try:
            await self.app.bot.set_webhook(url=url, secret_token=self._secret.decode(),
                                           allowed_updates=["message"], drop_pending_updates=False)
        except TelegramError as e:
            raise ConfigurationError(f"Telegram refused the webhook ({type(e).__name__}: {self.scrub(e.message)})"
                                     ) from None

    async def stop(self) -> None:
        """Shut PTB down and close its HTTP client."""
        if self._ready:
            await self.app.shutdown()
            self._ready = False
        else:
            await self.app.bot.shutdown()  # a failed getMe may have left the HTTP client open

    async def _webhook(self, request: Request) -> JSONResponse:
        """Telegram's update deliveries."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return JSONResponse(error_body("unauthenticated", f"missing or wrong {SECRET_HEADER} header"), 401)
        try:
            data = json.loads(await request.body())
        except ValueError:
            return JSONResponse(error_body("invalid_input", "the body is not valid JSON"), 400)
        try:
            if not isinstance(data, dict):
                raise TypeError("not an object")
            update = Update.de_json(data, self.app.bot)
        except Exception:
            return JSONResponse(error_body("invalid_input", "the body is not a Telegram Update object"), 400)
        try:
            await self.ensure_ready()
        except DeliveryError as e:
            log.warning("Telegram update %s not handled yet: %s", update.update_id, e)
            return JSONResponse(error_body("unavailable", "not ready; please retry"), 503)
        message = private_text(update)
        if message is None or self._inbox is None:
            return JSONResponse({"ok": True})  # nothing for us in this update
        try:
            await self._inbox.areceive(message)
        except Exception as e:
            # Not stored or not processed (e.g. the database is down): 503 makes Telegram re-send, and the
            # delivery key makes the re-send harmless if the message was stored after all.
            log.error("Telegram update %s failed: %s", update.update_id, type(e).__name__)
            return JSONResponse(error_body("unavailable", "could not store the update; please retry"), 503)
        return JSONResponse({"ok": True})
