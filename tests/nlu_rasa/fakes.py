"""A fake Rasa HTTP server on 127.0.0.1 and a fixed fallback classifier, shared by the Rasa backend tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from domain.models import IntentPrediction

RANKING = [{"name": "refund_request", "confidence": 0.81}, {"name": "billing_charge_dispute", "confidence": 0.12},
           {"name": "greet", "confidence": 0.07}]


class FixedClassifier:
    """The built-in classifier's stand-in: always the same prediction, version ``builtin-1``."""

    version = "builtin-1"
    intents: tuple[str, ...] = ("billing_charge_dispute", "greet", "refund_request")

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        return IntentPrediction(intent="greet", confidence=0.9, ranking=(("greet", 0.9), ("refund_request", 0.1)),
                                out_of_scope=False, model_version=self.version)


class FakeRasa:
    """``POST /model/parse`` and ``GET /status`` like Rasa 3.6; ``mode`` picks the behaviour of the next request.

    Modes: ``ok``, ``slow`` (answers after ``delay`` seconds), ``garbage`` (not JSON), ``wrong_shape``
    (JSON without a ranking), ``error`` (HTTP 500).
    """

    def __init__(self, port: int = 0) -> None:
        self.mode = "ok"
        self.delay = 2.0
        self.ranking: list[dict[str, Any]] = list(RANKING)
        self.parsed: list[str] = []  # texts received by /model/parse
        self.release = threading.Event()  # ends a slow answer early at shutdown
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/status":
                    self._send(404, b"{}")
                    return
                self._answer({"model_id": "0123abcd", "model_file": "models/nlu-test.tar.gz",
                              "num_active_training_jobs": 0})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/model/parse":
                    self._send(404, b"{}")
                    return
                fake.parsed.append(body.get("text", ""))
                self._answer({"text": body.get("text"), "intent": fake.ranking[0] if fake.ranking else None,
                              "entities": [], "intent_ranking": fake.ranking})

            def _answer(self, payload: dict[str, Any]) -> None:
                mode = fake.mode
                if mode == "slow":
                    fake.release.wait(fake.delay)
                if mode == "garbage":
                    self._send(200, b"<html>502 Bad Gateway</html>")
                elif mode == "wrong_shape":
                    self._send(200, json.dumps({"intent": "refund_request", "intent_ranking": "high"}).encode())
                elif mode == "error":
                    self._send(500, b'{"message": "boom"}')
                else:
                    self._send(200, json.dumps(payload).encode())

            def _send(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="fake-rasa",
                                        daemon=True)

    def start(self) -> FakeRasa:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@contextmanager
def fake_rasa() -> Iterator[FakeRasa]:
    """A running fake server, stopped afterwards."""
    server = FakeRasa().start()
    try:
        yield server
    finally:
        server.stop()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
