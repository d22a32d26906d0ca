"""The knowledge editors' API: usage statistics after real chat turns (SQLite and PostgreSQL), "try a question",
the section preview, id validation and create-only writes, and who may use them.

The apps here start with an empty knowledge base and the hash encoder; the articles are written through the API
with words no other article shares, so a question copied from a section is answered from it and two articles with
the same text are both suggested, whatever the intent classifier makes of the words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from knowledge_index.encoder import HashEncoder
from server import create_app
from settings import AuthSettings, KnowledgeSettings
from tests.api.conftest import bearer
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "editor-api-admin-password"
QUOKKA = ("Quokka grooming: brush the quokka fur gently with the marsupial comb, then trim the quokka whiskers "
          "using rounded scissors.")
WOMBAT = "Wombat burrows: the wombat digs its burrow with strong claws and sleeps in the burrow during the day."
NONSENSE = "zyxwv qqqq plorf"


def _app(tmp_path: Path, database_url: str = "") -> TestClient:
    settings = make_settings(tmp_path, database_url, knowledge=KnowledgeSettings(seed_dir=""),
                             auth=AuthSettings(bootstrap_admin_password=SecretStr(ADMIN_PASSWORD)))
    return TestClient(create_app(settings, encoder=HashEncoder(384)))


def _token(client: TestClient, role: str | None) -> dict[str, str]:
    """Auth headers of a new staff user with ``role`` (the bootstrap admin for "admin", none for None)."""
    if role is None:
        return {}
    admin = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    if role == "admin":
        return bearer(admin)
    username, password = f"{role}-user", f"{role}-password"
    client.post("/api/admin/users", headers=bearer(admin),
                json={"username": username, "password": password, "roles": [role]})
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])


def _put(client: TestClient, editor: dict[str, str], article_id: str, body: str, **fields: Any) -> None:
    response = client.put(f"/api/articles/{article_id}", headers=editor,
                          json={"title": fields.pop("title", article_id.replace("-", " ").title()), "body": body,
                                **fields})
    assert response.status_code == 200, response.text


def _seed(client: TestClient, editor: dict[str, str]) -> None:
    _put(client, editor, "quokka-care", f"## Grooming\n{QUOKKA}", tags=["quokka"], team="technical")
    _put(client, editor, "wombat-homes", f"## Burrows\n{WOMBAT}", team="account")
    _put(client, editor, "wombat-homes-copy", f"## Burrows\n{WOMBAT}")
    _put(client, editor, "never-cited", "## Parrots\nParrots mimic sounds and enjoy seeds.", team="billing")


def _turn(client: TestClient, text: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A question in a new conversation: (id, customer headers, the turn)."""
    created = client.post("/api/conversations", json={}).json()
    cid, customer = created["conversation_id"], bearer(created["customer_token"])
    turn = client.post(f"/api/conversations/{cid}/messages", headers=customer, json={"text": text})
    assert turn.status_code == 200, turn.text
    return cid, customer, turn.json()


def _react(client: TestClient, cid: str, customer: dict[str, str], turn: dict[str, Any], helpful: bool) -> None:
    reply = turn["replies"][0]
    response = client.post(f"/api/conversations/{cid}/messages/{reply['id']}/feedback", headers=customer,
                           json={"helpful": helpful})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app on SQLite with the test articles, for the tests that do not depend on the database."""
    with _app(tmp_path_factory.mktemp("editor-api")) as client:
        _seed(client, _token(client, "editor"))
        yield client


@pytest.fixture
def app(tmp_path: Path, db_url: str, sqlite_app: TestClient) -> Iterator[TestClient]:
    """An app on each database (SQLite, PostgreSQL) with the test articles.

    """
    with _app(tmp_path, db_url) as client:
        _seed(client, _token(client, "editor"))
        yield client


# --- usage statistics --------------------------------------------------------------------------------------

def test_stats_count_real_turns_and_reactions(app: TestClient) -> None:
    decisions = []
    for helpful in (True, False, None):
        cid, customer, turn = _turn(app, QUOKKA)
        decisions.append((turn["decision"], [c["article_id"] for c in turn["replies"][0]["citations"]]))
        if helpful is not None:
            _react(app, cid, customer, turn, helpful)
    cid, customer, turn = _turn(app, WOMBAT)
    decisions.append((turn["decision"], sorted(c["article_id"] for c in turn["replies"][0]["citations"])))
    _react(app, cid, customer, turn, False)
    _, _, missed = _turn(app, NONSENSE)
    assert decisions == [("answer", ["quokka-care"])] * 3 + [("suggest", ["wombat-homes", "wombat-homes-copy"])]
    assert missed["decision"] not in ("answer", "suggest")

    response = app.get("/api/articles/stats", headers=_token(app, "editor"))
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["days"] == 30
    figures = [(a["id"], a["answered"], a["suggested"], a["helpful"], a["unhelpful"]) for a in stats["articles"]]
    # The unhelpful ones first (most offered first among them), then the rest.
    assert figures == [
        ("quokka-care", 3, 0, 1, 1),
        ("wombat-homes", 0, 1, 0, 1),
        ("wombat-homes-copy", 0, 1, 0, 1),
        ("never-cited", 0, 0, 0, 0),
    ]
    quokka = stats["articles"][0]
    assert (quokka["title"], quokka["tags"], quokka["team"], quokka["locale"], quokka["url"]) == (
        "Quokka Care", ["quokka"], "technical", "en", "/help/articles/quokka-care")
    assert {t["key"]: t["name"] for t in stats["teams"]} == {
        "billing": "Billing", "technical": "Technical support", "account": "Account",
        "trust_safety": "Trust & Safety"}


def test_stats_window_and_access(sqlite_app: TestClient) -> None:
    editor = _token(sqlite_app, "editor")
    assert sqlite_app.get("/api/articles/stats?days=7", headers=editor).json()["days"] == 7
    for bad in ("0", "366", "x"):
        response = sqlite_app.get(f"/api/articles/stats?days={bad}", headers=editor)
        assert response.status_code == 422 and "days" in response.json()["error"]["message"]
    assert sqlite_app.get("/api/articles/stats").status_code == 401
    assert sqlite_app.get("/api/articles/stats", headers=_token(sqlite_app, "agent")).status_code == 403
    assert sqlite_app.get("/api/articles/stats", headers=_token(sqlite_app, "admin")).status_code == 200


# --- try a question -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [(None, 401), ("agent", 403), ("trainer", 403), ("editor", 200),
                                              ("admin", 200)])
def test_try_needs_the_editor_role(sqlite_app: TestClient, role: str | None, status: int) -> None:
    response = sqlite_app.post("/api/articles/try", headers=_token(sqlite_app, role), json={"text": QUOKKA})
    assert response.status_code == status, response.text


def test_try_answers_suggests_or_finds_nothing(sqlite_app: TestClient) -> None:
    editor = _token(sqlite_app, "editor")

    def attempt(text: str) -> dict[str, Any]:
        response = sqlite_app.post("/api/articles/try", headers=editor, json={"text": text})
        assert response.status_code == 200, response.text
        return dict(response.json())

    answer = attempt(QUOKKA)
    assert answer["decision"] == "answer" and answer["detail"].startswith("score ")
    assert answer["hits"][0]["article_id"] == "quokka-care" and answer["hits"][0]["heading"] == "Grooming"
    assert [h["article_id"] for h in answer["hits"] if h["chosen"]] == ["quokka-care"]
    assert answer["hits"][0]["url"] == "/help/articles/quokka-care"
    scores = [h["score"] for h in answer["hits"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4  # every article, best first (search_k 8)

    suggest = attempt(WOMBAT)
    assert suggest["decision"] == "suggest"
    assert sorted(h["article_id"] for h in suggest["hits"] if h["chosen"]) == ["wombat-homes", "wombat-homes-copy"]

    nothing = attempt(NONSENSE)
    assert nothing["decision"] == "none" and not any(h["chosen"] for h in nothing["hits"])
    assert "suggestion threshold" in nothing["detail"]
    assert nothing["thresholds"] == {"answer_threshold": 0.525, "answer_margin": 0.06, "suggest_threshold": 0.3,
                                     "max_suggestions": 3}


def test_try_agrees_with_a_real_turn(sqlite_app: TestClient) -> None:
    editor = _token(sqlite_app, "editor")
    for text in (QUOKKA, WOMBAT):
        tried = sqlite_app.post("/api/articles/try", headers=editor, json={"text": text}).json()
        _, _, turn = _turn(sqlite_app, text)
        assert turn["decision"] == tried["decision"]
        cited = [(c["article_id"], c["score"]) for c in turn["replies"][0]["citations"]]
        assert cited == [(h["article_id"], pytest.approx(h["score"], abs=1e-4)) for h in tried["hits"] if h["chosen"]]


@pytest.mark.parametrize(("body", "fragment"), [({"text": "   "}, "the question is empty"),
                                                ({"text": ""}, "text"), ({}, "text: Field required"),
                                                ({"text": "x" * 2001}, "text")])
def test_try_refuses_empty_questions(sqlite_app: TestClient, body: dict[str, Any], fragment: str) -> None:
    response = sqlite_app.post("/api/articles/try", headers=_token(sqlite_app, "editor"), json=body)
    assert response.status_code == 422 and fragment in response.json()["error"]["message"]


# --- preview, validation, create-only ---------------------------------------------------------------------------

def test_preview_cuts_sections_like_the_knowledge_base(sqlite_app: TestClient) -> None:
    editor = _token(sqlite_app, "editor")
    body = "Intro text.\n\n## First\nOne **bold** line.\n\n```\n## not a heading\n```\n### Second\n- a\n- b\n## Empty\n"
    response = sqlite_app.post("/api/articles/preview", headers=editor, json={"title": "My title", "body": body})
    assert response.status_code == 200, response.text
    assert response.json()["sections"] == [
        {"heading": "My title", "text": "Intro text."},
        {"heading": "First", "text": "One **bold** line.\n\n```\n## not a heading\n```"},
        {"heading": "Second", "text": "- a\n- b"},
    ]
    assert sqlite_app.post("/api/articles/preview", headers=editor, json={"body": ""}).json() == {"sections": []}
    assert sqlite_app.post("/api/articles/preview", json={"body": "x"}).status_code == 401
    assert sqlite_app.post("/api/articles/preview", headers=_token(sqlite_app, "agent"),
                           json={"body": "x"}).status_code == 403


@pytest.mark.parametrize("article_id", ["Upper-Case", "-leading-dash", "has%20space", "dots.in.id", "é-accent",
                                        "x" * 129])
def test_bad_ids_are_refused(sqlite_app: TestClient, article_id: str) -> None:
    response = sqlite_app.put(f"/api/articles/{article_id}", headers=_token(sqlite_app, "editor"),
                              json={"title": "T", "body": "Some text."})
    assert response.status_code == 422, response.text
    assert "must be lowercase letters, digits, '-' or '_'" in response.json()["error"]["message"]
    assert sqlite_app.get(f"/api/articles/{article_id}").status_code == 404


@pytest.mark.parametrize("article_id", ["search", "stats", "preview", "try"])
def test_ids_of_the_api_itself_are_refused(sqlite_app: TestClient, article_id: str) -> None:
    response = sqlite_app.put(f"/api/articles/{article_id}", headers=_token(sqlite_app, "editor"),
                              json={"title": "T", "body": "Some text."})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == f"the id '{article_id}' is taken by the API itself; choose another"


@pytest.mark.parametrize(("body", "fragment"), [
    ("## Only a heading\n### And another", "headings but no text under them"),
    ("  \n ", "the article has no body"),
    ("", "body: String should have at least 1 character"),
])
def test_bodies_without_text_are_refused(sqlite_app: TestClient, body: str, fragment: str) -> None:
    response = sqlite_app.put("/api/articles/empty-body", headers=_token(sqlite_app, "editor"),
                              json={"title": "Empty", "body": body})
    assert response.status_code == 422 and fragment in response.json()["error"]["message"]
    assert sqlite_app.get("/api/articles/empty-body").status_code == 404


def test_if_none_match_only_creates(sqlite_app: TestClient) -> None:
    editor = _token(sqlite_app, "editor")
    create_only = {**editor, "If-None-Match": "*"}
    first = sqlite_app.put("/api/articles/create-once", headers=create_only, json={"title": "One", "body": "Text."})
    assert first.status_code == 200, first.text
    again = sqlite_app.put("/api/articles/create-once", headers=create_only, json={"title": "Two", "body": "Text."})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "an article with the id 'create-once' already exists"
    assert sqlite_app.get("/api/articles/create-once").json()["title"] == "One"
    replaced = sqlite_app.put("/api/articles/create-once", headers=editor, json={"title": "Two", "body": "Text."})
    assert replaced.status_code == 200 and replaced.json()["title"] == "Two"
    assert sqlite_app.delete("/api/articles/create-once", headers=editor).status_code == 204


def test_the_editor_page_is_served_with_its_policy(sqlite_app: TestClient) -> None:
    page = sqlite_app.get("/editor")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.text and "/static/editor.js" in page.text
    for asset in ("editor.js", "editor.core.js", "editor.list.js", "editor.form.js", "editor.try.js", "editor.css"):
        assert sqlite_app.get(f"/static/{asset}").status_code == 200
