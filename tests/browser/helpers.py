"""What the browser tests do: the customer chat at ``/``, the agent console at ``/agent``, and the JSON API
as a back door (staff users, customer conversations, handoff lookups)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

STORAGE_KEY = "frontdesk.conversation"
HUMAN_REQUEST = "I want to talk to a real person"
HANDOFF_STATUS = "You are talking with our support team."


# --- the API -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Staff:
    """A staff user made for one test."""

    username: str
    password: str
    display_name: str
    token: str


class DeskApi:
    """The JSON API as the tests' back door: staff users, customer conversations, handoff lookups."""

    def __init__(self, http: httpx.Client, admin_password: str) -> None:
        self.http = http
        self.admin = self.login("admin", admin_password)

    def login(self, username: str, password: str) -> str:
        response = self.http.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def staff(self, role: str, display_name: str, **fields: Any) -> Staff:
        """A new staff user with a unique username (the live server is shared by the whole session)."""
        username = f"{role}-{uuid.uuid4().hex[:8]}"
        password = f"{username}-password"
        response = self.http.post("/api/admin/users", headers=bearer(self.admin), json={
            "username": username, "password": password, "roles": [role], "display_name": display_name, **fields})
        assert response.status_code == 201, response.text
        return Staff(username, password, display_name, self.login(username, password))

    def get(self, path: str, token: str | None = None) -> Any:
        response = self.http.get(path, headers=bearer(token or self.admin))
        assert response.status_code == 200, response.text
        return response.json()

    def customer(self, name: str | None = None) -> tuple[str, dict[str, str]]:
        """A new web-chat conversation: (id, the customer's auth headers)."""
        response = self.http.post("/api/conversations", json={"name": name} if name else {})
        assert response.status_code == 201, response.text
        data = response.json()
        return data["conversation_id"], bearer(data["customer_token"])

    def say(self, conversation_id: str, headers: dict[str, str], text: str) -> dict[str, Any]:
        response = self.http.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                                  json={"text": text})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def handoff_for(self, conversation_id: str) -> dict[str, Any]:
        """The (latest) handoff of a conversation, with its context, as an admin sees it in the queue."""
        found = [h for h in self.get("/api/handoffs?state=open&state=claimed&state=resolved&with_context=true")
                 if h["conversation_id"] == conversation_id]
        assert found, f"no handoff for conversation {conversation_id}"
        return dict(max(found, key=lambda h: h["id"]))

    def handoff(self, name: str | None, text: str = HUMAN_REQUEST) -> tuple[str, int]:
        """A customer who asked for a person: (conversation id, handoff id)."""
        conversation_id, headers = self.customer(name)
        turn = self.say(conversation_id, headers, text)
        assert turn["handed_off"], turn
        return conversation_id, int(self.handoff_for(conversation_id)["id"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the customer chat ---------------------------------------------------------------------------------

def open_chat(page: Page) -> None:
    """Open the chat page and wait until the script has restored any saved conversation."""
    page.goto("/")
    expect(page.get_by_role("heading", name="Help chat")).to_be_visible()
    expect(page.locator("#messages li.msg--welcome")).to_be_visible()


def send(page: Page, text: str) -> None:
    """Type into the composer and press the Send button."""
    page.get_by_label("Your message").fill(text)
    page.get_by_role("button", name="Send").click()


def customer_bubbles(page: Page) -> Locator:
    """The customer's messages as stored by the server (the pending bubble has no data-sender)."""
    return page.locator("#messages li[data-sender='customer'] .msg__bubble")


def replies(page: Page, kind: str) -> Locator:
    """Bot replies of one kind (answer, suggest, respond, clarify, handoff, csat_request, follow_up)."""
    return page.locator(f"#messages li[data-sender='bot'][data-kind='{kind}']")


def stored_session(page: Page) -> dict[str, str] | None:
    """The {id, token} the page keeps in localStorage, if any."""
    raw = page.evaluate("key => window.localStorage.getItem(key)", STORAGE_KEY)
    return json.loads(raw) if raw else None


def api_transcript(page: Page) -> dict[str, Any]:
    """GET /api/conversations/{id} with the customer token the page stored."""
    session = stored_session(page)
    assert session is not None, "the page did not store its conversation"
    response = page.request.get(f"/api/conversations/{session['id']}",
                                headers={"Authorization": f"Bearer {session['token']}"})
    assert response.ok, response.text()
    return dict(response.json())


def mark_page(page: Page) -> None:
    """Set a flag that only survives while the page is not reloaded (to prove updates arrived live)."""
    page.evaluate("() => { window.__sameDocument = true; }")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"


# --- the agent console ---------------------------------------------------------------------------------

def log_in(page: Page, staff: Staff) -> None:
    """Log into /agent and wait until the live stream is connected."""
    page.goto("/agent")
    expect(page.get_by_test_id("login-view")).to_be_visible()
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("me")).to_contain_text(staff.display_name)
    expect(page.get_by_test_id("live-indicator")).to_have_text("live")


def queue_item(page: Page, handoff_id: int) -> Locator:
    return page.locator(f"[data-testid='queue-item'][data-handoff-id='{handoff_id}']")


def open_handoff(page: Page, handoff_id: int) -> Locator:
    """Select a handoff in the queue; returns the detail pane once it shows that handoff."""
    queue_item(page, handoff_id).get_by_role("button").click()
    detail = page.get_by_test_id("handoff-detail")
    expect(detail).to_have_attribute("data-handoff-id", str(handoff_id))
    expect(page.get_by_test_id("detail-title")).to_contain_text(f"#{handoff_id}")
    return detail
