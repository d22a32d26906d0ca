"""Staff authentication, roles, the editor article API and the escaped help-center pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from domain.errors import ConfigurationError
from knowledge_index.encoder import HashEncoder
from server import create_app
from tests.api.conftest import ADMIN_PASSWORD, bearer, staff_token
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def test_login_logout_and_me(client: TestClient) -> None:
    bad = client.post("/api/auth/login", json={"username": "admin", "password": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["message"] == "wrong username or password"
    unknown = client.post("/api/auth/login", json={"username": "ghost", "password": "wrong"})
    assert unknown.json() == bad.json()
    token = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    me = client.get("/api/auth/me", headers=bearer(token)).json()
    assert me["username"] == "admin" and "admin" in me["roles"]
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_roles_gate_the_endpoints(client: TestClient) -> None:
    editor = staff_token(client, "ed", "editor")
    agent = staff_token(client, "ag", "agent")
    supervisor = staff_token(client, "sup", "supervisor")
    assert client.get("/api/handoffs", headers=bearer(editor)).status_code == 403
    assert client.get("/api/handoffs", headers=bearer(agent)).status_code == 200
    assert client.get("/api/handoffs", headers=bearer(supervisor)).status_code == 200
    assert client.put("/api/articles/x", headers=bearer(agent), json={"title": "t", "body": "b"}).status_code == 403
    assert client.get("/api/admin/users", headers=bearer(agent)).status_code == 403
    assert client.get("/api/handoffs").status_code == 401
    assert client.get("/api/handoffs", headers=bearer("st_forged")).status_code == 401
    assert client.get("/api/handoffs", headers={"Authorization": "Basic abc"}).status_code == 401


def test_admin_user_management_validates(client: TestClient) -> None:
    admin = staff_token(client, "admin2", "admin")
    bad_role = client.post("/api/admin/users", headers=bearer(admin),
                           json={"username": "x", "password": "long-enough", "roles": ["wizard"]})
    assert bad_role.status_code == 422 and "unknown roles: wizard" in bad_role.json()["error"]["message"]
    short = client.post("/api/admin/users", headers=bearer(admin),
                        json={"username": "x", "password": "short", "roles": ["agent"]})
    assert short.status_code == 422
    ok = client.post("/api/admin/users", headers=bearer(admin),
                     json={"username": "newbie", "password": "long-enough", "roles": ["agent"]})
    assert ok.status_code == 201
    dupe = client.post("/api/admin/users", headers=bearer(admin),
                       json={"username": "newbie", "password": "long-enough", "roles": ["agent"]})
    assert dupe.status_code == 409


def test_editor_adds_updates_and_deletes_an_article(client: TestClient) -> None:
    editor = staff_token(client, "editor-eve", "editor")
    body = {"title": "Karaoke mode", "body": "Turn on karaoke mode from the lyrics screen.\n\n## Microphones\n"
            "Any Bluetooth microphone works with karaoke mode.", "tags": ["Lyrics", "karaoke"], "team": "technical"}
    created = client.put("/api/articles/playback-karaoke", headers=bearer(editor), json=body)
    assert created.status_code == 200, created.text
    assert created.json()["tags"] == ["lyrics", "karaoke"]
    hits = client.get("/api/articles/search", params={"q": "karaoke microphones bluetooth"}).json()
    assert hits[0]["article_id"] == "playback-karaoke" and hits[0]["heading"] == "Microphones"
    body["body"] = "Karaoke mode is gone; sing along with lyrics instead."
    client.put("/api/articles/playback-karaoke", headers=bearer(editor), json=body)
    hits = client.get("/api/articles/search", params={"q": "karaoke microphones bluetooth"}).json()
    assert all(h["heading"] != "Microphones" for h in hits)
    assert client.get("/api/articles/playback-karaoke").json()["body"].startswith("Karaoke mode is gone")
    assert client.delete("/api/articles/playback-karaoke", headers=bearer(editor)).status_code == 204
    assert client.get("/api/articles/playback-karaoke").status_code == 404
    assert client.delete("/api/articles/playback-karaoke", headers=bearer(editor)).status_code == 404
    bad_id = client.put("/api/articles/Bad%20Id", headers=bearer(editor), json={"title": "t", "body": "b"})
    assert bad_id.status_code == 422 and "lowercase" in bad_id.json()["error"]["message"]


def test_help_pages_escape_everything(client: TestClient) -> None:
    editor = staff_token(client, "editor-xss", "editor")
    client.put("/api/articles/xss-test", headers=bearer(editor), json={
        "title": "<script>alert(1)</script> title",
        "body": "Hello <img src=x onerror=alert(2)> [link](javascript:alert(3)) **bold**",
        "tags": ["<b>tag</b>"],
    })
    page = client.get("/help/articles/xss-test")
    assert page.status_code == 200
    html = page.text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; title" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert 'href="javascript:' not in html
    assert "<strong>bold</strong>" in html
    assert "&lt;b&gt;tag&lt;/b&gt;" in html
    index = client.get("/help").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; title" in index and "<script>alert(1)" not in index
    assert client.get("/help/articles/nope").status_code == 404
    client.delete("/api/articles/xss-test", headers=bearer(editor))


def test_article_listing_is_public(client: TestClient) -> None:
    articles = client.get("/api/articles").json()
    assert len(articles) >= 40
    first = articles[0]
    assert client.get(first["url"]).status_code == 200
    assert client.get(f"/api/articles/{first['id']}").json()["title"] == first["title"]


def test_broken_training_data_keeps_the_previous_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as first:
        version = first.app.state.services.serving.version  # type: ignore[attr-defined]
    broken = tmp_path / "nlu.yml"
    broken.write_text("nlu:\n- intent: a\n  examples: [\n")
    settings.nlu.training_data = str(broken)
    with TestClient(create_app(settings, encoder=HashEncoder(384))) as second:
        assert second.app.state.services.serving.version == version  # type: ignore[attr-defined]
        assert second.get("/readyz").status_code == 200
    fresh = make_settings(tmp_path / "fresh")
    fresh.nlu.training_data = str(broken)
    with pytest.raises(ConfigurationError, match=r"nlu.yml:\d+: invalid YAML"), \
            TestClient(create_app(fresh, encoder=HashEncoder(384))):
        pass
