"""The maintained donation totals (loyalty/donations.py): after every path they equal the aggregate over the vouchers
they replace, concurrent donations add up exactly, and migration 0008 backfills them."""

from __future__ import annotations

import asyncio
import importlib
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from tortoise import connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.exceptions import BaseORMException
from tortoise.functions import Count, Sum
from tortoise.migrations.api import migrate as run_migrations
from tortoise.models import Model
from tortoise.transactions import in_transaction

from loyalty import clock, donations, jobs, rewards, vouchers
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.db import connect, disconnect, tortoise_config
from loyalty.errors import InsufficientPoints
from loyalty.members import enroll_member
from loyalty.models import (
    DonationTotal,
    EntryKind,
    Member,
    Program,
    Reward,
    RewardKind,
    StaffRole,
    StampCard,
    Voucher,
    VoucherStatus,
)
from tests.loyalty import ledger_helpers

M = TypeVar("M", bound=Model)
TILL = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",))
Total = donations.DonationTotal


async def aggregate() -> list[Total]:
    """What the Rewards screen used to compute on every request: every REDEEMED donation voucher, per cause."""
    rows = (
        await Voucher.filter(reward__kind=RewardKind.DONATION, status=VoucherStatus.REDEEMED)
        .annotate(amount=Sum("reward__value"), n=Count("id"))
        .group_by("reward__cause")
        .order_by("reward__cause")
        .values_list("reward__cause", "amount", "n")
    )
    # (ordered here: the engines sort NULL differently)
    return sorted((Total(cause or "", int(amount or 0), int(n)) for cause, amount, n in rows), key=lambda t: t.cause)


async def assert_totals(expected: list[Total]) -> None:
    assert await donations.donation_totals() == expected
    assert await aggregate() == expected


async def member_with(uid: str, points: int) -> Member:
    member, _ = await enroll_member(uid)
    if points:
        await ledger_helpers.credit_points(member.id, points, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
    return await Member.get(id=member.id)


async def donation(name: str, value: int, cause: str | None, cost: int = 100) -> Reward:
    return await Reward.create(name=name, kind=RewardKind.DONATION, points_cost=cost, value=value, cause=cause)


async def test_catalog_donations_are_counted_per_reward_and_read_per_cause(program: Program) -> None:
    # given nothing donated: no totals
    await assert_totals([])
    member = await member_with("u1", 1_000)
    trees = await donation("Plant a tree", 500, "Forests")
    more_trees = await donation("Plant a forest", 2_000, "Forests", cost=400)
    sea = await donation("Clean a beach", 200, "Oceans", cost=50)
    nameless = await donation("Give", 7, None, cost=10)

    # when the member donates through each (twice through one)
    for key, reward in enumerate((trees, trees, more_trees, sea, nameless)):
        await rewards.redeem_reward(member.id, reward.id, idempotency_key=f"k{key}")
    # and retries one (idempotent: no second donation)
    await rewards.redeem_reward(member.id, trees.id, idempotency_key="k0")

    # then one row per reward, read per cause (no cause as "", first in order)
    await assert_totals([Total("", 7, 1), Total("Forests", 3_000, 3), Total("Oceans", 200, 1)])
    rows = await DonationTotal.all().order_by("reward_id").values_list("reward_id", "amount", "donations")
    assert rows == [(trees.id, 1_000, 2), (more_trees.id, 2_000, 1), (sea.id, 200, 1), (nameless.id, 7, 1)]


async def test_a_refused_donation_counts_nothing(program: Program) -> None:
    member = await member_with("u1", 99)
    trees = await donation("Plant a tree", 500, "Forests")

    with pytest.raises(InsufficientPoints):
        await rewards.redeem_reward(member.id, trees.id, idempotency_key="k1")

    await assert_totals([])
    assert await DonationTotal.all().count() == 0


async def test_a_donation_voucher_cannot_be_cancelled_so_its_total_stays(program: Program) -> None:
    member = await member_with("u1", 300)
    trees = await donation("Plant a tree", 500, "Forests")
    voucher_id = await rewards.redeem_reward(member.id, trees.id, idempotency_key="k1")

    with pytest.raises(vouchers.AlreadyRedeemed):
        await vouchers.cancel_voucher(member.id, voucher_id)

    await assert_totals([Total("Forests", 500, 1)])


async def test_a_stamp_card_donation_voucher_counts_when_handed_in_not_when_issued_or_expired(
    program: Program, clock: FrozenClock
) -> None:
    # given a stamp card whose reward is a donation, and a free product's card
    member, _ = await enroll_member("u1")
    trees = await donation("Plant a tree", 500, "Forests")
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=25, value=300)
    card = await StampCard.create(name="Trees card", stamps_required=5, reward=trees)
    coffee_card = await StampCard.create(name="Coffee card", stamps_required=5, reward=coffee)
    async with in_transaction() as conn:
        handed_in = await vouchers.issue_voucher(conn, member.id, reward=trees, stamp_card=card)
        forgotten = await vouchers.issue_voucher(conn, member.id, reward=trees, stamp_card=card)
        free = await vouchers.issue_voucher(conn, member.id, reward=coffee, stamp_card=coffee_card)

    # when issued (ACTIVE): nothing donated yet
    await assert_totals([])

    # when one is handed in at a till, and the coffee too
    await vouchers.redeem_member_voucher(
        TILL, member_id=member.id, voucher_id=handed_in.id, store_code="S1", idempotency_key="k1"
    )
    await vouchers.redeem_voucher(TILL, code=free.code, store_code="S1", member_id=member.id)
    await assert_totals([Total("Forests", 500, 1)])
    assert await DonationTotal.filter(reward_id=coffee.id).count() == 0  # no row for a reward that is no donation

    # when the other expires unused (and the job marks it): still one donation
    clock.advance(timedelta(days=trees.voucher_valid_days))
    assert await jobs.expire_vouchers() == 1
    assert (await Voucher.get(id=forgotten.id)).status == VoucherStatus.EXPIRED
    with pytest.raises(vouchers.VoucherExpired):
        await vouchers.redeem_voucher(TILL, code=forgotten.code, store_code="S1", member_id=member.id)
    await assert_totals([Total("Forests", 500, 1)])


async def test_a_donation_counts_the_value_of_the_day_a_later_edit_leaves_history(program: Program) -> None:
    member = await member_with("u1", 300)
    trees = await donation("Plant a tree", 500, "Forests")
    await rewards.redeem_reward(member.id, trees.id, idempotency_key="k1")

    await Reward.filter(id=trees.id).update(value=800)
    await rewards.redeem_reward(member.id, trees.id, idempotency_key="k2")

    # 500 then 800 were given (the old aggregate would say 2 x 800)
    assert await donations.donation_totals() == [Total("Forests", 1_300, 2)]


async def test_rebuild_and_the_migration_backfill_equal_the_aggregate(program: Program) -> None:
    # given donations through the catalog and a till, then the table emptied (as before migration 0008)
    member = await member_with("u1", 1_000)
    trees = await donation("Plant a tree", 500, "Forests")
    sea = await donation("Clean a beach", 200, "Oceans", cost=50)
    card = await StampCard.create(name="Trees card", stamps_required=5, reward=trees)
    for key, reward in enumerate((trees, sea, sea)):
        await rewards.redeem_reward(member.id, reward.id, idempotency_key=f"k{key}")
    async with in_transaction() as conn:
        cards = [await vouchers.issue_voucher(conn, member.id, reward=trees, stamp_card=card) for _ in range(2)]
    await vouchers.redeem_voucher(TILL, code=cards[0].code, store_code="S1", member_id=member.id)
    expected = [Total("Forests", 1_000, 2), Total("Oceans", 400, 2)]
    await assert_totals(expected)
    migration = importlib.import_module("loyalty.migrations.0008_donation_totals")
    conn = connections.get("default")

    for refill in (
        lambda: donations.rebuild_totals(conn),
        lambda: migration.backfill(None, SimpleNamespace(client=conn)),
    ):
        await DonationTotal.all().delete()
        assert await donations.donation_totals() == []
        # when the totals are recomputed from the vouchers
        await refill()
        # then they are what was kept
        await assert_totals(expected)
    # rebuilding over existing rows replaces them (does not add)
    await donations.rebuild_totals(conn)
    await assert_totals(expected)
    # and the migration's backward step empties the table
    await migration.forget(None, SimpleNamespace(client=conn))
    assert await DonationTotal.all().count() == 0


async def _migrate_to(database_url: str, target: str) -> None:
    await disconnect()
    EXECUTOR_CACHE.clear()
    try:
        await run_migrations(config=tortoise_config(database_url), target=target)
    finally:
        await disconnect()
        EXECUTOR_CACHE.clear()
        await connect(database_url)


async def _insert_into_older_schema(model: type[M], **values: Any) -> M:
    """Insert a row the way today's model would, into a table of an older schema: only the columns the table has.

    (Today's `Model.create` writes every column today's model has: later migrations' columns break it.)
    """
    conn = connections.get("default")
    table = model._meta.db_table
    if conn.capabilities.dialect == "postgres":
        _, rows = await conn.execute_query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", [table]
        )
        existing = {row["column_name"] for row in rows}
    else:
        _, rows = await conn.execute_query(f'PRAGMA table_info("{table}")')
        existing = {row["name"] for row in rows}
    instance = model(**values)
    columns = [
        (column, model._meta.fields_map[name].to_db_value(getattr(instance, name), instance))
        for name, column in model._meta.fields_db_projection.items()
        if column in existing and name != model._meta.pk_attr
    ]
    marks = [f"${i}" if conn.capabilities.dialect == "postgres" else "?" for i in range(1, len(columns) + 1)]
    names = ", ".join(f'"{column}"' for column, _ in columns)
    rows = await conn.execute_query_dict(  # (`execute_query` drops PostgreSQL's RETURNING rows of an INSERT)
        f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(marks)}) RETURNING "id"',
        [value for _, value in columns],
    )
    instance.pk = rows[0]["id"]
    instance._saved_in_db = True
    return instance


async def test_migration_0008_backfills_the_vouchers_of_a_database_at_0007(db: str, program: Program) -> None:
    # given the database back at 0007 (no donation_total), with donation vouchers in every status and a redeemed
    # voucher of a reward that is no donation, written as the code of 0007 did (no totals)
    await _migrate_to(db, "loyalty.0007_google_wallet")
    try:
        with pytest.raises(BaseORMException, match="donation_total"):  # the table is gone
            await DonationTotal.all().count()
        now = clock.now()
        member = await _insert_into_older_schema(
            Member, firebase_uid="u1", member_number="0000000018", card_secret="s", created_at=now, updated_at=now
        )
        trees, sea, coffee = [
            await _insert_into_older_schema(Reward, name=name, kind=kind, points_cost=100, value=value, cause=cause)
            for name, kind, value, cause in [
                ("Plant a tree", RewardKind.DONATION, 500, "Forests"),
                ("Clean a beach", RewardKind.DONATION, 200, "Oceans"),
                ("Coffee", RewardKind.FREE_PRODUCT, 300, None),
            ]
        ]
        made = [
            (trees, VoucherStatus.REDEEMED),
            (trees, VoucherStatus.REDEEMED),
            (trees, VoucherStatus.ACTIVE),
            (sea, VoucherStatus.REDEEMED),
            (sea, VoucherStatus.EXPIRED),
            (sea, VoucherStatus.CANCELLED),
            (coffee, VoucherStatus.REDEEMED),
        ]
        async with in_transaction() as conn:
            for reward, status in made:
                voucher = await vouchers.issue_voucher(conn, member.id, reward=reward)
                await Voucher.filter(id=voucher.id).using_db(conn).update(status=status)
        before = await aggregate()
    finally:
        # when it migrates to 0008 (also the next tests' schema)
        await _migrate_to(db, "loyalty")

    # then the totals are the aggregate of the vouchers that were there
    assert before == [Total("Forests", 1_000, 2), Total("Oceans", 200, 1)]
    await assert_totals(before)
    assert await DonationTotal.all().order_by("reward_id").values_list("reward_id", "donations") == [
        (trees.id, 2),
        (sea.id, 1),
    ]


async def test_counting_a_reward_that_is_unknown_or_no_donation_writes_nothing(program: Program) -> None:
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=25, value=300)
    async with in_transaction() as conn:
        await donations.count_donation(conn, coffee.id)
        await donations.count_donation(conn, 10_000)
    assert await DonationTotal.all().count() == 0


@pytest.mark.postgres_only
async def test_concurrent_donations_add_up_exactly(program: Program) -> None:
    # given twelve members and two donation rewards nobody has donated to yet (the first upserts race to insert)
    members = [await member_with(f"u{i}", 1_000) for i in range(12)]
    trees = await donation("Plant a tree", 500, "Forests")
    sea = await donation("Clean a beach", 200, "Oceans", cost=50)

    # when each donates three times to each, all at once
    async def give(member: Member, reward: Reward, n: int) -> Any:
        return await rewards.redeem_reward(member.id, reward.id, idempotency_key=f"{reward.id}-{n}")

    results = await asyncio.gather(
        *(give(m, r, n) for m in members for r in (trees, sea) for n in range(3)), return_exceptions=True
    )

    # then every donation is counted once
    assert [r for r in results if isinstance(r, BaseException)] == []
    await assert_totals([Total("Forests", 12 * 3 * 500, 36), Total("Oceans", 12 * 3 * 200, 36)])


@pytest.mark.postgres_only
async def test_concurrent_upserts_of_a_new_reward_add_up_exactly(program: Program) -> None:
    # given a donation reward without a row yet; redemptions of one reward also queue on its stock UPDATE, so here
    # the upserts race alone: forty transactions at once, each counting one donation and holding its lock a moment
    trees = await donation("Plant a tree", 500, "Forests")

    async def count() -> None:
        async with in_transaction() as conn:
            await donations.count_donation(conn, trees.id)
            await asyncio.sleep(0.005)

    await asyncio.gather(*(count() for _ in range(40)))

    # then one row, every donation counted once
    assert await DonationTotal.filter(reward_id=trees.id).values_list("amount", "donations") == [(20_000, 40)]
    assert await donations.donation_totals() == [Total("Forests", 20_000, 40)]
