"""Server-sent event streams: the agents' live queue and a customer's live conversation.

Both tail the event log in commit order (``storage.tail``), so a client connected to any server process gets
every event, in order, whichever process wrote it, and resumes where it was after a reconnect (``Last-Event-ID``).
Writers in this process wake the stream at once; other processes' writes wake it through the change feed
(PostgreSQL NOTIFY, or its poll on SQLite), with a poll here as the safety net. Clients send their token in the
Authorization header (the pages read the stream with fetch), so tokens never appear in URLs or access logs; a
staff stream re-checks its token whenever staff accounts change anywhere, so a disabled account or a logged-out
session stops receiving at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from api.deps import AgentDep, CustomerConversationDep, ServicesDep, TokenDep
from api.schemas import MessageOut
from domain.enums import EventKind, Topic
from domain.errors import AuthenticationError
from domain.models import Event
from storage.tail import Position
from wiring import Services

router = APIRouter(tags=["live updates"])
POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
PRESENCE_EVERY = timedelta(seconds=30)
RECHECK_EVERY_SECONDS = 30.0  # a staff token is also re-checked this often (it may simply expire)
# A wake-up whose event is not readable yet (an older transaction is still open on PostgreSQL): look again soon.
SETTLE_SECONDS = (0.05, 0.1, 0.2, 0.4)
CUSTOMER_KINDS = (EventKind.MESSAGE_CREATED, EventKind.CONVERSATION_STATUS, EventKind.MESSAGE_DELIVERED)


def _start(last_event_id: str | None, services: Services) -> Position:
    position = Position.parse(last_event_id)
    return services.events.resolve(position) if position is not None else services.events.newest()


async def _tail(request: Request, services: Services, position: Position,
                fetch: Callable[[Position], list[Event]], render: Callable[[Event], dict[str, Any] | None],
                on_tick: Callable[[], None] | None = None) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    quiet = 0.0
    settle = 0
    while not await request.is_disconnected():
        if on_tick is not None:
            try:
                await anyio.to_thread.run_sync(on_tick)
            except AuthenticationError as e:
                yield f"event: auth\ndata: {json.dumps({'error': str(e)})}\n\n"
                return
        events = await anyio.to_thread.run_sync(fetch, position)
        for event in events:
            position = Position(event.tx, event.id)
            data = await anyio.to_thread.run_sync(render, event)
            if data is not None:
                yield f"id: {event.position}\nevent: {event.kind}\ndata: {json.dumps(data, default=str)}\n\n"
        if events:
            quiet, settle = 0.0, 0
            continue
        if 0 < settle <= len(SETTLE_SECONDS):
            await anyio.sleep(SETTLE_SECONDS[settle - 1])
            settle += 1
            continue
        settle = 0
        if await services.notifier.wait(POLL_SECONDS):
            settle = 1
        else:
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keepalive\n\n"


class _SessionWatch:
    """Re-checks a staff stream's session when staff accounts changed anywhere, and every half minute."""

    def __init__(self, services: Services, token: str | None) -> None:
        self.services = services
        self.token = token
        self.generation = services.feed.generation(Topic.STAFF)
        self.checked = time.monotonic()
        self.seen = datetime.min.replace(tzinfo=UTC)  # last presence update

    def check(self) -> None:
        """Raises AuthenticationError when the session ended or may no longer read the desk."""
        generation = self.services.feed.generation(Topic.STAFF)
        if generation == self.generation and time.monotonic() - self.checked < RECHECK_EVERY_SECONDS:
            return
        self.generation, self.checked = generation, time.monotonic()
        user = self.services.auth.user(self.token)
        if not user.roles & {"agent", "supervisor", "admin"}:
            raise AuthenticationError("this account may no longer use the agent desk")


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/api/desk/stream")
async def desk_stream(request: Request, services: ServicesDep, agent: AgentDep, token: TokenDep,
                      last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Every change to the handoffs the agent can see (supervisors: all teams); keeps the agent 'on duty'.

    Ends with an ``auth`` event when the agent's session ends (logout, disabled account, expiry).
    """
    teams = frozenset() if agent.roles & {"supervisor", "admin"} else agent.teams
    watch = _SessionWatch(services, token)

    def tick() -> None:
        watch.check()  # AuthenticationError ends the stream
        now = datetime.now(UTC)
        if now - watch.seen >= PRESENCE_EVERY:
            watch.seen = now
            services.desk.seen(agent, now)

    def fetch(after: Position) -> list[Event]:
        return services.events.after(after, teams=teams)

    def render(event: Event) -> dict[str, Any]:
        return {"kind": event.kind, "handoff_id": event.handoff_id, "conversation_id": event.conversation_id,
                "team": event.team, "actor": event.actor, "payload": event.payload, "at": event.created_at}

    start = await anyio.to_thread.run_sync(_start, last_event_id, services)
    return _sse(_tail(request, services, start, fetch, render, tick))


@router.get("/api/conversations/{conversation_id}/stream")
async def conversation_stream(request: Request, services: ServicesDep, conversation: CustomerConversationDep,
                              last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """New messages (agent replies) and status changes of one conversation, for its customer only."""

    def fetch(after: Position) -> list[Event]:
        return services.events.after(after, conversation_id=conversation.id, kinds=CUSTOMER_KINDS)

    def render(event: Event) -> dict[str, Any] | None:
        if event.kind == EventKind.CONVERSATION_STATUS:
            return {"status": event.payload.get("status")}
        if event.kind == EventKind.MESSAGE_CREATED:
            message = services.conversations.get_message(int(event.payload["message_id"]))
            return MessageOut.of(message).model_dump(mode="json")
        return None

    start = await anyio.to_thread.run_sync(_start, last_event_id, services)
    return _sse(_tail(request, services, start, fetch, render))
