"""Real ``frontdesk serve`` processes on 127.0.0.1 sharing one database, and a customer's and an agent's HTTP calls."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, REPO

ADMIN_PASSWORD = "cluster-admin-password"
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

# Short timings so that the tests see background work happen within seconds.
FAST = {
    "FRONTDESK_ENCODER__MODEL": "hash",
    "FRONTDESK_ENCODER__MAX_BATCH_WAIT_MS": "0.5",
    "FRONTDESK_AUTH__BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "FRONTDESK_CHAT__RECOVER_AFTER_SECONDS": "3",
    "FRONTDESK_CLUSTER__RECOVERY_CHECK_SECONDS": "1",
    "FRONTDESK_CLUSTER__VERIFY_SECONDS": "2",
    "FRONTDESK_CLUSTER__POLL_SECONDS": "0.2",
    "FRONTDESK_DELIVERY__POLL_SECONDS": "0.5",
    "FRONTDESK_HANDOFF__SLA_CHECK_SECONDS": "1",
    "FRONTDESK_TRAINER__LEASE_SECONDS": "10",
    "FRONTDESK_LOG_LEVEL": "INFO",
    "HF_HUB_OFFLINE": "1",
}


class Server:
    """One ``frontdesk serve`` process (``python -m cli serve``) with its own data folder and log file."""

    def __init__(self, name: str, data_dir: Path, database_url: str, env: Mapping[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.data_dir = data_dir
        self.log_path = data_dir / f"{name}.log"
        self.args = args
        self.env = {**os.environ, **FAST, "FRONTDESK_DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._log_offset = 0

    def start(self) -> Server:
        """Start the process (returns at once; see :meth:`wait_ready`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", "0", *self.args],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.url = ""
        return self

    def wait_ready(self, timeout: float = 240.0) -> Server:
        """Wait until the process listens and ``/readyz`` says ready."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if not self.url:
                with self.log_path.open("rb") as fh:
                    fh.seek(self._log_offset)
                    found = _LISTENING.findall(fh.read().decode(errors="replace"))
                if found:
                    self.url = f"http://127.0.0.1:{found[-1]}"
            if self.url:
                try:
                    if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not become ready:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """``kill -9``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), then SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """An empty PostgreSQL database (not migrated: the servers do that), dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"frontdesk_cluster_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def servers(names: tuple[str, ...], base: Path, database_url: str, env: Mapping[str, str] | None = None,
            ) -> Iterator[list[Server]]:
    """Start processes together on one database; stop them afterwards (their logs stay in ``base``)."""
    started = [Server(n, base / n, database_url, env).start() for n in names]
    try:
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


def login(url: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
    """Staff authorization headers."""
    response = httpx.post(f"{url}/api/auth/login", json={"username": username, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def add_user(url: str, admin: dict[str, str], username: str, roles: list[str]) -> dict[str, str]:
    """Create a staff user through the API and log them in."""
    response = httpx.post(f"{url}/api/admin/users", headers=admin, timeout=30,
                          json={"username": username, "password": f"{username}-password", "roles": roles})
    assert response.status_code == 201, response.text
    return login(url, username, f"{username}-password")


def new_conversation(url: str) -> tuple[str, dict[str, str]]:
    """A customer's conversation id and authorization headers."""
    body = httpx.post(f"{url}/api/conversations", json={"name": "Kim"}, timeout=30).json()
    return body["conversation_id"], {"Authorization": f"Bearer {body['customer_token']}"}


def say(url: str, conversation: str, auth: dict[str, str], text: str, key: str | None = None,
        timeout: float = 30) -> dict[str, Any]:
    """Post a customer message and return the turn."""
    body: dict[str, Any] = {"text": text}
    if key is not None:
        body["client_message_id"] = key
    response = httpx.post(f"{url}/api/conversations/{conversation}/messages", json=body, headers=auth,
                          timeout=timeout)
    assert response.status_code == 200, response.text
    return dict(response.json())


def top_hit(url: str, headers: dict[str, str], question: str) -> str | None:
    """The article a process's knowledge base ranks first for ``question`` ("try a question", editors)."""
    response = httpx.post(f"{url}/api/articles/try", json={"text": question}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    return hits[0]["article_id"] if hits else None


def process_view(url: str, admin: dict[str, str]) -> dict[str, Any]:
    """``GET /api/admin/process``: what this process serves."""
    response = httpx.get(f"{url}/api/admin/process", headers=admin, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())
