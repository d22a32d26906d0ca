"""The whole service on PostgreSQL (DATABASE_URL), through HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_chat_and_handoff_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url.replace("postgresql+psycopg", "postgresql"),
                             auth=AuthSettings(bootstrap_admin_password=SecretStr("pg-admin-password")))
    assert settings.db_url.startswith("postgresql+psycopg://")
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        assert services.db.dialect == "postgresql"
        assert client.get("/readyz").json()["checks"]["database"] is True
        created = client.post("/api/conversations", json={"name": "Pia"}).json()
        auth = {"Authorization": f"Bearer {created['customer_token']}"}
        url = f"/api/conversations/{created['conversation_id']}/messages"
        assert client.post(url, headers=auth, json={"text": "Cancel Premium on the web"}).status_code == 200
        turn = client.post(url, headers=auth, json={"text": "let me speak to a human", "client_message_id": "1"})
        again = client.post(url, headers=auth, json={"text": "let me speak to a human", "client_message_id": "1"})
        assert turn.json()["decision"] == "handoff" and again.json()["duplicate"] is True
        token = client.post("/api/auth/login", json={"username": "admin", "password": "pg-admin-password"}).json()
        queue = client.get("/api/handoffs", headers={"Authorization": f"Bearer {token['token']}"}).json()
        (handoff,) = [h for h in queue if h["conversation_id"] == created["conversation_id"]]
        detail = client.get(f"/api/handoffs/{handoff['id']}",
                            headers={"Authorization": f"Bearer {token['token']}"}).json()["handoff"]
        assert [line["text"] for line in detail["context"]["transcript"]][-1] == "let me speak to a human"
        assert services.articles.count_articles() >= 40
