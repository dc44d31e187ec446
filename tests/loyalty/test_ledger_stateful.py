"""A stateful property test: random ledger operations against a small in-memory model of the rules.

Hypothesis drives `LedgerMachine` from a worker thread; each rule runs the async ledger call on the test's own event
loop (where Tortoise's connections live) with `run_coroutine_threadsafe`, then compares balances, lots and results
with the model. The database is emptied for every example.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from loyalty import jobs
from loyalty.clock import FrozenClock
from loyalty.errors import AlreadyReversed, InsufficientPoints, RefundExceedsPurchase
from loyalty.members import enroll_member
from loyalty.models import EntryKind, Member, PointsLot
from loyalty.program import apply_program_config, forget_cached_program
from tests.conftest import START, _truncate_all
from tests.invariants import assert_ledger_invariants
from tests.loyalty import ledger_helpers

T = TypeVar("T")
PENDING_DAYS = 3
EXPIRY_DAYS = 10
STATEFUL_PROGRAM: dict[str, Any] = {
    "program": {
        "name": "Stateful Club",
        "currency": "EUR",
        "earn_rate": 1,
        "pending_days": PENDING_DAYS,
        "expiry_days": EXPIRY_DAYS,
    },
    # One tier (multiplier 1), so that earning does not depend on tier state.
    "tiers": [{"name": "Member", "threshold": 0}],
}


@dataclass
class Lot:
    seq: int
    amount: int
    remaining: int
    status: str
    available_at: datetime
    expires_at: datetime
    receipt: str | None = None


@dataclass
class Buy:
    receipt: str
    total: int
    points: int
    occurred_at: datetime
    refunded: int = 0
    reversed: int = 0


@dataclass
class Spend:
    entry_id: int
    allocations: list[tuple[int, int]]  # (lot seq, amount)
    cancelled: bool = False


@dataclass
class Model:
    """The rules of DESIGN.md, for one member, in memory."""

    lots: list[Lot] = field(default_factory=list)
    buys: list[Buy] = field(default_factory=list)
    spends: list[Spend] = field(default_factory=list)
    available: int = 0
    pending: int = 0
    lifetime: int = 0

    @staticmethod
    def spend_order(lot: Lot) -> tuple[datetime, int]:
        return (lot.expires_at, lot.seq)

    def settle(self, now: datetime) -> None:
        for lot in sorted(self.lots, key=lambda lot: (lot.available_at, lot.seq)):
            if lot.status == "pending" and lot.available_at <= now:
                lot.status = "available"
                self.available += lot.remaining
                self.pending -= lot.remaining
        for lot in sorted(self.lots, key=self.spend_order):
            if lot.status == "available" and lot.expires_at <= now:
                lot.status = "expired"
                self.available -= lot.remaining
                lot.remaining = 0

    def add_lot(self, amount: int, available_at: datetime, now: datetime, receipt: str | None) -> None:
        status = "pending" if available_at > now else "available"
        expires_at = available_at + timedelta(days=EXPIRY_DAYS)
        self.lots.append(Lot(len(self.lots), amount, amount, status, available_at, expires_at, receipt))
        if status == "pending":
            self.pending += amount
        else:
            self.available += amount
        self.lifetime += amount

    def spendable(self, exclude_receipt: str | None = None) -> list[Lot]:
        lots = [lot for lot in self.lots if lot.status == "available" and lot.remaining > 0]
        return sorted(
            (lot for lot in lots if lot.receipt is None or lot.receipt != exclude_receipt), key=self.spend_order
        )

    @staticmethod
    def take(lots: list[Lot], amount: int) -> list[tuple[int, int]]:
        taken: list[tuple[int, int]] = []
        for lot in lots:
            part = min(lot.remaining, amount - sum(a for _, a in taken))
            if part > 0:
                lot.remaining -= part
                taken.append((lot.seq, part))
        assert sum(a for _, a in taken) == amount
        return taken

    def claw_back(self, buy: Buy, points: int) -> tuple[int, int]:
        own = [lot for lot in self.lots if lot.receipt == buy.receipt and lot.remaining > 0]
        own_pending = [lot for lot in own if lot.status == "pending"]
        own_available = sorted((lot for lot in own if lot.status == "available"), key=self.spend_order)
        others = self.spendable(exclude_receipt=buy.receipt)
        from_pending = min(points, sum(lot.remaining for lot in own_pending))
        from_available = min(points - from_pending, sum(lot.remaining for lot in own_available + others))
        self.take(own_pending, from_pending)
        self.take(own_available + others, from_available)
        for lot in own_pending:
            if lot.remaining == 0:
                lot.status = "void"
        self.pending -= from_pending
        self.available -= from_available
        self.lifetime -= points
        return from_pending + from_available, points - from_pending - from_available


class LedgerMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    database_url: str
    clock: FrozenClock

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.receipts = 0
        self.keys = 0
        self.clock.set(START)
        self.member_id = self.run(self._reset())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _reset(self) -> int:
        await _truncate_all(self.database_url)
        forget_cached_program()
        await apply_program_config(STATEFUL_PROGRAM)
        member, _ = await enroll_member("uid-stateful")
        return member.id

    def now(self) -> datetime:
        return self.clock.now()

    @rule(euros=st.integers(0, 150), cents=st.integers(0, 99), hours_ago=st.integers(0, 24 * (PENDING_DAYS + 2)))
    def earn(self, euros: int, cents: int, hours_ago: int) -> None:
        total = euros * 100 + cents
        occurred = self.now() - timedelta(hours=hours_ago)
        self.receipts += 1
        receipt = f"R{self.receipts}"
        result = self.run(
            ledger_helpers.earn_for_purchase(
                self.member_id,
                store_code="S1",
                receipt_id=receipt,
                occurred_at=occurred,
                currency="EUR",
                total=total,
            )
        )
        self.model.settle(self.now())
        points = total // 100
        if points:
            self.model.add_lot(points, occurred + timedelta(days=PENDING_DAYS), self.now(), receipt)
        self.model.buys.append(Buy(receipt, total, points, occurred))
        self.model.settle(self.now())
        assert result.points == points

    @precondition(lambda self: self.model.buys)
    @rule(pick=st.integers(0, 10**6))
    def retry_earn(self, pick: int) -> None:
        buy = self.model.buys[pick % len(self.model.buys)]
        result = self.run(
            ledger_helpers.earn_for_purchase(
                self.member_id,
                store_code="S1",
                receipt_id=buy.receipt,
                occurred_at=buy.occurred_at,
                currency="EUR",
                total=buy.total,
            )
        )
        assert result.points == buy.points  # replayed, no effect

    @rule(amount=st.integers(1, 100))
    def credit(self, amount: int) -> None:
        self.keys += 1
        self.run(
            ledger_helpers.credit_points(
                self.member_id, amount, kind=EntryKind.ADJUSTMENT, idempotency_key=f"c{self.keys}"
            )
        )
        self.model.settle(self.now())
        self.model.add_lot(amount, self.now(), self.now(), None)

    @rule(amount=st.integers(1, 250))
    def redeem(self, amount: int) -> None:
        self.keys += 1
        settled = copy.deepcopy(self.model)
        settled.settle(self.now())
        if amount > settled.available:
            # Refused: the whole transaction (including the settling it began with) rolls back.
            with pytest.raises(InsufficientPoints):
                self.run(ledger_helpers.redeem_points(self.member_id, amount, idempotency_key=f"r{self.keys}"))
            return
        result = self.run(ledger_helpers.redeem_points(self.member_id, amount, idempotency_key=f"r{self.keys}"))
        self.model = settled
        allocations = self.model.take(self.model.spendable(), amount)
        self.model.available -= amount
        self.model.spends.append(Spend(result.entry_id, allocations))
        assert (result.amount, result.balance) == (amount, self.model.available)

    @precondition(lambda self: self.model.spends)
    @rule(pick=st.integers(0, 10**6))
    def cancel_redemption(self, pick: int) -> None:
        spend = self.model.spends[pick % len(self.model.spends)]
        if spend.cancelled:
            with pytest.raises(AlreadyReversed):
                self.run(ledger_helpers.cancel_redemption(self.member_id, spend.entry_id))
            return
        self.run(ledger_helpers.cancel_redemption(self.member_id, spend.entry_id))
        spend.cancelled = True
        for seq, amount in spend.allocations:
            lot = self.model.lots[seq]
            lot.remaining += amount
            lot.status = "available"
            self.model.available += amount
        self.model.settle(self.now())

    @precondition(lambda self: self.model.buys)
    @rule(pick=st.integers(0, 10**6), how=st.sampled_from(["full", "partial", "exceed"]), part=st.floats(0, 1))
    def refund(self, pick: int, how: str, part: float) -> None:
        buy = self.model.buys[pick % len(self.model.buys)]
        rest = buy.total - buy.refunded
        amount = {"full": rest, "partial": 1 + int((rest - 1) * part), "exceed": rest + 1 + int(100 * part)}[how]
        amount = max(amount, 1)
        self.keys += 1
        call = ledger_helpers.refund_purchase(
            store_code="S1", receipt_id=buy.receipt, refund_id=f"f{self.keys}", amount=amount
        )
        if amount > rest:
            with pytest.raises(RefundExceedsPurchase):
                self.run(call)
            return
        result = self.run(call)
        self.model.settle(self.now())
        buy.refunded += amount
        points = buy.points * buy.refunded // buy.total - buy.reversed
        buy.reversed += points
        recovered, unrecovered = self.model.claw_back(buy, points) if points else (0, 0)
        assert (result.points_reversed, result.points_recovered, result.unrecovered) == (
            points,
            recovered,
            unrecovered,
        )
        assert buy.reversed <= buy.points

    @rule()
    def run_expiry_job(self) -> None:
        self.run(jobs.expire_points())
        self.model.settle(self.now())

    @rule(hours=st.integers(1, 24 * 5))
    def advance_time(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule(seconds=st.sampled_from([-1, 0]), pick=st.integers(0, 10**6))
    def advance_to_a_lot_boundary(self, seconds: int, pick: int) -> None:
        # Jump to (or one second before) the next maturity or expiry: the edges where off-by-one bugs live.
        upcoming = sorted(
            t
            for lot in self.model.lots
            for t in (lot.available_at, lot.expires_at)
            if t + timedelta(seconds=seconds) > self.now()
        )
        if upcoming:
            self.clock.set(upcoming[pick % len(upcoming)] + timedelta(seconds=seconds))

    @invariant()
    def database_matches_the_model(self) -> None:
        member, lots = self.run(self._state())
        assert (member.points_available, member.points_pending, member.lifetime_earned) == (
            self.model.available,
            self.model.pending,
            self.model.lifetime,
        )
        # An emptied lot's status is not compared: the job does not revisit a lot with nothing left to expire.
        expected = [(lot.amount, lot.remaining, lot.status if lot.remaining else "-") for lot in self.model.lots]
        assert [(a, r, str(s) if r else "-") for a, r, s in lots] == expected
        assert self.model.available >= 0
        assert self.model.pending >= 0

    async def _state(self) -> tuple[Member, list[tuple[int, int, str]]]:
        await assert_ledger_invariants()
        member = await Member.get(id=self.member_id)
        lots = (
            await PointsLot.filter(member_id=self.member_id).order_by("id").values_list("amount", "remaining", "status")
        )
        return member, lots


@pytest.mark.slow
async def test_random_ledger_operations_agree_with_the_model_of_the_rules(db: str, clock: FrozenClock) -> None:
    # given a machine bound to this test's event loop, database and clock
    LedgerMachine.loop = asyncio.get_running_loop()
    LedgerMachine.database_url = db
    LedgerMachine.clock = clock
    config = settings(
        max_examples=40,
        stateful_step_count=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

    # when / then: every step's results and the state after it agree with the model
    await asyncio.to_thread(run_state_machine_as_test, LedgerMachine, settings=config)
