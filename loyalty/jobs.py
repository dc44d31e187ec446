"""Periodic jobs: the one loop over what is due, and the registry of jobs that `klubb jobs` and the worker read.

Every job is "for each row due for X, in batches": `due_batches` reads the due rows in id order with a keyset cursor
(`id > last`), re-reading the clock for each batch, so one run visits a row at most once. A row that becomes due
during a run is taken by this run if it is due when a later batch is read past it, else by the next run. Member jobs run
`for_each_due_member`: one unit per member, each in its own transaction with the member row locked (or under its
own idempotency key), that re-checks under the lock whether the member is still due. So a job is safe to run twice,
alongside traffic and alongside itself in other processes: a member settled meanwhile is skipped, not done again.

A member whose unit fails does not stop the run: the error is logged with the member's id, the other members are
done (and committed), and the run then raises `JobIncomplete` naming the members that failed, so the CLI exits
non-zero and the worker logs it; the next run tries those members again. (Stopping at the first failure would let
one broken member hold back every member after it, run after run.)

The rules stay where they belong: settling in the ledger core (`ledger.settle`), tier evaluation in
`loyalty.tiers`, the birthday credit in `loyalty.birthday`, voucher expiry in `loyalty.vouchers`, what a wallet pass
shows in `loyalty.wallet`, which devices are stale in `loyalty.devices`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from loyalty import (
    automations,
    birthday,
    campaigns,
    clock,
    devices,
    ledger,
    memberships,
    messages,
    referrals,
    vouchers,
    wallet,
)
from loyalty.errors import DomainError
from loyalty.models import Device, Member, Membership, Referral, ReferralStatus, Voucher, VoucherStatus
from loyalty.program import load_program
from loyalty.tiers import evaluate_tier

log = logging.getLogger("klubb.jobs")

BATCH_SIZE = 500  # rows read per query; each member is still its own transaction
ModelT = TypeVar("ModelT", bound=Model)


class JobIncomplete(Exception):
    """Some members' units failed (each logged); the others were done and committed."""

    def __init__(self, job: str, done: int, failed: list[int]) -> None:
        shown = ", ".join(map(str, failed[:10])) + (", …" if len(failed) > 10 else "")
        super().__init__(f"{len(failed)} failed (member ids {shown}); {done} done")
        self.job = job
        self.done = done
        self.failed = failed


class UnknownJob(DomainError):
    code = "UNKNOWN_JOB"


# --- the loop -------------------------------------------------------------------------------------


async def due_batches(
    model: type[ModelT], due: Callable[[datetime], Q], batch_size: int = BATCH_SIZE
) -> AsyncIterator[tuple[datetime, list[ModelT]]]:
    """The rows of `model` that are `due(now)`, `batch_size` at a time in id order, each with the `now` it was read at.

    Keyset-paginated: each row comes at most once per run, however the rows change while the caller works on them.
    """
    last_id = 0
    while True:
        at = clock.now()
        batch = list(await model.filter(due(at), id__gt=last_id).order_by("id").limit(batch_size))
        if not batch:
            return
        yield at, batch
        if len(batch) < batch_size:
            return  # nothing was due beyond this batch when it was read
        last_id = batch[-1].pk


async def for_each_due_member(
    job: str,
    due: Callable[[datetime], Q],
    unit: Callable[[Member, datetime], Awaitable[bool]],
    *,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Run `unit(member, now)` for each member that is `due(now)`; returns how many units did something (True).

    `member` is the row as read with its batch, not locked: the unit opens its own transaction (or idempotent
    operation), locks the member and checks again. A failing unit is logged and the run goes on; at the end
    `JobIncomplete` names the failed members.
    """
    done = 0
    failed: list[int] = []
    async for at, members in due_batches(Member, due, batch_size):
        for member in members:
            try:
                if await unit(member, at):
                    done += 1
            except Exception:
                log.exception("%s: member %s failed; going on with the others", job, member.id)
                failed.append(member.id)
    if failed:
        raise JobIncomplete(job, done, failed)
    return done


# --- the jobs -------------------------------------------------------------------------------------


async def expire_points(batch_size: int = BATCH_SIZE) -> int:
    """Settle every member with a due lot: pending points mature, expired points go. Returns the members settled."""

    async def settle_member(member: Member, at: datetime) -> bool:
        async with ledger.locked_member(member.id) as (conn, locked):
            if not ledger.is_settle_due(locked, at):
                return False  # settled since the batch was read (another run, or the member's own request)
            await ledger.settle(conn, locked)
            return True

    return await for_each_due_member(
        "expire-points", lambda at: Q(next_settle_at__lte=at), settle_member, batch_size=batch_size
    )


async def evaluate_tiers(batch_size: int = BATCH_SIZE) -> int:
    """Re-evaluate every member whose tier hold has ended (down one tier at a time); returns the members evaluated.

    An evaluated member's hold moves to the end of the current period, so a second run finds them no longer due.
    """
    program = await load_program()

    async def evaluate(member: Member, at: datetime) -> bool:
        async with ledger.locked_member(member.id) as (conn, locked):
            if locked.tier_held_until is None or locked.tier_held_until > at:
                return False  # evaluated since the batch was read
            await ledger.settle(conn, locked)
            await evaluate_tier(conn, locked, program)
            return True

    return await for_each_due_member(
        "evaluate-tiers", lambda at: Q(tier_held_until__lte=at), evaluate, batch_size=batch_size
    )


async def birthday_rewards(batch_size: int = BATCH_SIZE) -> int:
    """Credit the program's `birthday_points` to members in their birthday month, once a year; returns how many
    members this run credited (0 on a second run). With `birthday_points = 0` nothing is read."""
    program = await load_program()
    if program.birthday_points <= 0:
        return 0

    async def grant(member: Member, at: datetime) -> bool:
        return await birthday.grant_birthday_points(member, at, program.birthday_points)

    # The month is the member's own (timezone): the rule decides per member, the query only skips the unknown.
    return await for_each_due_member(
        "birthday-rewards", lambda at: Q(birthday__isnull=False), grant, batch_size=batch_size
    )


async def expire_vouchers(batch_size: int = BATCH_SIZE) -> int:
    """Mark every ACTIVE voucher past `expires_at` EXPIRED (emitting `voucher.expired`); returns how many.

    Reads do not need it (they show `vouchers.effective_status`); it keeps the status column and the events
    current. One transaction per batch: each voucher's update is conditional, so concurrent runs expire it once.
    """
    expired = 0
    async for at, due in due_batches(
        Voucher, lambda at: Q(status=VoucherStatus.ACTIVE, expires_at__lte=at), batch_size
    ):
        async with in_transaction() as conn:
            expired += await vouchers.mark_expired(conn, [voucher.id for voucher in due], at)
    return expired


async def refresh_wallet_passes(batch_size: int = BATCH_SIZE) -> int:
    """Refresh the wallet passes the clock changed: points entering the expiring-soon window (no event says so).

    Reads the members with a card in a wallet and available points expiring within the program's
    `expiring_soon_days`; for each batch, in one transaction, `loyalty.wallet.refresh_aged_passes` compares what
    their passes show now with what they last showed (the digest): the changed Apple passes get a new update tag and
    a push owed, the changed Google cards a sync owed. Returns the passes refreshed; a second run refreshes none.
    """
    program = await load_program()
    window = timedelta(days=program.expiring_soon_days)
    refreshed = 0
    async for at, members in due_batches(
        Member, lambda at: wallet.in_wallet_with_points_expiring(at + window), batch_size
    ):
        async with in_transaction() as conn:
            refreshed += len(await wallet.refresh_aged_passes(conn, [member.id for member in members], at))
    return refreshed


async def prune_stale_devices(batch_size: int = BATCH_SIZE, retention: timedelta | None = None) -> int:
    """Delete the devices not seen (registered or sent to) for `retention` (the policy's `device_retention_days`,
    270 by default: FCM treats such tokens as stale); returns how many. One transaction per batch; a device
    registered again meanwhile stays."""
    if retention is None:
        retention = timedelta(days=(await messages.current_policy()).device_retention_days)
    pruned = 0
    async for at, stale in due_batches(
        Device, lambda at: Q(last_seen_at__lt=devices.stale_before(at, retention)), batch_size
    ):
        async with in_transaction() as conn:
            pruned += await devices.delete_stale(
                conn, [device.id for device in stale], devices.stale_before(at, retention)
            )
    return pruned


async def lapse_memberships(batch_size: int = BATCH_SIZE) -> int:
    """Move the paid memberships whose time ran out on: ACTIVE past `period_end` without a renewal payment to GRACE
    (for the plan's `grace_days`), GRACE past `grace_until` and CANCELLED past `period_end` to LAPSED
    (`loyalty.memberships.step_due`, one transaction per membership with the member locked). Reads by `due_at`
    (index `status, due_at`); returns the memberships moved (0 on a second run). Failures are logged and reported
    as `JobIncomplete` (member ids), like the member jobs."""
    moved = 0
    failed: list[int] = []
    async for at, due in due_batches(Membership, memberships.due, batch_size):
        for membership in due:
            try:
                if await memberships.step_due(membership.id, membership.member_id, at):
                    moved += 1
            except Exception:
                log.exception("lapse-memberships: member %s failed; going on with the others", membership.member_id)
                failed.append(membership.member_id)
    if failed:
        raise JobIncomplete("lapse-memberships", moved, failed)
    return moved


# --- the registry ---------------------------------------------------------------------------------


async def reward_referrals(batch_size: int = BATCH_SIZE) -> int:
    """CONVERTED referrals whose qualifying purchase's return window ended become REWARDED (`referral.rewarded`);
    their bonus lots mature by `expire-points`. Returns the referrals rewarded."""
    done = 0
    async for at, due in due_batches(
        Referral, lambda at: Q(status=ReferralStatus.CONVERTED, available_at__lte=at), batch_size
    ):
        for referral in due:
            if await referrals.reward_referral(referral.id, at):  # conditional: a concurrent run rewards it once
                done += 1
    return done


@dataclass(frozen=True)
class Job:
    name: str  # `klubb jobs run NAME`
    description: str
    run: Callable[[], Awaitable[int]]
    every: timedelta  # how often the worker runs it unless configured otherwise
    counts: str  # what the number `run` returns counts

    def report(self, count: int) -> str:
        return f"{self.name}: {count} {self.counts}"


JOBS: tuple[Job, ...] = (
    Job(
        "expire-points",
        "mature pending points and expire due points",
        expire_points,
        timedelta(minutes=1),
        "members settled",
    ),
    Job(
        "evaluate-tiers",
        "downgrade members whose tier hold ended and who no longer qualify, one tier at a time",
        evaluate_tiers,
        timedelta(hours=1),
        "members evaluated",
    ),
    Job(
        "birthday-rewards",
        "credit birthday_points to members in their birthday month, once a year",
        birthday_rewards,
        timedelta(hours=1),
        "members credited",
    ),
    Job(
        "expire-vouchers",
        "mark vouchers past their expiry EXPIRED",
        expire_vouchers,
        timedelta(minutes=10),
        "vouchers expired",
    ),
    Job(
        "refresh-wallet-passes",
        "refresh the wallet passes of members whose points entered the expiring-soon window",
        refresh_wallet_passes,
        timedelta(hours=1),
        "passes refreshed",
    ),
    Job(
        "prune-stale-devices",
        "delete push devices unused for 270 days",
        prune_stale_devices,
        timedelta(hours=6),
        "devices deleted",
    ),
    Job(
        "lapse-memberships",
        "move paid memberships past their period to grace, and past their grace or cancelled period to lapsed",
        lapse_memberships,
        timedelta(minutes=5),
        "memberships moved",
    ),
    Job(
        "send-push-campaigns",
        "write the messages of due push campaigns (resuming any whose worker stopped), in keyset batches",
        campaigns.send_due_campaigns,
        timedelta(minutes=1),
        "campaign messages written",
    ),
    Job(
        "push-automations",
        "write the enabled lifecycle automations' messages: welcome, points expiring, close to the next tier, "
        "win-back, birthday, voucher expiring (once per member and occasion)",
        automations.run_all,
        timedelta(minutes=5),
        "automation messages written",
    ),
    Job(
        "reward-referrals",
        "mark converted referrals whose qualifying purchase's return window ended REWARDED",
        reward_referrals,
        timedelta(minutes=10),
        "referrals rewarded",
    ),
)


def get_jobs(names: list[str] | tuple[str, ...] = ()) -> list[Job]:
    """The jobs named, in the order given (every job, in registry order, for none); `UnknownJob` for a wrong name."""
    if not names:
        return list(JOBS)
    by_name = {job.name: job for job in JOBS}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise UnknownJob(f"no job named {', '.join(unknown)}; the jobs are {', '.join(by_name)}")
    return [by_name[name] for name in names]
