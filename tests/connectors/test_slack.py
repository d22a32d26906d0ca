"""The Slack channel through the real app and real Bolt, against a fake Slack Web API on 127.0.0.1."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier

from domain.enums import Channel, Sender
from domain.errors import ConfigurationError
from domain.models import Conversation, CustomerIdentity, StoredMessage
from knowledge_index.encoder import HashEncoder
from server import create_app
from tests.connectors.conftest import (
    MAX_CHARS,
    PUBLIC_URL,
    SIGNING_SECRET,
    channel_app_settings,
    run_delivery,
    services_of,
    slack_settings,
)
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlack
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def dm(user: str, channel: str, text: str, event_id: str | None = None, **event: Any) -> dict[str, Any]:
    """An Events API ``message.im`` delivery."""
    return {
        "token": "legacy-unused", "team_id": TEAM_ID, "api_app_id": "A0FAKEAPP", "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
        "event": {"type": "message", "channel_type": "im", "channel": channel, "user": user, "text": text,
                  "ts": f"{time.time():.6f}", "team": TEAM_ID, **event},
    }


def post_event(client: TestClient, body: dict[str, Any], *, timestamp: int | None = None,
               secret: str = SIGNING_SECRET, headers: dict[str, str] | None = None) -> Any:
    """Post a body signed the way Slack signs it (over the exact bytes sent)."""
    raw = json.dumps(body).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=raw)
    assert signature is not None
    return client.post("/slack/events", content=raw, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
        **(headers or {})})


def conversation_of(client: TestClient, user: str) -> Conversation | None:
    return services_of(client).conversations.open_conversation_for(
        Channel.SLACK, CustomerIdentity("slack", f"{TEAM_ID}:{user}"))


def transcript(client: TestClient, user: str) -> list[StoredMessage]:
    """The user's open conversation so far (empty while the acked event is still being handled)."""
    conversation = conversation_of(client, user)
    return [] if conversation is None else services_of(client).conversations.transcript(conversation.id)


def test_url_verification_is_answered(slack_client: TestClient) -> None:
    response = post_event(slack_client, {"type": "url_verification", "token": "x", "challenge": "c-123"})
    assert response.status_code == 200 and "c-123" in response.text


def test_a_signed_dm_gets_a_reply_posted_by_the_delivery_worker(slack_client: TestClient,
                                                                 fake_slack: FakeSlack) -> None:
    started = time.monotonic()
    response = post_event(slack_client, dm("U1", "D1", "hello"))
    assert response.status_code == 200
    assert time.monotonic() - started < 3, "Slack needs the ack within 3 s"
    (post,) = fake_slack.wait_posted("D1")
    assert fake_slack.log.calls("auth.test"), "Bolt learns the bot's ids from auth.test"
    conversation = conversation_of(slack_client, "U1")
    assert conversation is not None and (conversation.channel, conversation.external_ref) == (Channel.SLACK, "D1")
    messages = transcript(slack_client, "U1")
    customer, reply = messages[0], messages[1]
    assert (customer.sender, customer.text) == (Sender.CUSTOMER, "hello")
    assert reply.sender == Sender.BOT and post.params["text"] == reply.text
    wait_until(lambda: transcript(slack_client, "U1")[1].delivery_status == "delivered", what="delivered")
    assert transcript(slack_client, "U1")[1].payload["platform_id"] == post.response["ts"]


def test_answers_link_their_article_with_an_absolute_url(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    assert post_event(slack_client, dm("U2", "D2", "Cancel Premium on the web")).status_code == 200
    (post,) = fake_slack.wait_posted("D2")
    reply = transcript(slack_client, "U2")[1]
    citation = reply.payload["citations"][0]
    assert f"<{PUBLIC_URL}/help/articles/{citation['article_id']}|{citation['title']}>" in post.params["text"]


def test_a_retried_event_is_processed_once(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    event = dm("U3", "D3", "hello there", event_id="EvRETRY0001")
    assert post_event(slack_client, event).status_code == 200
    fake_slack.wait_posted("D3")
    for attempt in ("1", "2"):
        retried = post_event(slack_client, event,
                             headers={"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"})
        assert retried.status_code == 200
    # A later message from someone else has been handled once the retries have.
    post_event(slack_client, dm("U3b", "D3b", "hello"))
    fake_slack.wait_posted("D3b")
    messages = transcript(slack_client, "U3")
    assert [m.sender for m in messages].count(Sender.CUSTOMER) == 1
    assert len(fake_slack.posted("D3")) == len([m for m in messages if m.sender == Sender.BOT]) == 1


@pytest.mark.parametrize("case", ["stale", "future", "wrong secret", "unsigned"])
def test_bad_or_stale_signatures_get_401_and_nothing_is_stored(slack_client: TestClient, case: str) -> None:
    services = services_of(slack_client)
    before = services.conversations.count_messages()
    body = dm("U4", "D4", "let me in")
    if case == "unsigned":
        response = slack_client.post("/slack/events", content=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    else:
        shift = {"stale": -301, "future": 301, "wrong secret": 0}[case]
        response = post_event(slack_client, body, timestamp=int(time.time()) + shift,
                              secret="not-the-secret" if case == "wrong secret" else SIGNING_SECRET)
    assert response.status_code == 401
    assert services.conversations.count_messages() == before
    assert conversation_of(slack_client, "U4") is None


def test_the_bots_own_and_other_non_customer_messages_are_ignored(slack_client: TestClient,
                                                                  fake_slack: FakeSlack) -> None:
    services = services_of(slack_client)
    before = services.conversations.count_messages()
    ignored = [
        dm(BOT_USER_ID, "D5", "echo of our own reply"),  # only Bolt's self-event filter (needs xoxb-) drops it
        dm(BOT_USER_ID, "D5", "our own post", bot_id=BOT_ID),
        dm("U5", "D5", "posted by an integration", bot_id="B0OTHER"),
        dm("U5", "D5", "edited", subtype="message_changed"),
        dm("U5", "C5", "in a public channel", channel_type="channel"),
        {**dm("U5", "D5", "x"), "event": {"type": "app_home_opened", "user": "U5", "channel": "D5"}},
    ]
    for body in ignored:
        assert post_event(slack_client, body).status_code == 200
    post_event(slack_client, dm("U5b", "D5b", "hello"))  # handled after the ignored ones
    fake_slack.wait_posted("D5b")
    assert conversation_of(slack_client, BOT_USER_ID) is None and conversation_of(slack_client, "U5") is None
    assert not fake_slack.posted("D5") and not fake_slack.posted("C5")
    assert services.conversations.count_messages() - before == len(transcript(slack_client, "U5b"))


def test_an_over_long_message_is_shortened_with_a_note(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    post_event(slack_client, dm("U6", "D6", "my playback keeps stopping " + "x" * 1000))
    fake_slack.wait_posted("D6")
    stored = transcript(slack_client, "U6")[0].text
    assert len(stored) == MAX_CHARS and stored.startswith("my playback keeps stopping")
    assert stored.endswith("(shortened: the message had 1027 characters; the limit is 300)")


def test_slack_escaping_is_undone_inbound_and_applied_outbound(slack_client: TestClient,
                                                               fake_slack: FakeSlack) -> None:
    post_event(slack_client, dm("U7", "D7", "is 5 &lt; 6 &amp; 7 &gt; 2?"))
    (post,) = fake_slack.wait_posted("D7")
    assert transcript(slack_client, "U7")[0].text == "is 5 < 6 & 7 > 2?"
    assert "<" not in post.params["text"].replace("<http", "")


def test_a_refused_post_stays_failed_and_is_retried_with_backoff_until_delivered(
        slack_client: TestClient, fake_slack: FakeSlack) -> None:
    fake_slack.log.fail_next("chat.postMessage", 1, status=200, reason="channel_not_found")
    assert post_event(slack_client, dm("U8", "D8", "hello")).status_code == 200  # acked whatever happens next
    reply = wait_until(lambda: next((m for m in transcript(slack_client, "U8")
                                     if m.sender == Sender.BOT and m.delivery_status == "failed"), None),
                       what="the failed delivery")
    assert reply.delivery_error == "Slack refused the message: channel_not_found"
    assert reply.delivery_attempts == 1 and not fake_slack.posted("D8")
    now = datetime.now(UTC)
    assert run_delivery(slack_client, now + timedelta(seconds=10)) == (0, 0)  # back-off: not due yet
    assert run_delivery(slack_client, now + timedelta(seconds=400)) == (1, 0)
    (post,) = fake_slack.posted("D8")
    assert post.params["text"] == reply.text
    delivered = services_of(slack_client).conversations.get_message(reply.id)
    assert (delivered.delivery_status, delivered.delivery_error) == ("delivered", None)


def test_startup_fails_closed_when_slack_rejects_the_token(tmp_path: Any, fake_slack: FakeSlack) -> None:
    settings = channel_app_settings(tmp_path, slack=slack_settings(fake_slack, bot_token="xoxb-revoked"))
    with pytest.raises(ConfigurationError, match="Slack rejected the bot token") as failure, \
            TestClient(create_app(settings, encoder=HashEncoder(384))):
        pass
    assert "xoxb-revoked" not in str(failure.value)
