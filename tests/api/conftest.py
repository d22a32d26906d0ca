"""An app on the hash encoder and the demo data, shared by the API tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings, ChatSettings
from tests.conftest import make_settings

ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("api"),
        chat=ChatSettings(max_message_chars=300),
        auth=AuthSettings(bootstrap_admin_password=SecretStr(ADMIN_PASSWORD)),
    )
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_token(client: TestClient, username: str, *roles: str) -> str:
    """Create (once) and log in a staff user with the given roles."""
    admin = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    password = f"{username}-password"
    client.post("/api/admin/users", headers=bearer(admin),
                json={"username": username, "password": password, "roles": list(roles)})
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def start(client: TestClient, **body: Any) -> tuple[str, dict[str, str]]:
    """A new conversation: (id, auth headers)."""
    response = client.post("/api/conversations", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return data["conversation_id"], bearer(data["customer_token"])
