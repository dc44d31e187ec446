"""The periodic jobs: the one loop over what is due, and every job through the registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from loyalty import devices, jobs, vouchers, wallet
from loyalty.clock import FrozenClock
from loyalty.models import (
    DevicePlatform,
    EntryKind,
    GoogleWalletObject,
    LedgerEntry,
    Member,
    OutboxEvent,
    Program,
    Tier,
    Voucher,
    VoucherStatus,
    WalletPass,
    WalletPlatform,
    WalletPush,
)
from tests.loyalty.ledger_helpers import balances, configure, give_available, new_member, purchase
from tests.loyalty.membership_helpers import pay, plans

DAY = timedelta(days=1)


def _due(at: datetime) -> Q:
    # The loop tests use the settle time as a plain "due" marker; their units clear it when done.
    return Q(next_settle_at__lte=at)


async def _make_due(clock: FrozenClock, *members: Member) -> None:
    await Member.filter(id__in=[m.id for m in members]).update(next_settle_at=clock.now() - timedelta(minutes=1))


async def _members(count: int) -> list[Member]:
    return [await new_member(f"uid-job-{i}") for i in range(count)]


async def _run(name: str) -> int:
    [job] = jobs.get_jobs([name])
    return await job.run()


async def _tier_name(member_id: int) -> str:
    member = await Member.get(id=member_id)
    return (await Tier.get(id=member.tier_id)).name


# --- the loop -------------------------------------------------------------------------------------


async def test_due_rows_come_in_id_order_batch_by_batch(program: Program, clock: FrozenClock) -> None:
    # given five members, all but the third due
    members = await _members(5)
    await _make_due(clock, members[0], members[1], members[3], members[4])

    # when read two at a time, and three at a time
    by_two = [[m.id for m in batch] async for _, batch in jobs.due_batches(Member, _due, batch_size=2)]
    by_three = [[m.id for m in batch] async for _, batch in jobs.due_batches(Member, _due, batch_size=3)]

    # then
    ids = [m.id for m in members]
    assert by_two == [[ids[0], ids[1]], [ids[3], ids[4]]]
    assert by_three == [[ids[0], ids[1], ids[3]], [ids[4]]]


async def test_each_batch_is_read_at_the_time_it_is_read(program: Program, clock: FrozenClock) -> None:
    # given two members due now and one due in an hour
    members = await _members(3)
    await _make_due(clock, members[0], members[1])
    await Member.filter(id=members[2].id).update(next_settle_at=clock.now() + timedelta(hours=1))

    # when the first batch takes two hours
    seen: list[tuple[datetime, list[int]]] = []
    async for at, batch in jobs.due_batches(Member, _due, batch_size=2):
        seen.append((at, [m.id for m in batch]))
        clock.advance(timedelta(hours=2))

    # then the member who fell due meanwhile comes in the next batch, with the later time
    start = seen[0][0]
    assert seen == [(start, [members[0].id, members[1].id]), (start + timedelta(hours=2), [members[2].id])]


async def test_a_member_falling_due_mid_run_is_taken_if_the_run_has_not_passed_them(
    program: Program, clock: FrozenClock
) -> None:
    # given four members, the second and the fourth due
    members = await _members(4)
    ids = [m.id for m in members]
    await _make_due(clock, members[1], members[3])
    seen: list[int] = []

    async def unit(member: Member, at: datetime) -> bool:
        seen.append(member.id)
        await Member.filter(id=member.id).update(next_settle_at=None)
        if member.id == ids[1]:
            # while the run is at the second member, the first (behind it) and the third (ahead) fall due
            await _make_due(clock, members[0], members[2])
        return True

    # when the job runs one member per batch, then runs again
    first = await jobs.for_each_due_member("test-job", _due, unit, batch_size=1)
    first_seen, seen[:] = list(seen), []
    second = await jobs.for_each_due_member("test-job", _due, unit, batch_size=1)

    # then the third is taken by this run, the first by the next one
    assert (first, first_seen) == (3, [ids[1], ids[2], ids[3]])
    assert (second, seen) == (1, [ids[0]])


async def test_only_units_that_did_something_count(program: Program, clock: FrozenClock) -> None:
    # given three due members, of whom the unit finds the second no longer due (settled by someone else)
    members = await _members(3)
    await _make_due(clock, *members)

    async def unit(member: Member, at: datetime) -> bool:
        return member.id != members[1].id

    # when / then
    assert await jobs.for_each_due_member("test-job", _due, unit) == 2


async def test_a_failing_member_is_logged_and_the_others_are_done(
    program: Program, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    # given three due members, each unit in its own transaction; the second member's unit fails after writing
    members = await _members(3)
    await _make_due(clock, *members)

    async def unit(member: Member, at: datetime) -> bool:
        async with in_transaction() as conn:
            await Member.filter(id=member.id).using_db(conn).update(next_settle_at=None)
            if member.id == members[1].id:
                raise RuntimeError("boom")
        return True

    # when
    with pytest.raises(jobs.JobIncomplete) as failure:
        await jobs.for_each_due_member("test-job", _due, unit, batch_size=2)

    # then the others were done and committed, the failed unit rolled back, and the run says who failed
    assert (failure.value.job, failure.value.done, failure.value.failed) == ("test-job", 2, [members[1].id])
    assert str(failure.value) == f"1 failed (member ids {members[1].id}); 2 done"
    assert await Member.filter(next_settle_at__isnull=False).values_list("id", flat=True) == [members[1].id]
    logged = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == "klubb.jobs"]
    assert logged == [("ERROR", f"test-job: member {members[1].id} failed; going on with the others", True)]


async def test_a_failure_reading_a_batch_stops_the_run(program: Program, clock: FrozenClock) -> None:
    # given a due filter the database refuses (a member field that does not exist)
    await _make_due(clock, *await _members(1))
    done: list[int] = []

    async def unit(member: Member, at: datetime) -> bool:
        done.append(member.id)
        return True

    # when / then: nothing to go on with
    with pytest.raises(Exception, match="no_such_field"):
        await jobs.for_each_due_member("test-job", lambda at: Q(no_such_field__lte=at), unit)
    assert done == []


# --- the registry ---------------------------------------------------------------------------------


def test_the_registry_names_every_job_once_with_its_default_interval() -> None:
    assert [(job.name, job.every, job.counts) for job in jobs.JOBS] == [
        ("expire-points", timedelta(minutes=1), "members settled"),
        ("evaluate-tiers", timedelta(hours=1), "members evaluated"),
        ("birthday-rewards", timedelta(hours=1), "members credited"),
        ("expire-vouchers", timedelta(minutes=10), "vouchers expired"),
        ("refresh-wallet-passes", timedelta(hours=1), "passes refreshed"),
        ("prune-stale-devices", timedelta(hours=6), "devices deleted"),
        ("lapse-memberships", timedelta(minutes=5), "memberships moved"),
        ("send-push-campaigns", timedelta(minutes=1), "campaign messages written"),
        ("push-automations", timedelta(minutes=5), "automation messages written"),
        ("reward-referrals", timedelta(minutes=10), "referrals rewarded"),
    ]
    assert jobs.get_jobs(()) == list(jobs.JOBS)
    assert [job.name for job in jobs.get_jobs(["expire-vouchers", "expire-points"])] == [
        "expire-vouchers",
        "expire-points",
    ]
    assert jobs.JOBS[0].report(3) == "expire-points: 3 members settled"


def test_an_unknown_job_name_is_refused() -> None:
    with pytest.raises(jobs.UnknownJob) as refused:
        jobs.get_jobs(["expire-points", "expire-everything", "nope"])

    assert (refused.value.code, refused.value.message) == (
        "UNKNOWN_JOB",
        "no job named expire-everything, nope; the jobs are expire-points, evaluate-tiers, birthday-rewards, "
        "expire-vouchers, refresh-wallet-passes, prune-stale-devices, lapse-memberships, send-push-campaigns, "
        "push-automations, reward-referrals",
    )


async def test_expire_points_settles_each_due_member_once(program: Program, clock: FrozenClock) -> None:
    # given a member whose points expire, one whose purchase matures, and one with nothing due yet
    expiring, maturing, idle = await _members(3)
    await give_available(expiring.id, 100)  # expires on day 365
    clock.advance(351 * DAY)
    await purchase(maturing.id, "R1", 5_000, clock.now())  # pending until day 365
    clock.advance(14 * DAY)
    await give_available(idle.id, 30)

    # when the job runs twice
    counts = (await _run("expire-points"), await _run("expire-points"))

    # then
    assert counts == (2, 0)
    assert await balances(expiring.id) == (0, 0, 100)
    assert await balances(maturing.id) == (50, 0, 50)
    assert await balances(idle.id) == (30, 0, 30)
    assert await OutboxEvent.filter(type__in=("points.expired", "points.matured")).count() == 2


async def test_evaluate_tiers_downgrades_the_members_whose_hold_ended(program: Program, clock: FrozenClock) -> None:
    # given a Silver member held until 2028 and a Silver member who requalified in 2027
    lapsed, loyal = await _members(2)
    await purchase(lapsed.id, "R1", 50_000, clock.now())
    await purchase(loyal.id, "R2", 50_000, clock.now())
    clock.set(datetime(2027, 6, 1, tzinfo=UTC))
    await purchase(loyal.id, "R3", 50_000, clock.now())  # 500 qualifying points in 2027: held until 2029
    clock.set(datetime(2028, 1, 1, tzinfo=UTC))

    # when the job runs twice
    counts = (await _run("evaluate-tiers"), await _run("evaluate-tiers"))

    # then
    assert counts == (1, 0)
    assert (await _tier_name(lapsed.id), await _tier_name(loyal.id)) == ("Member", "Silver")


async def test_birthday_rewards_credit_the_birthday_month_once(program: Program, clock: FrozenClock) -> None:
    # given 100 birthday points on 2 March 2026, a March and an April birthday
    await configure(birthday_points=100)
    march, april = await _members(2)
    await Member.filter(id=march.id).update(birthday=date(1990, 3, 20))
    await Member.filter(id=april.id).update(birthday=date(1990, 4, 1))

    # when the job runs twice
    counts = (await _run("birthday-rewards"), await _run("birthday-rewards"))

    # then
    assert counts == (1, 0)
    assert (await balances(march.id), await balances(april.id)) == ((100, 0, 100), (0, 0, 0))


async def test_expire_vouchers_marks_the_due_vouchers_once(program: Program, clock: FrozenClock) -> None:
    # given a voucher expiring in 30 days and one issued a day later
    member = (await _members(1))[0]
    async with in_transaction() as conn:
        due = await vouchers.issue_voucher(conn, member.id)
    clock.advance(DAY)
    async with in_transaction() as conn:
        later = await vouchers.issue_voucher(conn, member.id)
    clock.advance(29 * DAY)

    # when the job runs twice
    counts = (await _run("expire-vouchers"), await _run("expire-vouchers"))

    # then
    assert counts == (1, 0)
    assert [(await Voucher.get(id=v.id)).status for v in (due, later)] == [VoucherStatus.EXPIRED, VoucherStatus.ACTIVE]
    assert await OutboxEvent.filter(type="voucher.expired").values_list("payload", flat=True) == [
        {"type": "voucher.expired", "member_id": member.id, "voucher_id": due.id}
    ]


async def test_expire_vouchers_batch_by_batch(program: Program, clock: FrozenClock) -> None:
    # given five vouchers past their expiry
    member = (await _members(1))[0]
    async with in_transaction() as conn:
        issued = [await vouchers.issue_voucher(conn, member.id) for _ in range(5)]
    clock.advance(30 * DAY)

    # when expired two at a time
    assert await jobs.expire_vouchers(batch_size=2) == 5

    # then
    assert await Voucher.filter(status=VoucherStatus.EXPIRED).count() == len(issued)


@pytest.mark.postgres_only
async def test_concurrent_runs_of_every_job_do_each_unit_once(program: Program, clock: FrozenClock) -> None:
    # given 12 members with expiring points, a birthday this month, a tier hold that ends, an expiring voucher
    await configure(birthday_points=10)
    members = await _members(12)
    for member in members:
        await purchase(member.id, f"R{member.id}", 50_000, clock.now() - 20 * DAY)  # Silver, matured
        async with in_transaction() as conn:
            await vouchers.issue_voucher(conn, member.id)
    await Member.all().update(birthday=date(1990, 1, 15))
    # and a paid membership each, never renewed
    await plans()
    for member in members:
        await pay(clock, member.id, f"pay-{member.id}")
    # and a pass on a device each, with 10 points that will be expiring soon (on 2028-01-15)
    clock.set(datetime(2027, 1, 15, tzinfo=UTC))
    for member in members:
        await give_available(member.id, 10, key=f"soon-{member.id}")
        wallet_pass = await wallet.ensure_pass(member.id, WalletPlatform.APPLE, auth_token=f"{member.id:024d}")
        await wallet.register_device(wallet_pass, f"device-{member.id}", f"{member.id:064x}")
        # and an app on a phone, not opened since (351 days by then: stale)
        await devices.register_device(member.id, f"fcm-{member.id:040d}", DevicePlatform.ANDROID, "1.0", "en")
    clock.set(datetime(2028, 1, 1, tzinfo=UTC))  # points expired, hold ended, vouchers expired, January

    # when each job runs three times at once (as in three worker processes), one job after the other
    per_job = [sum(await asyncio.gather(*(job.run() for _ in range(3)))) for job in jobs.JOBS]

    # then every unit was done by exactly one of the runs
    # (the push jobs have nothing configured here: tests/loyalty/test_automations.py runs them concurrently; no
    # referrals either: tests/loyalty/test_referrals.py runs reward-referrals concurrently)
    assert per_job == [12, 12, 12, 12, 12, 12, 12, 0, 0, 0]
    assert await LedgerEntry.filter(kind=EntryKind.EXPIRE).count() == 12
    assert await LedgerEntry.filter(kind=EntryKind.BIRTHDAY).count() == 12
    assert await OutboxEvent.filter(type="voucher.expired").count() == 12
    assert [await _tier_name(m.id) for m in members] == ["Member"] * 12
    assert await WalletPush.all().values_list("wanted", flat=True) == [1] * 12  # one push each
    assert await OutboxEvent.filter(type="membership.lapsed").count() == 12


async def test_refresh_wallet_passes_follows_points_into_the_expiring_soon_window(
    program: Program, clock: FrozenClock
) -> None:
    # given 100 points each (expiring on day 365) for a member with an Apple pass on a device, one with a saved
    # Google card, one with no card in a wallet, and a card holder whose points came 100 days later
    apple, google, no_wallet, later = await _members(4)
    for member in (apple, google, no_wallet):
        await give_available(member.id, 100)
    apple_pass = await wallet.ensure_pass(apple.id, WalletPlatform.APPLE, auth_token="t" * 24)
    await wallet.register_device(apple_pass, "device-1", "ab" * 32)
    google_pass = await wallet.ensure_pass(google.id, WalletPlatform.GOOGLE)
    await wallet.set_installed(google_pass, True)
    await GoogleWalletObject.create(
        member_id=google.id, object_id="issuer.member-1", next_attempt_at=clock.now(), created_at=clock.now()
    )
    clock.advance(100 * DAY)
    later_pass = await wallet.ensure_pass(later.id, WalletPlatform.APPLE, auth_token="u" * 24)
    await wallet.register_device(later_pass, "device-2", "cd" * 32)
    await give_available(later.id, 100, key="later")
    # (the passes as the consumers last refreshed them after those events)
    async with in_transaction() as conn:
        await wallet.refresh_aged_passes(conn, [apple.id, google.id, later.id], clock.now())
    tags = {p.id: p.update_tag for p in await WalletPass.all()}
    await WalletPush.all().update(sent=F("wanted"))
    await GoogleWalletObject.all().update(synced=F("wanted"))
    google_owed = (await GoogleWalletObject.get(member_id=google.id)).wanted

    # when the job runs on day 300 (nobody's points expire within 30 days)
    clock.advance(200 * DAY)
    assert await _run("refresh-wallet-passes") == 0

    # when it runs on day 340 (the first three members' points entered the window), in batches of one, and again
    clock.advance(40 * DAY)
    counts = (await jobs.refresh_wallet_passes(batch_size=1), await _run("refresh-wallet-passes"))

    # then the two cards in a wallet were refreshed once: Apple's tag moved and its device is owed a push,
    # Google's object is due; the later member's pass did not move
    assert counts == (2, 0)
    now = clock.now()
    after = {p.id: p for p in await WalletPass.all()}
    assert after[apple_pass.id].update_tag == wallet.next_update_tag(tags[apple_pass.id], now)
    assert after[apple_pass.id].last_updated == now
    assert after[later_pass.id].update_tag == tags[later_pass.id]
    assert await WalletPush.all().order_by("push_token").values_list("push_token", "wanted", "sent") == [
        ("ab" * 32, 2, 1),
        ("cd" * 32, 1, 1),
    ]
    row = await GoogleWalletObject.get(member_id=google.id)
    assert (row.wanted, row.synced, row.next_attempt_at) == (google_owed + 1, google_owed, now)
    content = await wallet.pass_content(await Member.get(id=apple.id), program, now)
    assert (content.expiring_points, content.expiring_at) == (100, now + 25 * DAY)
    assert after[apple_pass.id].content_digest == content.digest()

    # when a day passes: what the passes show (100 points, the same expiry) is the same: nothing to refresh
    clock.advance(DAY)
    assert await _run("refresh-wallet-passes") == 0
