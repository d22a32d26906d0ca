"""The agent desk: what agents and supervisors may do with handoffs, and the rules around it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.enums import HandoffState, Urgency
from domain.errors import PermissionDeniedError, ValidationError
from domain.models import (
    CustomerProfile,
    Handoff,
    Note,
    SearchHit,
    StaffUser,
    StoredMessage,
)
from handoff.canned import render
from handoff.hours import is_open, next_opening
from handoff.notify import ChangeNotifier
from handoff.ports import ArticleLookup, CannedPort, ConversationReader, DeskStorePort, HandoffReader, KnownIntents
from handoff.routing import TeamsConfig, can_take
from handoff.sla import SlaStatus, SlaTarget, due_times, sla_status
from handoff.waiting import WaitInfo, expected_wait, local_opening

CSAT_PROMPT = ("Your conversation with our team is resolved. How would you rate the help you got, from 1 (poor) "
               "to 5 (excellent)? Just reply with a number. If you have another question, ask me any time.")
MAX_REPLY_CHARS = 4000


@dataclass(frozen=True)
class QueueItem:
    """A handoff as the queue shows it."""

    handoff: Handoff
    sla: SlaStatus
    waiting_seconds: float
    can_take: bool
    why_not: str


@dataclass(frozen=True)
class HandoffDetail:
    """Everything the console shows for one handoff."""

    item: QueueItem
    transcript: list[StoredMessage]
    notes: list[Note]
    suggestions: list[SearchHit]
    customer: CustomerProfile | None
    csat: int | None


class AgentDesk:
    """Agent actions with permissions; storage guards the state transitions themselves."""

    def __init__(self, store: DeskStorePort, handoffs: HandoffReader, conversations: ConversationReader,
                 canned: CannedPort, articles: ArticleLookup, teams: TeamsConfig,
                 sla: Mapping[Urgency, SlaTarget], notifier: ChangeNotifier, article_url_template: str,
                 intents: KnownIntents, csat_prompt: bool = True, default_wait_minutes: float = 10.0,
                 wait_history_days: float = 7.0, presence_seconds: float = 120.0) -> None:
        self.store = store
        self.handoffs = handoffs
        self.conversations = conversations
        self.canned = canned
        self.articles = articles
        self.teams = teams
        self.sla = dict(sla)
        self.notifier = notifier
        self.article_url_template = article_url_template
        self.intents = intents
        self.csat_prompt = csat_prompt
        self.default_wait_minutes = default_wait_minutes
        self.wait_history = timedelta(days=wait_history_days)
        self.presence = timedelta(seconds=presence_seconds)

    # --- reading -------------------------------------------------------------------------------

    def queue(self, agent: StaffUser, *, states: tuple[HandoffState, ...] = (HandoffState.OPEN,
              HandoffState.CLAIMED), team: str | None = None, mine: bool = False,
              urgency: str | None = None, now: datetime | None = None) -> list[QueueItem]:
        """The queue, most urgent first, then longest waiting; agents see their teams only."""
        now = now or datetime.now(UTC)
        teams = frozenset() if _is_supervisor(agent) else agent.teams
        found = self.handoffs.queue(states, team=team, teams=teams, claimed_by=agent.username if mine else None,
                                    urgency=urgency)
        return [self._item(agent, h, now) for h in found]

    def detail(self, agent: StaffUser, handoff_id: int, now: datetime | None = None) -> HandoffDetail:
        """One handoff with the live transcript, notes, suggested articles and the CSAT score."""
        handoff = self._visible(agent, handoff_id)
        transcript = self.conversations.transcript(handoff.conversation_id)
        return HandoffDetail(
            item=self._item(agent, handoff, now or datetime.now(UTC)),
            transcript=transcript,
            notes=self.store.notes(handoff_id),
            suggestions=self.suggestions(handoff, transcript),
            customer=self.conversations.customer_profile(handoff.conversation_id),
            csat=self.store.csat_for(handoff_id),
        )

    def suggestions(self, handoff: Handoff, transcript: list[StoredMessage], k: int = 3) -> list[SearchHit]:
        """Articles for the open case: searched with the summary and the customer's latest message."""
        said = [m.text for m in transcript if m.sender.value == "customer"]
        query = " ".join(filter(None, [handoff.summary, said[-1] if said else ""]))[:1000]
        return self.articles.search_text(query, k) if query.strip() else []

    # --- actions -------------------------------------------------------------------------------

    def claim(self, agent: StaffUser, handoff_id: int) -> Handoff:
        """Take a handoff (409 when someone else was faster)."""
        handoff = self._visible(agent, handoff_id)
        allowed, why = can_take(agent, handoff.team, handoff.tier, handoff.required_skills)
        if not allowed:
            raise PermissionDeniedError(why)
        claimed = self.store.claim(handoff_id, agent.username)
        self.notifier.notify()
        return claimed

    def reply(self, agent: StaffUser, handoff_id: int, text: str) -> StoredMessage:
        """Send a message to the customer on their channel (claims an open handoff)."""
        text = _clean(text, "reply")
        handoff = self._visible(agent, handoff_id)
        allowed, why = can_take(agent, handoff.team, handoff.tier, handoff.required_skills)
        if not allowed:
            raise PermissionDeniedError(why)
        channel = handoff.channel or "web"
        delivery = None if channel in ("web", "api") else "pending"
        message = self.store.reply(handoff_id, agent.username, agent.name, text, delivery,
                                   may_take_over=_is_supervisor(agent))
        self.notifier.notify()
        return message

    def note(self, agent: StaffUser, handoff_id: int, text: str) -> Note:
        """Add an internal note."""
        self._visible(agent, handoff_id)
        note = self.store.add_note(handoff_id, agent.username, _clean(text, "note"))
        self.notifier.notify()
        return note

    def transfer(self, agent: StaffUser, handoff_id: int, team: str | None, tier: int | None,
                 reason: str = "") -> Handoff:
        """Move to another team and/or tier; the whole context goes along."""
        handoff = self._owned_or_supervised(agent, handoff_id)
        target_team = team or handoff.team
        if target_team not in self.teams.teams:
            raise ValidationError(f"unknown team '{target_team}' (teams: {', '.join(sorted(self.teams.teams))})")
        target_tier = tier or handoff.tier
        max_tier = self.teams.teams[target_team].tiers
        if not 1 <= target_tier <= max_tier:
            raise ValidationError(f"the {target_team} team has tiers 1 to {max_tier}")
        if (target_team, target_tier) == (handoff.team, handoff.tier):
            raise ValidationError("the handoff is already with that team and tier")
        moved = self.store.transfer(handoff_id, agent.username, target_team, target_tier, reason.strip()[:500])
        self.notifier.notify()
        return moved

    def escalate(self, agent: StaffUser, handoff_id: int, reason: str = "") -> Handoff:
        """One tier up in the same team."""
        handoff = self._visible(agent, handoff_id)
        return self.transfer(agent, handoff_id, handoff.team, handoff.tier + 1, reason)

    def set_intent(self, agent: StaffUser, handoff_id: int, intent: str) -> Handoff:
        """Record the intent the bot should have recognized (it lands in the trainers' inbox)."""
        self._visible(agent, handoff_id)
        if intent not in self.intents.intents:
            raise ValidationError(f"unknown intent '{intent}'")
        updated = self.store.correct_intent(handoff_id, intent, agent.username)
        self.notifier.notify()
        return updated

    def resolve(self, agent: StaffUser, handoff_id: int) -> tuple[Handoff, StoredMessage | None]:
        """Close the case: the bot takes the conversation back and asks for a CSAT score."""
        handoff = self._owned_or_supervised(agent, handoff_id)
        channel = handoff.channel or "web"
        delivery = None if channel in ("web", "api") else "pending"
        result = self.store.resolve(handoff_id, agent.username, CSAT_PROMPT if self.csat_prompt else None, delivery)
        self.notifier.notify()
        return result

    def reopen(self, agent: StaffUser, handoff_id: int, now: datetime | None = None) -> Handoff:
        """Back into the queue with a fresh SLA clock."""
        handoff = self._visible(agent, handoff_id)
        first_due, resolution_due = due_times(self.sla[handoff.urgency], now or datetime.now(UTC))
        reopened = self.store.reopen(handoff_id, agent.username, first_due, resolution_due)
        self.notifier.notify()
        return reopened

    def render_canned(self, agent: StaffUser, handoff_id: int, canned_id: int) -> str:
        """A canned response with this handoff's customer name, the agent's name and article links."""
        handoff = self._visible(agent, handoff_id)
        template = self.canned.get(canned_id)
        profile = self.conversations.customer_profile(handoff.conversation_id)

        def article(article_id: str) -> tuple[str, str] | None:
            found = self.articles.get_article(article_id)
            if found is None:
                return None
            return found.title, self.article_url_template.format(article_id=found.id)

        return render(template.body, profile.display_name, agent.name, article)

    # --- the customer's view of the queue -----------------------------------------------------

    def wait_info(self, team: str, urgency: Urgency, now: datetime | None = None,
                  handoff_id: int | None = None) -> WaitInfo:
        """Place in the queue and expected wait, or the team's hours when nobody is on duty."""
        now = now or datetime.now(UTC)
        hours = self.teams.team(team).hours
        position = self.store.queue_position(team, urgency.rank, handoff_id)
        if not is_open(hours, now):
            opening = local_opening(hours, next_opening(hours, now))
            return WaitInfo(position, None, False, hours.text if hours else None, opening)
        median_minutes = self.store.median_first_response_minutes(team, now - self.wait_history)
        on_duty = self.store.agents_on_duty(team, now - self.presence)
        minutes = expected_wait(position, median_minutes, on_duty, self.default_wait_minutes)
        return WaitInfo(position, minutes, True, hours.text if hours else None)

    def seen(self, agent: StaffUser, now: datetime | None = None) -> None:
        """Presence: the agent's console is open."""
        self.store.touch(agent.username, now or datetime.now(UTC))

    # --- helpers -------------------------------------------------------------------------------

    def _item(self, agent: StaffUser, handoff: Handoff, now: datetime) -> QueueItem:
        queued = handoff.queued_at or handoff.created_at
        status = sla_status(self.sla[handoff.urgency], queued, now, handoff.first_response_at, handoff.resolved_at)
        allowed, why = can_take(agent, handoff.team, handoff.tier, handoff.required_skills)
        end = handoff.first_response_at or handoff.resolved_at or now
        return QueueItem(handoff, status, max(0.0, (end - queued).total_seconds()), allowed, why)

    def _visible(self, agent: StaffUser, handoff_id: int) -> Handoff:
        handoff = self.handoffs.get(handoff_id)
        if not _is_supervisor(agent) and agent.teams and handoff.team not in agent.teams:
            raise PermissionDeniedError(f"this handoff belongs to the {handoff.team} team")
        return handoff

    def _owned_or_supervised(self, agent: StaffUser, handoff_id: int) -> Handoff:
        handoff = self._visible(agent, handoff_id)
        if _is_supervisor(agent) or handoff.claimed_by == agent.username:
            return handoff
        owner = f"it is claimed by {handoff.claimed_by}" if handoff.claimed_by else "claim it first"
        raise PermissionDeniedError(f"only the agent working this handoff or a supervisor can do that; {owner}")


def _is_supervisor(agent: StaffUser) -> bool:
    return bool(agent.roles & {"supervisor", "admin"})


def _clean(text: str, what: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise ValidationError(f"the {what} is empty")
    if len(cleaned) > MAX_REPLY_CHARS:
        raise ValidationError(f"the {what} has {len(cleaned)} characters; the limit is {MAX_REPLY_CHARS}")
    return cleaned
