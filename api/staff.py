"""Staff login, logout, identity and user management."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AdminDep, ServicesDep, StaffDep, TokenDep
from api.schemas import LoginIn, LoginOut, StaffUserIn, StaffUserOut, StaffUserPatch
from domain.enums import Role
from domain.errors import ValidationError

router = APIRouter(prefix="/api", tags=["staff"])


@router.post("/auth/login", response_model=LoginOut)
def login(services: ServicesDep, body: LoginIn) -> LoginOut:
    """Exchange a username and password for a bearer token."""
    token, expires, user = services.auth.login(body.username, body.password)
    return LoginOut(token=token, expires_at=expires, username=user.username, roles=sorted(user.roles))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(services: ServicesDep, user: StaffDep, token: TokenDep) -> None:
    """End this session."""
    assert token is not None  # StaffDep already rejected a missing token
    services.auth.logout(token)


@router.get("/auth/me", response_model=StaffUserOut)
def me(user: StaffDep) -> StaffUserOut:
    """Who the token belongs to."""
    return StaffUserOut.of(user)


@router.get("/admin/users", response_model=list[StaffUserOut])
def list_users(services: ServicesDep, _: AdminDep) -> list[StaffUserOut]:
    """All staff users (admins only)."""
    return [StaffUserOut.of(u) for u in services.staff.list_users()]


@router.post("/admin/users", response_model=StaffUserOut, status_code=status.HTTP_201_CREATED)
def create_user(services: ServicesDep, _: AdminDep, body: StaffUserIn) -> StaffUserOut:
    """Add a staff user (admins only)."""
    _check_roles_and_teams(services, body.roles, body.teams)
    user = services.auth.create_user(body.username, body.password, body.roles, body.display_name, body.teams,
                                     body.skills, body.tier)
    return StaffUserOut.of(user)


@router.patch("/admin/users/{username}", response_model=StaffUserOut)
def update_user(services: ServicesDep, _: AdminDep, username: str, body: StaffUserPatch) -> StaffUserOut:
    """Change a staff user's roles, teams, skills, tier, name or active flag (admins only)."""
    _check_roles_and_teams(services, body.roles or [], body.teams or [])
    return StaffUserOut.of(services.staff.update_user(
        username, roles=body.roles, teams=body.teams, skills=body.skills, tier=body.tier, active=body.active,
        display_name=body.display_name))


def _check_roles_and_teams(services: ServicesDep, roles: list[str], teams: list[str]) -> None:
    known = {r.value for r in Role}
    unknown = sorted(set(roles) - known)
    if unknown:
        raise ValidationError(f"unknown roles: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    unknown_teams = sorted(set(teams) - set(services.teams.teams))
    if unknown_teams:
        raise ValidationError(f"unknown teams: {', '.join(unknown_teams)}")
