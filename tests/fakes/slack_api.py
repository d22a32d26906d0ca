"""A fake Slack Web API (``auth.test``, ``chat.postMessage``) in the shape slack-sdk expects, with a call log.

Modelled on bolt-python's ``tests/mock_web_api_server``: a wrong token gets ``invalid_auth`` with HTTP 200 (as
real Slack answers), unknown methods get ``unknown_method`` so an unexpected call fails loudly, and
``log.fail_next("chat.postMessage", n, status, reason)`` scripts failures (status 200: ``ok: false`` with
``reason`` as the error code; otherwise that HTTP status).
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.calls import Call, CallLog

TEAM_ID = "T0FAKE001"
BOT_USER_ID = "U0FAKEBOT"
BOT_ID = "B0FAKEBOT"


class FakeSlack:
    """The fake's state; ``app`` is the ASGI app to serve under ``/api/<method>``."""

    def __init__(self, token: str = "xoxb-fake-bot-token") -> None:
        self.token = token
        self.base_url = ""  # set by whoever serves ``app``
        self.log = CallLog()
        self._ts = itertools.count(1)
        self._ts_lock = threading.Lock()
        self.app = FastAPI(title="fake Slack Web API")
        self.app.add_api_route("/api/{method}", self._handle, methods=["POST", "GET"])

    def posted(self, channel: str) -> list[Call]:
        """Accepted ``chat.postMessage`` calls into one channel."""
        return [c for c in self.log.calls("chat.postMessage") if c.ok and c.params.get("channel") == channel]

    def wait_posted(self, channel: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait for ``count`` accepted posts into ``channel``."""
        return self.log.wait_for(
            lambda c: c.method == "chat.postMessage" and c.ok and c.params.get("channel") == channel, count, timeout)

    async def _handle(self, method: str, request: Request) -> JSONResponse:
        raw = (await request.body()).decode()
        if request.headers.get("content-type", "").startswith("application/json"):
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw or request.url.query))
        authorized = request.headers.get("authorization") == f"Bearer {self.token}"
        status, body = self._answer(method, params, authorized)
        self.log.record(Call(method, params, authorized, status, body))
        headers = {"x-oauth-scopes": "chat:write,im:history"} if method == "auth.test" else None
        return JSONResponse(body, status_code=status, headers=headers)

    def _answer(self, method: str, params: dict[str, Any], authorized: bool) -> tuple[int, dict[str, Any]]:
        if not authorized:
            return 200, {"ok": False, "error": "invalid_auth"}
        failure = self.log.take_failure(method)
        if failure is not None:
            return failure.status, {"ok": False, "error": failure.reason}
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "frontdesk",
                         "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method == "chat.postMessage":
            if not params.get("channel") or not params.get("text"):
                return 200, {"ok": False, "error": "no_text" if params.get("channel") else "channel_not_found"}
            with self._ts_lock:
                ts = f"1700000000.{next(self._ts):06d}"
            return 200, {"ok": True, "channel": params["channel"], "ts": ts,
                         "message": {"type": "message", "text": params["text"], "ts": ts, "user": BOT_USER_ID,
                                     "bot_id": BOT_ID}}
        return 200, {"ok": False, "error": "unknown_method"}
