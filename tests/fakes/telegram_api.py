"""A fake Telegram Bot API (``getMe``, ``sendMessage``, ``setWebhook``, ``deleteWebhook``) with a call log.

Paths are ``/bot<token>/<method>`` as PTB builds them from ``base_url``. A wrong token gets 401 (PTB raises
``InvalidToken``), unknown methods 404, and ``log.fail_next("sendMessage", n, status, reason)`` scripts
failures as ``{"ok": false, "error_code": status, "description": reason}`` with that HTTP status. PTB sends
form-encoded parameters, so ids arrive as strings (``"4242"``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.calls import Call, CallLog

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "Frontdesk", "username": "frontdesk_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}


class FakeTelegram:
    """The fake's state; ``app`` is the ASGI app; point ``api_base_url`` at ``<url>/bot``."""

    def __init__(self, token: str = "123456:fake-telegram-token") -> None:
        self.token = token
        self.base_url = ""  # set by whoever serves ``app``
        self.log = CallLog()
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self.app = FastAPI(title="fake Telegram Bot API")
        self.app.add_api_route("/bot{token}/{method}", self._handle, methods=["POST", "GET"])

    def sent(self, chat_id: str) -> list[Call]:
        """Accepted ``sendMessage`` calls to one chat."""
        return [c for c in self.log.calls("sendMessage") if c.ok and str(c.params.get("chat_id")) == chat_id]

    def wait_sent(self, chat_id: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait for ``count`` accepted messages to ``chat_id``."""
        return self.log.wait_for(
            lambda c: c.method == "sendMessage" and c.ok and str(c.params.get("chat_id")) == chat_id, count, timeout)

    async def _handle(self, token: str, method: str, request: Request) -> JSONResponse:
        raw = (await request.body()).decode()
        if request.headers.get("content-type", "").startswith("application/json"):
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw or request.url.query))
        authorized = token == self.token
        status, body = self._answer(method, params, authorized)
        self.log.record(Call(method, params, authorized, status, body))
        return JSONResponse(body, status_code=status)

    def _answer(self, method: str, params: dict[str, Any], authorized: bool) -> tuple[int, dict[str, Any]]:
        if not authorized:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        failure = self.log.take_failure(method)
        if failure is not None:
            return failure.status, {"ok": False, "error_code": failure.status, "description": failure.reason}
        if method == "getMe":
            return 200, {"ok": True, "result": BOT_USER}
        if method == "sendMessage":
            if not params.get("chat_id") or not params.get("text"):
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            if len(str(params["text"])) > 4096:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
            with self._ids_lock:
                message_id = next(self._ids)
            return 200, {"ok": True, "result": {
                "message_id": message_id, "date": int(time.time()), "text": params["text"],
                "chat": {"id": int(params["chat_id"]), "type": "private"}, "from": BOT_USER}}
        if method in ("setWebhook", "deleteWebhook"):
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
