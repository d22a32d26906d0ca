"""The Telegram channel through the real app and real python-telegram-bot, against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import cli
from connectors.channels import PlatformInbox
from connectors.telegram import TelegramConnector
from domain.enums import Channel, ConversationStatus, Sender
from domain.errors import ConfigurationError
from domain.models import Conversation, CustomerIdentity, StoredMessage
from handoff.notify import ChangeNotifier
from knowledge_index.encoder import HashEncoder
from server import create_app
from tests.api.conftest import bearer, staff_token
from tests.conftest import make_settings
from tests.connectors.conftest import (
    PUBLIC_URL,
    WEBHOOK_SECRET,
    channel_app_settings,
    run_delivery,
    services_of,
    telegram_settings,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

_update_ids = itertools.count(500_000)


def update(user: int, text: str, update_id: int | None = None, chat_type: str = "private",
           **message: Any) -> dict[str, Any]:
    """A Telegram Update with a text message from ``user``."""
    uid = update_id if update_id is not None else next(_update_ids)
    chat = {"id": user, "type": chat_type, "first_name": "Kim"} if chat_type == "private" else \
        {"id": -100_000 - user, "type": chat_type, "title": "A group"}
    return {"update_id": uid, "message": {
        "message_id": uid, "date": int(time.time()), "chat": chat, "text": text,
        "from": {"id": user, "is_bot": False, "first_name": "Kim", "last_name": "Lee"}, **message}}


def deliver(client: TestClient, body: Any, secret: str | None = WEBHOOK_SECRET) -> Any:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/telegram/webhook", json=body, headers=headers)


def conversation_of(client: TestClient, user: int) -> Conversation | None:
    return services_of(client).conversations.open_conversation_for(
        Channel.TELEGRAM, CustomerIdentity("telegram", str(user)))


def transcript(client: TestClient, user: int) -> list[StoredMessage]:
    conversation = conversation_of(client, user)
    return [] if conversation is None else services_of(client).conversations.transcript(conversation.id)


def test_a_private_message_is_answered_through_the_bot_api(telegram_client: TestClient,
                                                           fake_telegram: FakeTelegram) -> None:
    assert fake_telegram.log.calls("getMe"), "PTB's initialize() calls getMe at startup"
    response = deliver(telegram_client, update(4242, "/start", entities=[
        {"type": "bot_command", "offset": 0, "length": 6}]))
    assert response.status_code == 200 and response.json() == {"ok": True}
    (sent,) = fake_telegram.wait_sent("4242")
    conversation = conversation_of(telegram_client, 4242)
    assert conversation is not None and conversation.external_ref == "4242"
    customer, reply = transcript(telegram_client, 4242)[:2]
    assert customer.text == "hello"  # the Start button opens the chat like a greeting
    assert sent.params["text"] == reply.text and reply.sender == Sender.BOT
    profile = services_of(telegram_client).conversations.customer_profile(conversation.id)
    assert profile.display_name == "Kim Lee"


def test_answers_carry_a_link_line(telegram_client: TestClient, fake_telegram: FakeTelegram) -> None:
    deliver(telegram_client, update(4243, "Cancel Premium on the web"))
    (sent,) = fake_telegram.wait_sent("4243")
    citation = transcript(telegram_client, 4243)[1].payload["citations"][0]
    assert f"{citation['title']} - {PUBLIC_URL}/help/articles/{citation['article_id']}" in sent.params["text"]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", WEBHOOK_SECRET + "x"])
def test_a_missing_or_wrong_secret_gets_401_and_nothing_is_stored(telegram_client: TestClient,
                                                                   secret: str | None) -> None:
    before = services_of(telegram_client).conversations.count_messages()
    response = deliver(telegram_client, update(4244, "hello"), secret=secret)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    assert services_of(telegram_client).conversations.count_messages() == before
    assert conversation_of(telegram_client, 4244) is None


def test_malformed_bodies_get_a_clear_400(telegram_client: TestClient) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
    bad_json = telegram_client.post("/telegram/webhook", content=b"{not json", headers=headers)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["message"] == "the body is not valid JSON"
    for body in ([1, 2], {"message": "no update_id"}):
        response = deliver(telegram_client, body)
        assert response.status_code == 400 and "Telegram Update" in response.json()["error"]["message"]


def test_a_repeated_update_is_processed_once(telegram_client: TestClient, fake_telegram: FakeTelegram) -> None:
    body = update(4245, "hello", update_id=910_001)
    assert deliver(telegram_client, body).status_code == 200
    assert deliver(telegram_client, body).status_code == 200
    fake_telegram.wait_sent("4245")
    messages = transcript(telegram_client, 4245)
    assert [m.sender for m in messages].count(Sender.CUSTOMER) == 1
    wait_until(lambda: all(m.delivery_status == "delivered" for m in transcript(telegram_client, 4245)
                           if m.sender == Sender.BOT), what="the replies delivered")
    assert len(fake_telegram.sent("4245")) == len([m for m in messages if m.sender == Sender.BOT]) == 1


def test_only_private_text_messages_count_but_all_get_200(telegram_client: TestClient) -> None:
    before = services_of(telegram_client).conversations.count_messages()
    others = [
        update(4246, "hello group", chat_type="group"),
        {k: v for k, v in update(4246, "x").items() if k != "message"} | {
            "edited_message": {**update(4246, "edited")["message"], "edit_date": int(time.time())}},
        {**update(4246, "x"), "message": {k: v for k, v in update(4246, "x")["message"].items() if k != "text"}
         | {"sticker": {"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1, "is_animated": False,
                        "is_video": False, "type": "regular"}}},
        {"update_id": next(_update_ids), "my_chat_member": None},
        update(4246, "   \n "),
    ]
    for body in others:
        assert deliver(telegram_client, body).status_code == 200
    assert services_of(telegram_client).conversations.count_messages() == before  # handled inline: no waiting


def test_handoff_agent_reply_resolve_and_a_new_conversation_after_close(telegram_client: TestClient,
                                                                        fake_telegram: FakeTelegram) -> None:
    services = services_of(telegram_client)
    deliver(telegram_client, update(4247, "I want to talk to a human please"))
    (handoff_notice,) = fake_telegram.wait_sent("4247")
    conversation = conversation_of(telegram_client, 4247)
    assert conversation is not None and conversation.status == "human"
    (handoff,) = services.handoffs.for_conversation(conversation.id)
    assert "a person will reply here" in handoff_notice.params["text"]

    agent = bearer(staff_token(telegram_client, "tg-agent", "agent"))
    sent = telegram_client.post(f"/api/handoffs/{handoff.id}/reply", headers=agent,
                                json={"text": "Hi Kim, Sam here. How can I help?"})
    assert sent.status_code == 200, sent.text
    agent_message = fake_telegram.wait_sent("4247", 2)[1]
    assert agent_message.params["text"].endswith(": Hi Kim, Sam here. How can I help?")

    deliver(telegram_client, update(4247, "My card was charged twice"))  # with the agent now: no bot reply
    resolved = telegram_client.post(f"/api/handoffs/{handoff.id}/resolve", headers=agent)
    assert resolved.status_code == 200, resolved.text
    fake_telegram.wait_sent("4247", 3)  # the CSAT question

    deliver(telegram_client, update(4247, "5"))  # resolved: the same conversation continues with the bot
    thanks = fake_telegram.wait_sent("4247", 4)[3]
    assert "5/5" in thanks.params["text"]
    assert getattr(conversation_of(telegram_client, 4247), "id", None) == conversation.id

    services.conversations.set_status(conversation.id, ConversationStatus.CLOSED)
    deliver(telegram_client, update(4247, "hello again"))
    fake_telegram.wait_sent("4247", 5)
    fresh = conversation_of(telegram_client, 4247)
    assert fresh is not None and fresh.id != conversation.id and fresh.customer_id == conversation.customer_id


def test_a_failing_bot_api_keeps_the_message_failed_and_retries_until_delivered(
        telegram_client: TestClient, fake_telegram: FakeTelegram) -> None:
    deliver(telegram_client, update(4248, "please get me a human"))
    fake_telegram.wait_sent("4248")
    conversation = conversation_of(telegram_client, 4248)
    assert conversation is not None
    (handoff,) = services_of(telegram_client).handoffs.for_conversation(conversation.id)
    fake_telegram.log.fail_next("sendMessage", 2, status=500, reason="Internal Server Error")
    agent = bearer(staff_token(telegram_client, "tg-agent", "agent"))
    reply_id = telegram_client.post(f"/api/handoffs/{handoff.id}/reply", headers=agent,
                                    json={"text": "Sorry for the wait!"}).json()["id"]
    messages = services_of(telegram_client).conversations

    def failed_reply() -> StoredMessage | None:
        message = messages.get_message(reply_id)
        return message if message.delivery_status == "failed" else None

    failed = wait_until(failed_reply, what="the first failed attempt")
    assert failed.delivery_attempts == 1
    assert failed.delivery_error == "Telegram did not accept the message (NetworkError: Internal Server Error)"
    assert fake_telegram.token not in failed.delivery_error
    now = datetime.now(UTC)
    assert run_delivery(telegram_client, now + timedelta(seconds=60)) == (0, 0)  # back-off: not due yet
    assert run_delivery(telegram_client, now + timedelta(seconds=301)) == (0, 1)  # the fake still fails
    again = messages.get_message(reply_id)
    assert (again.delivery_status, again.delivery_attempts) == ("failed", 2)
    assert run_delivery(telegram_client, now + timedelta(seconds=850)) == (0, 0)  # doubled back-off
    assert run_delivery(telegram_client, now + timedelta(seconds=910)) == (1, 0)  # recovered: delivered
    assert messages.get_message(reply_id).delivery_status == "delivered"
    assert [c.params["text"] for c in fake_telegram.sent("4248")][-1].endswith(": Sorry for the wait!")


def test_startup_fails_closed_when_telegram_rejects_the_token(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    settings = channel_app_settings(tmp_path, telegram=telegram_settings(fake_telegram, bot_token="999:revoked"))
    with pytest.raises(ConfigurationError, match="Telegram rejected the bot token") as failure, \
            TestClient(create_app(settings, encoder=HashEncoder(384))):
        pass
    assert "999:revoked" not in str(failure.value) and failure.value.__cause__ is None


def test_an_unreachable_bot_api_at_startup_means_503_until_it_answers(tmp_path: Path,
                                                                      fake_telegram: FakeTelegram) -> None:
    """Startup goes on without Telegram; updates get 503 (Telegram re-sends them) until getMe works."""
    connector = TelegramConnector(make_settings(tmp_path, telegram=telegram_settings(fake_telegram)))
    unused = cast(Any, None)  # only non-private updates are sent here: nothing reaches the inbox

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await connector.connect()
        connector.attach(PlatformInbox(unused, unused, ChangeNotifier(), 100))
        yield
        await connector.stop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(connector.router)
    fake_telegram.log.fail_next("getMe", 2, status=502, reason="Bad Gateway")
    with TestClient(app) as client:
        body = update(4249, "hello group", chat_type="group")
        assert deliver(client, body).status_code == 503
        assert deliver(client, body).status_code == 200


def test_a_database_failure_asks_telegram_to_resend(telegram_client: TestClient, fake_telegram: FakeTelegram,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    conversations = services_of(telegram_client).conversations
    real = conversations.begin_turn

    def database_down(*args: object, **kwargs: object) -> object:
        raise ConnectionError("database went away")

    body = update(4249, "is anybody there?", update_id=910_050)
    monkeypatch.setattr(conversations, "begin_turn", database_down)
    refused = deliver(telegram_client, body)
    assert refused.status_code == 503 and "retry" in refused.json()["error"]["message"]
    monkeypatch.setattr(conversations, "begin_turn", real)
    assert deliver(telegram_client, body).status_code == 200  # Telegram's re-send
    fake_telegram.wait_sent("4249")
    assert [m.text for m in transcript(telegram_client, 4249) if m.sender == Sender.CUSTOMER] == ["is anybody there?"]


@pytest.fixture
def telegram_env(fake_telegram: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTelegram:
    """The command line's environment: Telegram enabled against the fake, a public URL, a temporary folder."""
    for name, value in {
        "FRONTDESK_DATA_DIR": str(tmp_path / "var"), "FRONTDESK_ENCODER__MODEL": "hash",
        "FRONTDESK_TELEGRAM__ENABLED": "true", "FRONTDESK_TELEGRAM__BOT_TOKEN": fake_telegram.token,
        "FRONTDESK_TELEGRAM__WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FRONTDESK_TELEGRAM__API_BASE_URL": f"{fake_telegram.base_url}/bot",
        "FRONTDESK_SERVER__PUBLIC_BASE_URL": "https://support.example/desk/",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return fake_telegram


def test_the_cli_points_the_webhook_at_the_service(telegram_env: FakeTelegram, capsys: pytest.CaptureFixture[str],
                                                   ) -> None:
    assert cli.main(["telegram-webhook"]) == 0
    call = telegram_env.log.calls("setWebhook")[-1]
    assert call.params["url"] == "https://support.example/desk/telegram/webhook"
    assert call.params["secret_token"] == WEBHOOK_SECRET
    assert "message" in call.params["allowed_updates"]
    assert "https://support.example/desk/telegram/webhook" in capsys.readouterr().out
    assert cli.main(["telegram-webhook", "--url", "https://other.example/tg"]) == 0
    assert telegram_env.log.calls("setWebhook")[-1].params["url"] == "https://other.example/tg"


def test_the_cli_reports_a_refused_webhook_without_the_token(telegram_env: FakeTelegram,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    telegram_env.log.fail_next("setWebhook", 1, status=400, reason="Bad Request: bad webhook: an HTTPS URL must be "
                                                                   "provided for webhook")
    assert cli.main(["telegram-webhook", "--url", "http://plain.example/tg"]) == 2
    err = capsys.readouterr().err
    assert "Telegram refused the webhook" in err and "https url must be provided" in err
    assert telegram_env.token not in err


def test_the_cli_refuses_when_telegram_is_off(telegram_env: FakeTelegram, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FRONTDESK_TELEGRAM__ENABLED", "false")
    calls = len(telegram_env.log.calls("setWebhook"))
    assert cli.main(["telegram-webhook"]) == 2
    assert "Telegram is not enabled" in capsys.readouterr().err
    assert len(telegram_env.log.calls("setWebhook")) == calls
