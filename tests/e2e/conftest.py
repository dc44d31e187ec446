"""Browser tests: a real uvicorn server on a free local port, a seeded SQLite database, and Debian's chromium.

Playwright's own browser download is never used: the tests drive the system chromium via `executable_path`, and
skip (with the reason) only where it is not installed — `make test` installs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.transactions import in_transaction

from loyalty.clock import now
from loyalty.db import connect, disconnect, migrate
from loyalty.members import enroll_member
from loyalty.models import EntryKind, Member, Offer, OfferBenefit, Reward, RewardKind
from loyalty.program import apply_program_config, forget_cached_program
from loyalty.staff import create_staff
from loyalty.vouchers import issue_voucher
from tests.conftest import TEST_PROGRAM
from tests.loyalty import ledger_helpers
from tests.server import running_klubb

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"]
STAFF_EMAIL = "cass@example.com"
STAFF_PASSWORD = "till-password-123"


@dataclass(frozen=True)
class Seeded:
    member: Member
    card_code_seconds: int
    voucher_code: str
    offer_name: str


@dataclass(frozen=True)
class Console:
    url: str  # e.g. http://127.0.0.1:54321/admin
    seeded: Seeded


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`make test` does: apt-get install chromium)")
    return CHROMIUM


async def _seed(database_url: str) -> Seeded:
    """A program, a cashier of store S1, and a member with 300 points, a free-coffee voucher and a bonus offer."""
    await migrate(database_url)
    await connect(database_url)
    try:
        program = await apply_program_config(TEST_PROGRAM)
        await create_staff(STAFF_EMAIL, STAFF_PASSWORD, "cashier", ["S1"], "Cass Cashier")
        member, _ = await enroll_member("e2e-anna", email="anna@example.com", display_name="Anna Andersson")
        await ledger_helpers.credit_points(member.id, 300, kind=EntryKind.ADJUSTMENT, idempotency_key="e2e-seed")
        coffee = await Reward.create(name="Free coffee", kind=RewardKind.FREE_PRODUCT, points_cost=25, sku="COFFEE")
        async with in_transaction() as conn:
            voucher = await issue_voucher(conn, member.id, reward=coffee)
        offer = await Offer.create(
            name="Double coffee bonus",
            description="50 bonus points with any coffee",
            benefit=OfferBenefit.BONUS_POINTS,
            value=50,
            valid_from=now(),
            valid_until=now() + timedelta(days=365),
        )
        return Seeded(await Member.get(id=member.id), program.card_code_seconds, voucher.code, offer.name)
    finally:
        await disconnect()
        # This process's other tests share Tortoise's per-connection-name SQL cache and the program cache.
        EXECUTOR_CACHE.clear()
        forget_cached_program()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """The whole service under uvicorn in a subprocess (as in production), on a seeded SQLite file."""
    database_url = f"sqlite://{tmp_path / 'e2e.sqlite3'}"
    seeded = asyncio.run(_seed(database_url))
    with running_klubb(database_url, tmp_path) as base:
        yield Console(f"{base}/admin", seeded)
