"""Server-sent event streams: the agents' live queue and a customer's live conversation.

Both tail the event log by id: in-process changes wake the stream at once (ChangeNotifier), changes made
by another process arrive at the next poll. Clients send their token in the Authorization header (the
pages read the stream with fetch), so tokens never appear in URLs or access logs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from api.deps import AgentDep, CustomerConversationDep, ServicesDep
from api.schemas import MessageOut
from domain.models import Event
from wiring import Services

router = APIRouter(tags=["live updates"])
POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
PRESENCE_EVERY = timedelta(seconds=30)
CUSTOMER_KINDS = ("message.created", "conversation.status", "message.delivered")


def _start(last_event_id: str | None, services: Services) -> int:
    if last_event_id and last_event_id.isdigit():
        return int(last_event_id)
    return services.events.last_id()


async def _tail(request: Request, services: Services, last_id: int,
                fetch: Callable[[int], list[Event]], render: Callable[[Event], dict[str, Any] | None],
                on_tick: Callable[[], None] | None = None) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    quiet = 0.0
    while not await request.is_disconnected():
        if on_tick is not None:
            await anyio.to_thread.run_sync(on_tick)
        events = await anyio.to_thread.run_sync(fetch, last_id)
        for event in events:
            last_id = event.id
            data = await anyio.to_thread.run_sync(render, event)
            if data is not None:
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data, default=str)}\n\n"
        if events:
            quiet = 0.0
            continue
        if not await services.notifier.wait(POLL_SECONDS):
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keepalive\n\n"


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/api/desk/stream")
async def desk_stream(request: Request, services: ServicesDep, agent: AgentDep,
                      last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Every change to the handoffs the agent can see (supervisors: all teams); keeps the agent 'on duty'."""
    teams = frozenset() if agent.roles & {"supervisor", "admin"} else agent.teams
    seen = {"at": datetime.min.replace(tzinfo=UTC)}

    def presence() -> None:
        now = datetime.now(UTC)
        if now - seen["at"] >= PRESENCE_EVERY:
            seen["at"] = now
            services.desk.seen(agent, now)

    def fetch(after: int) -> list[Event]:
        return services.events.after(after, teams=teams)

    def render(event: Event) -> dict[str, Any]:
        return {"kind": event.kind, "handoff_id": event.handoff_id, "conversation_id": event.conversation_id,
                "team": event.team, "actor": event.actor, "payload": event.payload, "at": event.created_at}

    start = _start(last_event_id, services)
    return _sse(_tail(request, services, start, fetch, render, presence))


@router.get("/api/conversations/{conversation_id}/stream")
async def conversation_stream(request: Request, services: ServicesDep, conversation: CustomerConversationDep,
                              last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """New messages (agent replies) and status changes of one conversation, for its customer only."""

    def fetch(after: int) -> list[Event]:
        return services.events.after(after, conversation_id=conversation.id, kinds=CUSTOMER_KINDS)

    def render(event: Event) -> dict[str, Any] | None:
        if event.kind == "conversation.status":
            return {"status": event.payload.get("status")}
        if event.kind == "message.created":
            message = services.conversations.get_message(int(event.payload["message_id"]))
            return MessageOut.of(message).model_dump(mode="json")
        return None

    start = _start(last_event_id, services)
    return _sse(_tail(request, services, start, fetch, render))
