"""The program's donation totals, kept per donation reward so the Rewards screen reads them in one small statement.

A donation is what a REDEEMED voucher of a donation reward gives: the reward's `value` (minor units) to its `cause`.
`donation_total` holds, per donation reward, how many such vouchers there are and the sum of their values. It is
written only by `count_donation`, in the transaction that moves a voucher to REDEEMED (a catalog donation is issued
already redeemed, `loyalty.rewards`; a stamp card's or an offer's voucher for a donation reward is redeemed at a
till, `loyalty.vouchers`). A REDEEMED voucher never changes status again (cancelling and expiry take only ACTIVE
vouchers, refunds leave vouchers alone), so there is nothing to subtract. Migration 0008 backfilled the table from
the vouchers there were; `rebuild_totals` does the same for code that inserts vouchers in bulk (the bench seed).

The write is one statement, an upsert whose increments the database applies to the current row (as
`loyalty.ledger._post` moves balances): no read-modify-write, so concurrent donations add up exactly, and the first
donation to a reward creates its row without a race. The amount added is the reward's `value` when the voucher is
redeemed: a later edit of the reward changes later donations, not the history. The totals are read per cause (the
reward's cause now), like the aggregate over the vouchers they replace.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import models, sql
from loyalty.models import RewardKind, VoucherStatus

# Adds one donation of the reward's value if `reward_id` is a donation reward; no row and no change otherwise.
_COUNT = (
    'INSERT INTO "donation_total" ("reward_id", "amount", "donations")'
    ' SELECT "id", "value", 1 FROM "reward" WHERE "id" = {0} AND "kind" = {1}'
    ' ON CONFLICT ("reward_id") DO UPDATE SET "amount" = "donation_total"."amount" + EXCLUDED."amount",'
    ' "donations" = "donation_total"."donations" + EXCLUDED."donations"'
)
_COUNT_SQL = {False: _COUNT.format("?", "?"), True: _COUNT.format("$1", "$2")}

# Every donation reward's totals from its REDEEMED vouchers (the table emptied first). Migration 0008 has a copy.
_REBUILD = (
    'INSERT INTO "donation_total" ("reward_id", "amount", "donations")'
    ' SELECT "r"."id", COUNT("v"."id") * "r"."value", COUNT("v"."id")'
    ' FROM "reward" AS "r" JOIN "voucher" AS "v" ON "v"."reward_id" = "r"."id"'
    ' WHERE "r"."kind" = {0} AND "v"."status" = {1} GROUP BY "r"."id", "r"."value"'
)
_REBUILD_SQL = {False: _REBUILD.format("?", "?"), True: _REBUILD.format("$1", "$2")}

_TOTALS = sql.statement(
    "donations.totals",
    models.DonationTotal,
    # By cause name, a reward without one under "" (both engines sort that first).
    'SELECT COALESCE("r"."cause", ?) AS "cause", SUM("t"."amount") AS "amount", SUM("t"."donations") AS "donations"'
    ' FROM "donation_total" AS "t" JOIN "reward" AS "r" ON "r"."id" = "t"."reward_id" GROUP BY 1 ORDER BY 1',
)


def _postgres(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"


async def count_donation(conn: BaseDBAsyncClient, reward_id: int) -> None:
    """Inside the caller's transaction `conn`, which has just moved a voucher for `reward_id` to REDEEMED: add it to
    the reward's donation totals if it is a donation reward (one statement; a no-op for any other reward)."""
    await conn.execute_query(_COUNT_SQL[_postgres(conn)], [reward_id, RewardKind.DONATION.value])


async def rebuild_totals(conn: BaseDBAsyncClient) -> None:
    """Recompute every donation total from the vouchers, inside `conn` (a transaction: the table is emptied first).

    For code that writes vouchers without the domain's entry points (bench/seed.py clones them in bulk)."""
    await conn.execute_query('DELETE FROM "donation_total"')
    await conn.execute_query(_REBUILD_SQL[_postgres(conn)], [RewardKind.DONATION.value, VoucherStatus.REDEEMED.value])


@dataclass(frozen=True)
class DonationTotal:
    cause: str
    amount: int  # minor units of the program's currency
    donations: int


async def donation_totals(conn: BaseDBAsyncClient | None = None) -> list[DonationTotal]:
    """Total donated per cause (by cause name; a reward without a cause as ""): one statement over the small
    per-reward table, whatever the number of donations."""
    rows = await sql.fetch(_TOTALS, [""], conn=conn)
    return [DonationTotal(row["cause"], int(row["amount"]), int(row["donations"])) for row in rows]
