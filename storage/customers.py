"""Customers across channels: profiles, search, staff edits and merging two profiles into one."""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from domain.enums import EventKind
from domain.errors import NotFoundError, ValidationError
from domain.models import CustomerIdentity, CustomerProfile, EarlierConversation
from storage.db import Database, rowcount
from storage.events import append_event
from storage.tables import ConversationRow, CustomerIdentityRow, CustomerRow, HandoffRow

EARLIER_LIMIT = 10
SEARCH_LIMIT = 20


def build_profile(s: Session, customer: CustomerRow, exclude_conversation: str | None = None) -> CustomerProfile:
    """The profile of one customer: identities on each channel and their latest conversations.

    Args:
        s: an open session.
        customer: the customer row.
        exclude_conversation: leave this conversation out of ``earlier_conversations`` (the current one).
    """
    identities = s.scalars(select(CustomerIdentityRow).where(
        CustomerIdentityRow.customer_id == customer.id).order_by(CustomerIdentityRow.id)).all()
    query = select(ConversationRow).where(ConversationRow.customer_id == customer.id)
    if exclude_conversation is not None:
        query = query.where(ConversationRow.id != exclude_conversation)
    earlier = s.scalars(query.order_by(ConversationRow.created_at.desc()).limit(EARLIER_LIMIT)).all()
    outcomes = _outcomes(s, [c.id for c in earlier])
    return CustomerProfile(
        customer_id=customer.id, display_name=customer.display_name, email=customer.email, tier=customer.tier,
        identities=tuple(CustomerIdentity(i.channel, i.external_id) for i in identities),
        earlier_conversations=tuple(
            EarlierConversation(c.id, c.channel, c.status, c.created_at.isoformat(),
                                outcomes.get(c.id, "answered by the bot"))
            for c in earlier
        ),
    )


def _outcomes(s: Session, conversation_ids: list[str]) -> dict[str, str]:
    """How each conversation ended, from its latest handoff (none: the bot handled it)."""
    if not conversation_ids:
        return {}
    rows = s.execute(select(HandoffRow.conversation_id, HandoffRow.state, HandoffRow.reason)
                     .where(HandoffRow.conversation_id.in_(conversation_ids)).order_by(HandoffRow.id)).all()
    return {cid: f"handed off ({reason}), {state}" for cid, state, reason in rows}


class CustomerDirectory:
    """Staff-facing access to customers: find, read, edit, merge."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def profile(self, customer_id: int) -> CustomerProfile:
        """One customer's profile; raises NotFoundError."""
        with self.db.read() as s:
            return build_profile(s, self._get(s, customer_id))

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[CustomerProfile]:
        """Customers whose name, email or channel id contains ``query`` (case-insensitive), newest first."""
        needle = query.strip().lower()
        if len(needle) < 2:
            raise ValidationError("search needs at least two characters")
        pattern = f"%{_escape_like(needle)}%"
        with self.db.read() as s:
            by_identity = select(CustomerIdentityRow.customer_id).where(
                func.lower(CustomerIdentityRow.external_id).like(pattern, escape="\\"))
            rows = s.scalars(
                select(CustomerRow).where(or_(
                    func.lower(CustomerRow.display_name).like(pattern, escape="\\"),
                    func.lower(CustomerRow.email).like(pattern, escape="\\"),
                    CustomerRow.id.in_(by_identity),
                )).order_by(CustomerRow.id.desc()).limit(limit)
            ).all()
            return [build_profile(s, row) for row in rows]

    def update(self, customer_id: int, *, display_name: str | None = None, email: str | None = None,
               tier: str | None = None) -> CustomerProfile:
        """Set the given fields (None leaves a field as it is); raises NotFoundError."""
        with self.db.session() as s:
            row = self._get(s, customer_id)
            if display_name is not None:
                row.display_name = display_name
            if email is not None:
                row.email = email
            if tier is not None:
                row.tier = tier
            s.flush()
            return build_profile(s, row)

    def merge(self, into_id: int, from_id: int, actor: str) -> CustomerProfile:
        """Make ``from_id`` part of ``into_id``: identities and conversations move, then ``from_id`` is removed.

        Fields ``into_id`` lacks (name, email) are taken from ``from_id``; the higher of two tiers is not
        guessed: ``into_id`` keeps its tier unless it is the default. One transaction, with an event.

        Raises:
            ValidationError: both ids are the same customer.
            NotFoundError: either customer does not exist.
        """
        if into_id == from_id:
            raise ValidationError("a customer cannot be merged into itself")
        with self.db.session() as s:
            into, other = self._get(s, into_id), self._get(s, from_id)
            into.display_name = into.display_name or other.display_name
            into.email = into.email or other.email
            if into.tier == "standard" and other.tier != "standard":
                into.tier = other.tier
            s.execute(update(CustomerIdentityRow).where(CustomerIdentityRow.customer_id == from_id)
                      .values(customer_id=into_id))
            moved = rowcount(s.execute(update(ConversationRow).where(ConversationRow.customer_id == from_id)
                                       .values(customer_id=into_id)))
            s.flush()
            s.delete(other)
            append_event(s, EventKind.CUSTOMER_MERGED, actor=actor,
                         payload={"into": into_id, "from": from_id, "conversations": moved})
            s.flush()
            return build_profile(s, into)

    @staticmethod
    def _get(s: Session, customer_id: int) -> CustomerRow:
        row = s.get(CustomerRow, customer_id)
        if row is None:
            raise NotFoundError(f"customer {customer_id} does not exist")
        return row


def _escape_like(text: str) -> str:
    """Escape LIKE wildcards so a search for ``50%`` means the characters."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
