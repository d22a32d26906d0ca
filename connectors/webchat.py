"""The web / in-app chat channel: the customer JSON API behind the chat page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.auth import verify_identity
from api.deps import CustomerAccessDep, CustomerConversationDep, ServicesDep
from api.schemas import (
    ConversationCreate,
    ConversationCreated,
    ConversationOut,
    CsatIn,
    FeedbackIn,
    FeedbackOut,
    MessageIn,
    MessageOut,
    TurnOut,
)
from bot.inbound import clean_text
from domain.enums import Channel, DecisionKind
from domain.errors import ValidationError
from domain.models import CustomerIdentity, InboundMessage

router = APIRouter(prefix="/api/conversations", tags=["customer chat"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConversationCreated)
def create_conversation(services: ServicesDep, body: ConversationCreate | None = None) -> ConversationCreated:
    """Start a conversation. The returned ``customer_token`` is the only key to it."""
    body = body or ConversationCreate()
    name = body.name.strip() if body.name and body.name.strip() else None
    email = body.email.strip() if body.email and body.email.strip() else None
    identity = None
    if body.user_id is not None:
        secret = services.settings.chat.identity_secret
        verify_identity(secret.get_secret_value() if secret else None, body.user_id, body.tier, body.user_hash)
        identity = CustomerIdentity(Channel.WEB.value, body.user_id)
    elif body.tier is not None:
        raise ValidationError("tier is only accepted with a signed user_id")
    conversation_id = str(uuid.uuid4())
    token, digest = services.customer_tokens.issue(conversation_id)
    conversation = services.conversations.create_conversation(Channel.WEB, digest, name, email, identity,
                                                              conversation_id=conversation_id)
    if identity is not None:  # the host app vouches for these: keep the returning customer's profile current
        services.customers.update(conversation.customer_id, display_name=name, email=email, tier=body.tier)
    return ConversationCreated(conversation_id=conversation.id, customer_token=token, status=conversation.status)


@router.get("/{conversation_id}", response_model=ConversationOut)
def read_conversation(conversation: CustomerConversationDep, services: ServicesDep) -> ConversationOut:
    """The conversation and its transcript (only with its customer token)."""
    messages = services.conversations.transcript(conversation.id)
    return ConversationOut(id=conversation.id, status=conversation.status, channel=conversation.channel.value,
                           created_at=conversation.created_at, messages=[MessageOut.of(m) for m in messages])


@router.get("/{conversation_id}/messages", response_model=list[MessageOut])
def list_messages(conversation: CustomerConversationDep, services: ServicesDep,
                  after: Annotated[int, Query(ge=0, description="only messages with a larger id")] = 0,
                  ) -> list[MessageOut]:
    """Messages after a given id, for polling (agent replies arrive this way)."""
    return [MessageOut.of(m) for m in services.conversations.transcript(conversation.id, after_id=after)]


@router.post("/{conversation_id}/messages", response_model=TurnOut)
def post_message(conversation: CustomerAccessDep, services: ServicesDep, body: MessageIn) -> TurnOut:
    """Send a customer message and get the bot's replies (or a handoff acknowledgement)."""
    text = clean_text(body.text, services.settings.chat.max_message_chars)
    key = None
    if body.client_message_id:
        if not body.client_message_id.strip():
            raise ValidationError("client_message_id must not be blank")
        key = f"web:{conversation}:{body.client_message_id.strip()}"
    result = services.pipeline.handle(InboundMessage(conversation, text, Channel.WEB, key))
    if result.handoff_id is not None or result.decision == DecisionKind.WAIT_FOR_AGENT:
        services.notifier.notify()  # agents watch the queue and the conversations they own live
    inbound = result.message or services.conversations.get_message(result.message_id)
    status_now = result.conversation_status or services.conversations.get_conversation(conversation).status
    return TurnOut(
        message=MessageOut.of(inbound), replies=[MessageOut.of(r) for r in result.replies],
        decision=result.decision.value, handed_off=result.handoff_id is not None,
        conversation_status=status_now, duplicate=result.duplicate,
    )


@router.post("/{conversation_id}/messages/{message_id}/feedback", response_model=FeedbackOut)
def give_feedback(conversation: CustomerConversationDep, services: ServicesDep, message_id: int,
                  body: FeedbackIn) -> FeedbackOut:
    """Mark a bot answer helpful or unhelpful; after an unhelpful one the bot follows up or hands off."""
    rated, replies = services.pipeline.feedback(conversation.id, message_id, body.helpful)
    if replies:
        services.notifier.notify()
    status_now = services.conversations.get_conversation(conversation.id).status
    return FeedbackOut(message=MessageOut.of(rated), replies=[MessageOut.of(r) for r in replies],
                       conversation_status=status_now)


@router.post("/{conversation_id}/csat", status_code=status.HTTP_204_NO_CONTENT)
def rate(conversation: CustomerConversationDep, services: ServicesDep, body: CsatIn) -> None:
    """Rate the help after an agent resolved the conversation (1 to 5); 409 if there is nothing to rate."""
    services.desk_store.record_csat(conversation.id, body.score, body.comment.strip() if body.comment else None)
    services.notifier.notify()
