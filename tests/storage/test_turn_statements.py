"""SQL per customer turn, through the real route, on SQLite and PostgreSQL: a guard against regressions.

The numbers are the ones docs/performance.md reports; a change that needs more should say why there.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from api.deps import customer_access
from api.schemas import MessageIn, MessageOut, TurnOut
from connectors.webchat import post_message
from domain.enums import Channel
from knowledge_index.encoder import HashEncoder
from tests.conftest import make_settings
from wiring import build_services

pytestmark = pytest.mark.integration

# A turn without a handoff: the customer token is a signature (no statement); the inbound message with the
# turn's context in one transaction (3: conversation with tier and repeat contacts, insert, transcript); the
# turn's outputs in another (4: claim, prediction, conversation RETURNING channel, reply).
TURN_STATEMENTS = 7
TURN_TRANSACTIONS = 2
# A handoff also reads the intent history, the customer profile and the queue for the wait estimate, and
# writes the handoff and its two events.
HANDOFF_STATEMENTS = 20


class SqlCounter:
    """Counts statements (BEGIN excluded: PostgreSQL's driver sends it implicitly) and transactions."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        self.transactions = 0
        self._lock = threading.Lock()
        self._on = False
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", self._begin)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self._on and not statement.lstrip().upper().startswith("BEGIN"):
            with self._lock:
                self.statements.append(statement.split(None, 3)[0] + " " + statement[:60])

    def _begin(self, conn: Any) -> None:
        if self._on:
            with self._lock:
                self.transactions += 1

    @contextmanager
    def counting(self) -> Iterator[SqlCounter]:
        self.statements, self.transactions, self._on = [], 0, True
        try:
            yield self
        finally:
            self._on = False


def test_a_turn_issues_a_bounded_number_of_statements(db_url: str, tmp_path: Path) -> None:
    # The services without the app's background workers (delivery, SLA monitor), which share the engine;
    # the customer route is called as FastAPI calls it: the token check, then the handler.
    services = build_services(make_settings(tmp_path, database_url=db_url), encoder=HashEncoder(384))
    try:
        counter = SqlCounter(services.db.engine)
        conversation_id = str(uuid.uuid4())
        token, digest = services.customer_tokens.issue(conversation_id)
        services.conversations.create_conversation(Channel.WEB, digest, conversation_id=conversation_id)

        def say(text: str) -> TurnOut:
            conversation = asyncio.run(customer_access(conversation_id, services, token))
            return post_message(conversation, services, MessageIn(text=text, client_message_id=text))

        say("hello")  # warm-up
        for text in ("How do I cancel Premium?", "my download keeps failing on the app"):
            with counter.counting():
                turn = say(text)
            assert turn.decision != "handoff" and turn.message.text == text
            assert len(counter.statements) <= TURN_STATEMENTS, counter.statements
            assert counter.transactions <= TURN_TRANSACTIONS

        with counter.counting():
            turn = say("let me talk to a human")
        assert turn.decision == "handoff" and turn.conversation_status == "human"
        assert len(counter.statements) <= HANDOFF_STATEMENTS, counter.statements

        # The message in the response is the stored one, as a later read returns it.
        (stored,) = [m for m in services.conversations.transcript(conversation_id) if m.id == turn.message.id]
        assert MessageOut.of(stored) == turn.message
    finally:
        services.close()
