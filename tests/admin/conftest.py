"""The console's fixtures: an app over the test database, a cashier of store S1, a member with 300 points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from loyalty.members import enroll_member
from loyalty.models import EntryKind, Member, Program, StaffUser
from loyalty.staff import create_staff
from tests.conftest import app_settings
from tests.loyalty import ledger_helpers

PASSWORD = "correct horse battery"


@pytest.fixture
async def http(db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(app_settings(db, tmp_path)))  # the `db` fixture holds the connection
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def cass(program: Program) -> StaffUser:
    return await create_staff("cass@example.com", PASSWORD, "cashier", ["S1"], "Cass")


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("anna", email="anna@example.com", display_name="Anna Andersson")
    await ledger_helpers.credit_points(member.id, 300, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
    return await Member.get(id=member.id)
