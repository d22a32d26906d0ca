"""Fake Slack / Telegram APIs on 127.0.0.1 and the real app pointed at them (hash encoder, temporary SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.delivery import DeliveryWorker
from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings, ChatSettings, DeliverySettings, ServerSettings, SlackSettings, TelegramSettings
from tests.api.conftest import ADMIN_PASSWORD
from tests.conftest import make_settings
from tests.fakes.runner import serve_in_thread
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from wiring import Services

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
WEBHOOK_SECRET = "test_webhook-Secret_123"
PUBLIC_URL = "https://help.example.test"
RETRY_BASE_SECONDS = 300.0  # long enough that the app's own worker never retries during a test
MAX_CHARS = 300

# Bolt falls back to these when a value is not passed, and reads SLACK_CLIENT_ID/SECRET to switch to
# OAuth; slack-sdk follows proxy variables even for 127.0.0.1 (it ignores NO_PROXY). Gotchas 3 and 7.
_SCRUBBED = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET",
             "SLACK_VERIFICATION_TOKEN", "SLACK_APP_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
             "https_proxy", "ALL_PROXY", "all_proxy")

T = TypeVar("T")


@pytest.fixture(scope="module")
def clean_env() -> Iterator[None]:
    """No Slack/Telegram credentials or proxies from the developer's environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _SCRUBBED:
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def fake_slack(clean_env: None) -> Iterator[FakeSlack]:
    """The fake Slack Web API, running for the whole module."""
    fake = FakeSlack()
    with serve_in_thread(fake.app, "fake-slack") as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="module")
def fake_telegram(clean_env: None) -> Iterator[FakeTelegram]:
    """The fake Telegram Bot API, running for the whole module."""
    fake = FakeTelegram()
    with serve_in_thread(fake.app, "fake-telegram") as url:
        fake.base_url = url
        yield fake


def slack_settings(fake: FakeSlack, **changes: Any) -> SlackSettings:
    """Slack enabled against the fake."""
    values: dict[str, Any] = {"enabled": True, "bot_token": SecretStr(fake.token),
                              "signing_secret": SecretStr(SIGNING_SECRET),
                              "api_base_url": f"{fake.base_url}/api/"}
    return SlackSettings(**{**values, **changes})


def telegram_settings(fake: FakeTelegram, **changes: Any) -> TelegramSettings:
    """Telegram enabled against the fake."""
    url = fake.base_url
    values: dict[str, Any] = {"enabled": True, "bot_token": SecretStr(fake.token),
                              "webhook_secret": SecretStr(WEBHOOK_SECRET), "api_base_url": f"{url}/bot",
                              "file_base_url": f"{url}/file/bot"}
    return TelegramSettings(**{**values, **changes})


def channel_app_settings(data_dir: Path, **channels: Any) -> Any:
    """App settings for the channel tests: short message limit, public URL, slow retries, an admin password."""
    return make_settings(
        data_dir, chat=ChatSettings(max_message_chars=MAX_CHARS), server=ServerSettings(public_base_url=PUBLIC_URL),
        delivery=DeliverySettings(retry_base_seconds=RETRY_BASE_SECONDS, retry_max_seconds=3600),
        auth=AuthSettings(bootstrap_admin_password=SecretStr(ADMIN_PASSWORD)), **channels)


@pytest.fixture(scope="module")
def slack_client(tmp_path_factory: pytest.TempPathFactory, fake_slack: FakeSlack) -> Iterator[TestClient]:
    """The real app with Slack enabled (lifespan running), shared by one test module."""
    settings = channel_app_settings(tmp_path_factory.mktemp("slack"), slack=slack_settings(fake_slack))
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as client:
        yield client


@pytest.fixture(scope="module")
def telegram_client(tmp_path_factory: pytest.TempPathFactory, fake_telegram: FakeTelegram) -> Iterator[TestClient]:
    """The real app with Telegram enabled (lifespan running), shared by one test module."""
    settings = channel_app_settings(tmp_path_factory.mktemp("telegram"), telegram=telegram_settings(fake_telegram))
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as client:
        yield client


def services_of(client: TestClient) -> Services:
    """The app's services (built in its lifespan)."""
    services: Services = cast(FastAPI, client.app).state.services
    return services


def run_delivery(client: TestClient, now: datetime) -> tuple[int, int]:
    """One delivery pass at an explicit (future) time, on the app's event loop; returns (delivered, failed)."""
    services = services_of(client)
    senders = cast(FastAPI, client.app).state.channels.senders()
    worker = DeliveryWorker(services.conversations, senders, services.notifier, services.owner,
                            retry_base_seconds=RETRY_BASE_SECONDS, retry_max_seconds=3600)
    portal = client.portal
    assert portal is not None
    return portal.call(worker.run_once, now)
