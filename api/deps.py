"""FastAPI dependencies: the services container and the staff / customer credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import Depends, Header, Request

from api.auth import customer_token_matches
from domain.enums import Role
from domain.errors import AuthenticationError, PermissionDeniedError
from domain.models import Conversation, StaffUser
from wiring import Services


async def get_services(request: Request) -> Services:
    """The services built at startup (async: no I/O, so FastAPI need not hop to a worker thread for it)."""
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise RuntimeError("services are not initialised (lifespan did not run)")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (async for the same reason)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


TokenDep = Annotated[str | None, Depends(bearer_token)]


def current_staff(services: ServicesDep, token: TokenDep) -> StaffUser:
    """The logged-in staff user; 401 otherwise."""
    return services.auth.user(token)


StaffDep = Annotated[StaffUser, Depends(current_staff)]


def require_roles(*roles: Role) -> Callable[[StaffUser], StaffUser]:
    """A dependency that admits staff holding one of ``roles`` (admins always)."""
    allowed = {r.value for r in roles} | {Role.ADMIN.value}

    def check(user: StaffDep) -> StaffUser:
        if not user.roles & allowed:
            raise PermissionDeniedError(f"this needs one of the roles: {', '.join(sorted(allowed))}")
        return user

    return check


AgentDep = Annotated[StaffUser, Depends(require_roles(Role.AGENT, Role.SUPERVISOR))]
EditorDep = Annotated[StaffUser, Depends(require_roles(Role.EDITOR))]
AdminDep = Annotated[StaffUser, Depends(require_roles(Role.ADMIN))]


def customer_conversation(conversation_id: str, services: ServicesDep, token: TokenDep) -> Conversation:
    """The conversation, if the caller holds its customer token: 404 unknown, 401 missing, 403 wrong."""
    conversation = services.conversations.get_conversation(conversation_id)
    _check_customer_token(services, conversation, token)
    return conversation


CustomerConversationDep = Annotated[Conversation, Depends(customer_conversation)]


async def customer_access(conversation_id: str, services: ServicesDep, token: TokenDep) -> str:
    """The conversation id, if the caller holds its customer token, without reading the conversation when the
    token is a signed one (the hot path of every customer message); errors as :func:`customer_conversation`."""
    if token is not None and services.customer_tokens.signed(conversation_id, token):
        return conversation_id
    conversation = await anyio.to_thread.run_sync(services.conversations.get_conversation, conversation_id)
    _check_customer_token(services, conversation, token)
    return conversation.id


CustomerAccessDep = Annotated[str, Depends(customer_access)]


def _check_customer_token(services: Services, conversation: Conversation, token: str | None) -> None:
    if token is None:
        raise AuthenticationError("this conversation needs its customer token (Authorization: Bearer ct_...)")
    if not (services.customer_tokens.signed(conversation.id, token)
            or customer_token_matches(token, conversation.token_hash)):
        raise PermissionDeniedError("this token does not belong to this conversation")
