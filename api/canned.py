"""Canned responses: agents read them, supervisors manage them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from api.deps import AgentDep, ServicesDep, require_roles
from api.schemas import CannedIn, CannedOut
from domain.enums import Role
from domain.errors import ValidationError
from domain.models import CannedResponse, StaffUser
from handoff.canned import KNOWN, unknown_placeholders

router = APIRouter(prefix="/api/canned", tags=["agents"])
SupervisorDep = Annotated[StaffUser, Depends(require_roles(Role.SUPERVISOR))]


def _out(c: CannedResponse) -> CannedOut:
    return CannedOut(id=c.id, title=c.title, body=c.body, team=c.team, updated_by=c.updated_by,
                     updated_at=c.updated_at)


def _check(services: ServicesDep, body: CannedIn) -> None:
    bad = unknown_placeholders(body.body)
    if bad:
        raise ValidationError(f"unknown placeholders {', '.join(bad)}; use {KNOWN}")
    if body.team and body.team not in services.teams.teams:
        raise ValidationError(f"unknown team '{body.team}'")


@router.get("", response_model=list[CannedOut])
def list_canned(services: ServicesDep, _: AgentDep,
                team: Annotated[str | None, Query(description="this team's and the shared ones")] = None
                ) -> list[CannedOut]:
    """Reply templates."""
    return [_out(c) for c in services.canned.list(team)]


@router.post("", response_model=CannedOut, status_code=status.HTTP_201_CREATED)
def create_canned(services: ServicesDep, supervisor: SupervisorDep, body: CannedIn) -> CannedOut:
    """Add a template (supervisors)."""
    _check(services, body)
    return _out(services.canned.save(None, body.title.strip(), body.body.strip(), body.team, supervisor.username))


@router.put("/{canned_id}", response_model=CannedOut)
def update_canned(services: ServicesDep, supervisor: SupervisorDep, canned_id: int, body: CannedIn) -> CannedOut:
    """Change a template (supervisors)."""
    _check(services, body)
    return _out(services.canned.save(canned_id, body.title.strip(), body.body.strip(), body.team,
                                     supervisor.username))


@router.delete("/{canned_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_canned(services: ServicesDep, _: SupervisorDep, canned_id: int) -> None:
    """Remove a template (supervisors)."""
    services.canned.delete(canned_id)
