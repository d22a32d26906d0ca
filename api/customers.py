"""The customers API for staff: find a customer, read their profile across channels, edit it, link two profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import AgentDep, ServicesDep, require_roles
from api.schemas import CustomerOut
from domain.enums import Role
from domain.models import StaffUser

router = APIRouter(prefix="/api/customers", tags=["customers"])
SupervisorDep = Annotated[StaffUser, Depends(require_roles(Role.SUPERVISOR))]


class MergeIn(BaseModel):
    """The other profile that belongs to the same person."""

    other_customer_id: int = Field(ge=1)


class CustomerPatch(BaseModel):
    """Fields a supervisor may correct; omitted fields stay as they are."""

    display_name: str | None = Field(None, min_length=1, max_length=120)
    email: str | None = Field(None, min_length=3, max_length=320)
    tier: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")


@router.get("", response_model=list[CustomerOut])
def search_customers(services: ServicesDep, _: AgentDep,
                     q: Annotated[str, Query(min_length=2, max_length=200,
                                             description="part of a name, email or channel id")]) -> list[CustomerOut]:
    """Customers matching a name, an email or an id on any channel (at most 20, newest first)."""
    return [CustomerOut.of(p) for p in services.customers.search(q)]


@router.get("/{customer_id}", response_model=CustomerOut)
def read_customer(customer_id: int, services: ServicesDep, _: AgentDep) -> CustomerOut:
    """One customer's profile: identities on each channel and latest conversations."""
    return CustomerOut.of(services.customers.profile(customer_id))


@router.post("/{customer_id}/merge", response_model=CustomerOut)
def merge_customers(customer_id: int, body: MergeIn, services: ServicesDep, agent: AgentDep) -> CustomerOut:
    """Link another profile of the same person into this one (its identities and conversations move here)."""
    return CustomerOut.of(services.customers.merge(customer_id, body.other_customer_id, agent.username))


@router.patch("/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: int, body: CustomerPatch, services: ServicesDep, _: SupervisorDep) -> CustomerOut:
    """Correct a customer's name, email or tier (the tier feeds urgency)."""
    return CustomerOut.of(services.customers.update(customer_id, display_name=body.display_name, email=body.email,
                                                    tier=body.tier))
