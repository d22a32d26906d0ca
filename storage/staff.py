"""Staff users (agents, supervisors, editors, trainers, admins) and their session tokens."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from domain.enums import Topic
from domain.errors import ConflictError, NotFoundError
from domain.models import StaffUser
from storage.changes import publish
from storage.db import Database
from storage.tables import StaffTokenRow, StaffUserRow


class StaffRepository:
    """Users with password hashes and roles; tokens stored only as hashes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_user(self, username: str, password_hash: str, roles: Iterable[str],
                    display_name: str | None = None, teams: Iterable[str] = (), skills: Iterable[str] = (),
                    tier: int = 1) -> StaffUser:
        """Add a user; raises ConflictError when the username is taken."""
        try:
            with self.db.session() as s:
                row = StaffUserRow(username=username, password_hash=password_hash, roles=sorted(set(roles)),
                                   display_name=display_name, teams=sorted(set(teams)), skills=sorted(set(skills)),
                                   tier=tier)
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError as e:
            raise ConflictError(f"user {username!r} already exists") from e

    def update_user(self, username: str, *, roles: Iterable[str] | None = None, teams: Iterable[str] | None = None,
                    skills: Iterable[str] | None = None, tier: int | None = None, active: bool | None = None,
                    display_name: str | None = None) -> StaffUser:
        """Change roles, teams, skills, tier, display name or active flag; deactivating ends every session."""
        with self.db.session() as s:
            row = s.scalars(select(StaffUserRow).where(StaffUserRow.username == username)).first()
            if row is None:
                raise NotFoundError(f"user {username!r} does not exist")
            if roles is not None:
                row.roles = sorted(set(roles))
            if teams is not None:
                row.teams = sorted(set(teams))
            if skills is not None:
                row.skills = sorted(set(skills))
            if tier is not None:
                row.tier = tier
            if display_name is not None:
                row.display_name = display_name
            if active is not None:
                row.active = active
                if not active:
                    s.execute(delete(StaffTokenRow).where(StaffTokenRow.user_id == row.id))
            publish(s, Topic.STAFF, username)  # open live streams re-check their sessions in every process
            return _user(row)

    def set_password(self, username: str, password_hash: str) -> None:
        """Replace a user's password hash and end their sessions."""
        with self.db.session() as s:
            row = s.scalars(select(StaffUserRow).where(StaffUserRow.username == username)).first()
            if row is None:
                raise NotFoundError(f"user {username!r} does not exist")
            row.password_hash = password_hash
            s.execute(delete(StaffTokenRow).where(StaffTokenRow.user_id == row.id))
            publish(s, Topic.STAFF, username)

    def credentials(self, username: str) -> tuple[StaffUser, str] | None:
        """The user and their password hash, for login."""
        with self.db.read() as s:
            row = s.scalars(select(StaffUserRow).where(StaffUserRow.username == username)).first()
            return (_user(row), row.password_hash) if row else None

    def list_users(self) -> list[StaffUser]:
        """All users by username."""
        with self.db.read() as s:
            return [_user(r) for r in s.scalars(select(StaffUserRow).order_by(StaffUserRow.username)).all()]

    def count_users(self) -> int:
        """Number of users."""
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(StaffUserRow)) or 0)

    def add_token(self, user_id: int, token_hash: str, expires_at: datetime) -> None:
        """Store a new session token (its hash)."""
        with self.db.session() as s:
            s.add(StaffTokenRow(user_id=user_id, token_hash=token_hash, expires_at=expires_at))

    def user_for_token(self, token_hash: str, now: datetime) -> StaffUser | None:
        """The active user owning an unexpired token."""
        with self.db.read() as s:
            row = s.execute(
                select(StaffUserRow).join(StaffTokenRow, StaffTokenRow.user_id == StaffUserRow.id)
                .where(StaffTokenRow.token_hash == token_hash, StaffTokenRow.expires_at > now,
                       StaffUserRow.active.is_(True))
            ).scalar_one_or_none()
            return _user(row) if row else None

    def revoke_token(self, token_hash: str) -> None:
        """Log a session out."""
        with self.db.session() as s:
            username = s.scalar(select(StaffUserRow.username)
                                .join(StaffTokenRow, StaffTokenRow.user_id == StaffUserRow.id)
                                .where(StaffTokenRow.token_hash == token_hash))
            s.execute(delete(StaffTokenRow).where(StaffTokenRow.token_hash == token_hash))
            if username is not None:
                publish(s, Topic.STAFF, username)


def _user(row: StaffUserRow) -> StaffUser:
    return StaffUser(row.id, row.username, row.display_name, frozenset(row.roles), row.active,
                     frozenset(row.teams or ()), frozenset(row.skills or ()), row.tier or 1)
