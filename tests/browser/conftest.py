"""Fixtures for the real-browser tests: the app under uvicorn on a free local port, headless Chromium.

The server runs the real application (MiniLM encoder, demo knowledge base seeded at startup, a SQLite
file, a known bootstrap admin password) in a background thread; Playwright drives Debian's Chromium
through the sync API. No browser is ever downloaded: when Chromium is missing the tests skip, or fail
when FRONTDESK_REQUIRE_BROWSER=1 (CI). Staff users and customer conversations for the agent-console
tests are made through the JSON API (``desk_api``); every extra browser window comes from ``new_page``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import NoReturn

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright
from pydantic import SecretStr

from knowledge_index.encoder import Encoder
from server import create_app
from settings import AuthSettings, DeliverySettings, TelegramSettings
from tests.browser.helpers import DeskApi
from tests.conftest import make_settings
from tests.fakes.runner import serve_in_thread
from tests.fakes.telegram_api import FakeTelegram

REQUIRE_ENV = "FRONTDESK_REQUIRE_BROWSER"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT_S = 120.0  # MiniLM encodes the whole demo knowledge base during startup
EXPECT_TIMEOUT_MS = 15_000  # a bot turn runs the encoder, the classifier and the index on a CPU
ADMIN_PASSWORD = "browser-admin-password"  # the bootstrap admin of the live server
TELEGRAM_SECRET = "browser_webhook-secret"  # the live server's Telegram webhook secret
DELIVERY_RETRY_SECONDS = 3600.0  # no automatic retry while a test runs
CONSOLE_VIEWPORT: ViewportSize = {"width": 1440, "height": 900}


def _browser_required() -> bool:
    """True when FRONTDESK_REQUIRE_BROWSER=1 was set for this run (CI): a missing browser then fails."""
    return os.environ.get(REQUIRE_ENV) == "1"


def _chromium_path() -> str | None:
    """The system Chromium, if installed (Playwright's own browser builds are never used)."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _unavailable(reason: str) -> NoReturn:
    """Skip the browser tests, or fail them when a browser is required."""
    if _browser_required():
        pytest.fail(f"{reason}, but {REQUIRE_ENV}=1")
    pytest.skip(f"{reason}; install Debian's chromium package to run the browser tests")


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """Headless system Chromium driven by Playwright's sync API, shared by the session."""
    executable = _chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed (no `chromium` on PATH nor /usr/bin/chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    """A fake Telegram Bot API on loopback: the live server's Telegram channel talks to it."""
    fake = FakeTelegram()
    with serve_in_thread(fake.app, "browser-fake-telegram") as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, minilm: Encoder, fake_telegram: FakeTelegram,
                ) -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1 with a free port; yields its base URL.

    Telegram is enabled against ``fake_telegram`` (webhook secret ``TELEGRAM_SECRET``); failed deliveries
    are retried only after ``DELIVERY_RETRY_SECONDS``, so a test sees them fail and retries them by hand.
    """
    settings = make_settings(
        tmp_path_factory.mktemp("browser"),
        auth=AuthSettings(bootstrap_admin_password=SecretStr(ADMIN_PASSWORD)),
        telegram=TelegramSettings(enabled=True, bot_token=SecretStr(fake_telegram.token),
                                  webhook_secret=SecretStr(TELEGRAM_SECRET),
                                  api_base_url=f"{fake_telegram.base_url}/bot",
                                  file_base_url=f"{fake_telegram.base_url}/file/bot"),
        delivery=DeliverySettings(poll_seconds=0.2, retry_base_seconds=DELIVERY_RETRY_SECONDS,
                                  retry_max_seconds=DELIVERY_RETRY_SECONDS),
    )
    app = create_app(settings, encoder=minilm)
    # ws="none": no WebSocket library is imported (the app has no WebSocket routes); loop="asyncio":
    # a plain event loop in the worker thread.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            ws="none", loop="asyncio", access_log=False,
                            # The session-long API client reuses connections: uvicorn's 5 s idle close could
                            # race a request on a busy machine ("Server disconnected without sending a response").
                            timeout_keep_alive=600)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="browser-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(10)
            pytest.fail("the live server did not start (see the captured log for the startup error)")
        thread.join(0.05)  # wakes up early if the server thread dies
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the live server did not shut down"


def _close(context: BrowserContext) -> None:
    """Close a context; a route handler still running (e.g. a live refresh) must not fail the next test."""
    for opened in context.pages:
        opened.unroute_all(behavior="ignoreErrors")
    context.unroute_all(behavior="ignoreErrors")
    context.close()


@pytest.fixture
def page(chromium_browser: Browser, live_server: str) -> Iterator[Page]:
    """A page in a fresh browser context (own localStorage and cookies) for each test."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = chromium_browser.new_context(base_url=live_server)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    new_page = context.new_page()
    try:
        yield new_page
    finally:
        _close(context)


@pytest.fixture
def new_page(chromium_browser: Browser, live_server: str) -> Iterator[Callable[[], Page]]:
    """Opens more pages, each in its own browser context (a second agent, a supervisor); all closed after."""
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = chromium_browser.new_context(base_url=live_server, viewport=CONSOLE_VIEWPORT)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    try:
        yield open_page
    finally:
        for context in contexts:
            _close(context)


@pytest.fixture(scope="session")
def desk_api(live_server: str) -> Iterator[DeskApi]:
    """The live server's JSON API, logged in as the bootstrap admin."""
    with httpx.Client(base_url=live_server, timeout=60) as http:
        yield DeskApi(http, ADMIN_PASSWORD)
