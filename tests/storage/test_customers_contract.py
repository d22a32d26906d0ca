"""Customers across channels on SQLite and PostgreSQL: profiles, search, edits and merging."""

from __future__ import annotations

import pytest

from domain.enums import Channel
from domain.errors import NotFoundError, ValidationError
from domain.models import CustomerIdentity
from storage.conversations import ConversationRepository
from storage.customers import CustomerDirectory
from storage.db import Database
from storage.events import EventLog
from storage.tail import Position

pytestmark = pytest.mark.integration


def test_merge_moves_identities_and_conversations_and_keeps_what_is_known(db: Database) -> None:
    conversations = ConversationRepository(db)
    directory = CustomerDirectory(db)
    slack = conversations.create_conversation(Channel.SLACK, "h1", "kim", identity=CustomerIdentity("slack", "U1"),
                                              external_ref="D1")
    telegram = conversations.create_conversation(Channel.TELEGRAM, "h2", "Kim Park", "kim@example.com",
                                                 identity=CustomerIdentity("telegram", "42"), external_ref="42")
    directory.update(telegram.customer_id, tier="premium")

    merged = directory.merge(slack.customer_id, telegram.customer_id, "ann")

    assert merged.customer_id == slack.customer_id
    assert (merged.display_name, merged.email, merged.tier) == ("kim", "kim@example.com", "premium")
    assert [(i.channel, i.external_id) for i in merged.identities] == [("slack", "U1"), ("telegram", "42")]
    assert {c.conversation_id for c in merged.earlier_conversations} == {slack.id, telegram.id}
    with pytest.raises(NotFoundError):
        directory.profile(telegram.customer_id)
    # The Telegram identity now finds the merged customer; the current conversation is left out of "earlier".
    again = conversations.create_conversation(Channel.TELEGRAM, "h3", identity=CustomerIdentity("telegram", "42"))
    assert again.customer_id == slack.customer_id
    profile = conversations.customer_profile(again.id)
    assert {c.conversation_id for c in profile.earlier_conversations} == {slack.id, telegram.id}
    assert conversations.get_conversation(telegram.id).customer_tier == "premium"
    (event,) = [e for e in EventLog(db).after(Position()) if e.kind == "customer.merged"]
    assert (event.actor, event.payload) == ("ann", {"into": slack.customer_id, "from": telegram.customer_id,
                                                    "conversations": 1})


def test_merge_refuses_itself_and_unknown_customers(db: Database) -> None:
    conversations = ConversationRepository(db)
    directory = CustomerDirectory(db)
    one = conversations.create_conversation(Channel.WEB, "h1", "Lee")
    with pytest.raises(ValidationError):
        directory.merge(one.customer_id, one.customer_id, "ann")
    with pytest.raises(NotFoundError):
        directory.merge(one.customer_id, 987654, "ann")
    assert directory.profile(one.customer_id).display_name == "Lee"  # nothing changed


def test_search_by_name_email_and_channel_id_with_wildcards_taken_literally(db: Database) -> None:
    conversations = ConversationRepository(db)
    directory = CustomerDirectory(db)
    rosa = conversations.create_conversation(Channel.WEB, "h1", "Rosa Diaz", "rosa@example.com")
    slack = conversations.create_conversation(Channel.SLACK, "h2", identity=CustomerIdentity("slack", "U_ROSA_7"))
    conversations.create_conversation(Channel.WEB, "h3", "Sam 100% Real")

    assert [p.customer_id for p in directory.search("rosa")] == [slack.customer_id, rosa.customer_id]
    assert [p.customer_id for p in directory.search("ROSA@EX")] == [rosa.customer_id]
    assert [p.customer_id for p in directory.search("u_rosa")] == [slack.customer_id]
    assert [p.display_name for p in directory.search("100%")] == ["Sam 100% Real"]
    assert directory.search("0%_") == []
    with pytest.raises(ValidationError):
        directory.search(" x ")
