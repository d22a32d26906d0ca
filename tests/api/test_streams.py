"""Server-sent event streams on a real server: agents see the queue change, customers see agent replies live."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings
from tests.conftest import make_settings
from tests.live import serve

pytestmark = pytest.mark.integration
PASSWORD = "stream-admin-password"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    settings = make_settings(tmp_path_factory.mktemp("streams"),
                             auth=AuthSettings(bootstrap_admin_password=SecretStr(PASSWORD)))
    app = create_app(settings, encoder=HashEncoder(384))
    with serve(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def base_url(live: tuple[str, FastAPI]) -> str:
    return live[0]


class Stream:
    """Reads an SSE stream in a thread; events land in a queue."""

    def __init__(self, url: str, token: str) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.status: queue.Queue[int] = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=None))
        self._thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self._thread.start()

    def _read(self, url: str, token: str) -> None:
        try:
            with self._client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
                self.status.put(response.status_code)
                kind = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        self.events.put((kind, json.loads(line.removeprefix("data: "))))
        except httpx.HTTPError:
            return  # closed by the test

    def wait_for(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next event of a kind (others are skipped)."""
        while True:
            got_kind, data = self.events.get(timeout=timeout)
            if got_kind == kind:
                return data

    def close(self) -> None:
        self._client.close()


def _login(http: httpx.Client, username: str, password: str) -> str:
    response = http.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def test_agent_and_customer_streams(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        admin = _login(http, "admin", PASSWORD)
        desk = Stream(f"{base_url}/api/desk/stream", admin)
        assert desk.status.get(timeout=10) == 200

        created = http.post("/api/conversations", json={"name": "Lee"}).json()
        cid, token = created["conversation_id"], created["customer_token"]
        auth = {"Authorization": f"Bearer {token}"}
        http.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "talk to a human please"})
        event = desk.wait_for("handoff.created")
        assert event["conversation_id"] == cid and event["payload"]["reason"] == "customer_request"
        hid = event["handoff_id"]

        chat = Stream(f"{base_url}/api/conversations/{cid}/stream", token)
        assert chat.status.get(timeout=10) == 200
        http.post(f"/api/handoffs/{hid}/reply", headers={"Authorization": f"Bearer {admin}"},
                  json={"text": "Hello Lee, this is the admin."})
        message = chat.wait_for("message.created")
        assert (message["sender"], message["text"]) == ("agent", "Hello Lee, this is the admin.")
        assert desk.wait_for("message.created")["conversation_id"] == cid

        http.post(f"/api/conversations/{cid}/messages", headers=auth, json={"text": "thanks, one more question"})
        assert chat.wait_for("message.created")["text"] == "thanks, one more question"
        http.post(f"/api/handoffs/{hid}/notes", headers={"Authorization": f"Bearer {admin}"},
                  json={"text": "internal only"})
        http.post(f"/api/handoffs/{hid}/resolve", headers={"Authorization": f"Bearer {admin}"})
        assert chat.wait_for("conversation.status") == {"status": "bot"}
        csat = chat.wait_for("message.created")
        assert csat["kind"] == "csat_request"
        seen_by_customer = []
        while not chat.events.empty():
            seen_by_customer.append(chat.events.get_nowait())
        assert all("internal only" not in json.dumps(data) for _, data in seen_by_customer)
        assert desk.wait_for("handoff.resolved")["handoff_id"] == hid
        desk.close()
        chat.close()


def test_streams_need_the_right_credentials(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        first = http.post("/api/conversations", json={}).json()
        second = http.post("/api/conversations", json={}).json()
        assert http.get("/api/desk/stream").status_code == 401
        assert http.get("/api/desk/stream", headers={"Authorization": f"Bearer {first['customer_token']}"}
                        ).status_code == 401
        stolen = http.get(f"/api/conversations/{first['conversation_id']}/stream",
                          headers={"Authorization": f"Bearer {second['customer_token']}"})
        assert stolen.status_code == 403


def test_an_open_console_stream_puts_the_agent_on_duty(live: tuple[str, FastAPI]) -> None:
    base_url, app = live
    desk_store = app.state.services.desk_store
    with httpx.Client(base_url=base_url, timeout=30) as http:
        admin = {"Authorization": f"Bearer {_login(http, 'admin', PASSWORD)}"}
        http.post("/api/admin/users", headers=admin, json={
            "username": "onduty", "password": "onduty-password", "roles": ["agent"], "teams": ["account"]})
        since = datetime.now(UTC) - timedelta(seconds=1)
        before = {team: desk_store.agents_on_duty(team, since) for team in ("account", "billing")}
        stream = Stream(f"{base_url}/api/desk/stream", _login(http, "onduty", "onduty-password"))
        assert stream.status.get(timeout=10) == 200
        deadline = time.monotonic() + 10
        while desk_store.agents_on_duty("account", since) == before["account"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert desk_store.agents_on_duty("account", since) == before["account"] + 1
        assert desk_store.agents_on_duty("billing", since) == before["billing"]
        stream.close()
