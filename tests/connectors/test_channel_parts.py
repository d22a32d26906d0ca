"""The pieces of the Slack and Telegram channels without a server: settings, text rules, payload translation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from telegram import Update

from connectors.channels import absolute_url, platform_text
from connectors.slack import dm_message, escape, slack_text, unescape
from connectors.telegram import private_text, split_text, telegram_text
from domain.enums import Channel, Sender
from domain.models import StoredMessage
from settings import Settings, SlackSettings, TelegramSettings

pytestmark = pytest.mark.unit


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(("section", "values", "fragment"), [
    ("slack", {"enabled": True}, "slack.bot_token (FRONTDESK_SLACK__BOT_TOKEN), slack.signing_secret"),
    ("slack", {"enabled": True, "bot_token": "xoxb-secret-1"}, "slack.signing_secret (FRONTDESK_SLACK__SIGNING"),
    ("slack", {"enabled": True, "bot_token": "xoxb-secret-1", "signing_secret": "  "}, "slack.signing_secret"),
    ("slack", {"enabled": True, "bot_token": "xoxp-secret-1", "signing_secret": "s3cret"}, "starts with xoxb-"),
    ("telegram", {"enabled": True, "bot_token": "1:secret-1"}, "telegram.webhook_secret (FRONTDESK_TELEGRAM__"),
    ("telegram", {"webhook_secret": "has space secret-1"}, "1-256 characters of A-Z, a-z, 0-9, _ and -"),
    ("telegram", {"webhook_secret": "x" * 257}, "1-256 characters"),
    ("telegram", {"webhook_secret": ""}, "1-256 characters"),
])
def test_enabled_channels_fail_closed_without_leaking_secrets(section: str, values: dict[str, Any],
                                                              fragment: str) -> None:
    with pytest.raises(ValidationError) as failure:
        _settings(**{section: values})
    message = str(failure.value)
    assert fragment in message
    assert "secret-1" not in message and "s3cret" not in message and "x" * 257 not in message


def test_channels_are_off_by_default_and_valid_sections_load() -> None:
    settings = _settings()
    assert not settings.slack.enabled and not settings.telegram.enabled
    assert settings.slack.api_base_url == "https://slack.com/api/"
    assert settings.telegram.api_base_url == "https://api.telegram.org/bot"
    ok = _settings(slack=SlackSettings(enabled=True, bot_token="xoxb-1", signing_secret="s"),
                   telegram=TelegramSettings(enabled=True, bot_token="1:a", webhook_secret="A-z_09"))
    assert ok.slack.enabled and ok.telegram.webhook_secret is not None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_TELEGRAM__ENABLED", "true")
    monkeypatch.setenv("FRONTDESK_TELEGRAM__BOT_TOKEN", "1:abc")
    monkeypatch.setenv("FRONTDESK_TELEGRAM__WEBHOOK_SECRET", "good_secret")
    settings = Settings(_env_file=None)
    assert settings.telegram.enabled and settings.telegram.bot_token is not None
    assert "1:abc" not in repr(settings)


@pytest.mark.parametrize(("raw", "expected"), [
    ("  hello\x00 there  ", "hello there"),
    ("   \n\t ", None),
    ("\x01\x02", None),
    ("x" * 50, "x" * 50),
])
def test_platform_text_cleans_and_drops_empty_messages(raw: str, expected: str | None) -> None:
    assert platform_text(raw, 50) == expected


def test_platform_text_shortens_over_long_messages_with_a_note() -> None:
    text = platform_text("word " * 100, 120)
    assert text is not None and len(text) <= 120
    assert text.startswith("word word")
    assert text.endswith("(shortened: the message had 499 characters; the limit is 120)")
    assert platform_text("y" * 30, 10) == "y" * 10  # a limit too small for the note: just cut


def _message(text: str, sender: Sender = Sender.BOT, citations: tuple[tuple[str, str], ...] = (),
             author: str | None = None) -> StoredMessage:
    cited = [{"article_id": url.rsplit("/", 1)[-1], "title": title, "url": url, "passage": "p", "heading": "h",
              "score": 0.9} for title, url in citations]
    return StoredMessage(1, "c", sender, text, datetime.now(UTC), kind="answer", author=author,
                         payload={"citations": cited})


def test_article_links_become_absolute() -> None:
    assert absolute_url("/help/articles/a", "https://x.test/support/") == "https://x.test/support/help/articles/a"
    assert absolute_url("https://kb.test/a", "https://x.test") == "https://kb.test/a"


def test_slack_formatting_escapes_text_and_links_citations() -> None:
    assert unescape("a &lt;b&gt; &amp;lt;") == "a <b> &lt;"
    assert escape("<@U1> & co") == "&lt;@U1&gt; &amp; co"
    one = slack_text(_message("Use <Settings> & save", citations=(("Cancel Premium", "/help/articles/c"),)),
                     "https://h.test")
    assert one == "Use &lt;Settings&gt; &amp; save\nSource: <https://h.test/help/articles/c|Cancel Premium>"
    two = slack_text(_message("Try these:", citations=(("A", "/a"), ("B", "/b"))), "https://h.test")
    assert two.splitlines()[1:] == ["• <https://h.test/a|A>", "• <https://h.test/b|B>"]
    assert slack_text(_message("Hi", Sender.AGENT, author="Sam"), "https://h.test") == "*Sam*: Hi"
    assert slack_text(_message("Open **Settings** > **Storage**"), "u") == "Open *Settings* &gt; *Storage*"
    assert slack_text(_message("a **b**", Sender.AGENT, author="Sam"), "u") == "*Sam*: a **b**"  # agents' own text


def test_telegram_formatting_and_splitting() -> None:
    text = telegram_text(_message("Answer", citations=(("Refunds", "/help/articles/r"),)), "https://h.test")
    assert text == "Answer\nSource: Refunds - https://h.test/help/articles/r"
    assert telegram_text(_message("Hi", Sender.AGENT, author="Sam"), "u") == "Sam: Hi"
    assert telegram_text(_message("Open **Settings** > **Storage**"), "u") == "Open Settings > Storage"
    long = ("line of text " * 50 + "\n") * 20
    parts = split_text(long, 1000)
    assert all(len(p) <= 1000 for p in parts) and " ".join(" ".join(parts).split()) == " ".join(long.split())
    assert split_text("z" * 2500, 1000) == ["z" * 1000, "z" * 1000, "z" * 500]
    assert split_text("short") == ["short"]


def _event(**changes: Any) -> dict[str, Any]:
    event = {"type": "message", "channel_type": "im", "channel": "D1", "user": "U1", "text": "hi &amp; bye"}
    return {"team_id": "T1", "event_id": "Ev1", "event": {**event, **changes}}


def test_slack_dms_are_translated_and_everything_else_is_not() -> None:
    message = dm_message(_event())
    assert message is not None
    assert (message.channel, message.user_key, message.reply_to, message.text, message.delivery_key) == (
        Channel.SLACK, "T1:U1", "D1", "hi & bye", "slack:Ev1")
    for changes in ({"subtype": "message_changed"}, {"bot_id": "B1"}, {"channel_type": "channel"},
                    {"type": "app_mention"}, {"user": None}):
        assert dm_message(_event(**changes)) is None
    assert dm_message({**_event(), "event_id": None}) is None


def _update(chat_type: str = "private", text: str | None = "hi", is_bot: bool = False) -> Update:
    message: dict[str, Any] = {"message_id": 1, "date": 0, "chat": {"id": 55, "type": chat_type},
                               "from": {"id": 55, "is_bot": is_bot, "first_name": "Kim"}}
    if text is not None:
        message["text"] = text
    return Update.de_json({"update_id": 9, "message": message}, None)


def test_telegram_private_text_messages_are_translated_and_everything_else_is_not() -> None:
    message = private_text(_update())
    assert message is not None
    assert (message.channel, message.user_key, message.reply_to, message.text, message.delivery_key,
            message.display_name) == (Channel.TELEGRAM, "55", "55", "hi", "telegram:55:1", "Kim")
    start = private_text(_update(text="/start promo"))
    assert start is not None and start.text == "hello"
    assert private_text(_update(chat_type="group")) is None
    assert private_text(_update(text=None)) is None
    assert private_text(_update(is_bot=True)) is None
