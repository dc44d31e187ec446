"""Run staff operations in process as a given actor (strawberry style: schema.execute with a context)."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.actors import Actor
from loyalty.models import StaffRole
from schema.staff.context import StaffContext
from schema.staff.schema import build_staff_schema

STAFF_SCHEMA = build_staff_schema(production=False)


async def run_staff(query: str, actor: Actor | None, variables: dict[str, Any] | None = None) -> Any:
    """Execute `query` on the staff schema as `actor`; returns strawberry's ExecutionResult."""
    context = StaffContext(request=None, response=None, actor=actor)
    return await STAFF_SCHEMA.execute(query, variable_values=variables, context_value=context)


@pytest.fixture
def cashier() -> Actor:
    return Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass Cashier")


@pytest.fixture
def manager() -> Actor:
    return Actor(kind="staff", id=2, role=StaffRole.MANAGER, store_codes=(), name="Max Manager")


@pytest.fixture
def admin() -> Actor:
    return Actor(kind="staff", id=3, role=StaffRole.ADMIN, name="Ada Admin")
