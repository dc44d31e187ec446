"""The write path's SQL budget: the exact statements a purchase, a replay and a refund send, on both engines.

Counted from Tortoise's statement log (`tests.schema.conftest.SQLCounter`); BEGIN and COMMIT are not logged (one pair
per operation). A change that adds a statement to the write path fails here: decide, then update the budget and the
statement list in `loyalty.purchases._earn` / `_refund`'s docstrings and bench/README.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from strawberry import relay

from loyalty.cashback import spend_cashback
from loyalty.clock import FrozenClock
from loyalty.models import BonusRule, Campaign, Member, OutboxEvent, Program, Reward, RewardKind, Voucher
from loyalty.program import cached_program
from loyalty.purchases import refund_purchase
from loyalty.rewards import redeem_reward
from tests.invariants import assert_next_settle_at_exact
from tests.loyalty.ledger_helpers import give_available, new_member, redeem_points
from tests.loyalty.purchase_helpers import CASHIER, buy, line, stamp_card
from tests.schema.conftest import SQLCounter
from tests.schema.staff.conftest import run_staff

# idempotency record, member lock (with the configuration's version), the day's spending and the period's qualifying
# value (one statement), purchase, lines, qualifying credit, lot, member UPDATE, ledger entry, outbox, audit,
# idempotency response
PLAIN_PURCHASE = 12
# + the stamp card's progress (read, update)
STAMPED_PURCHASE = PLAIN_PURCHASE + 2
# a replay: the record's insert collides, then it is read
REPLAY = 2
# idempotency record, member lock (by receipt, with the configuration's version), purchase, the receipt's cashback
# spends, its lots, member UPDATE, entry, the lot taken from, allocations, refund, purchase totals, qualifying credit,
# outbox, audit, idempotency response
REFUND = 15
# + the cashback's return: the member's cashback UPDATE, the RETURN entry, its event
CASHBACK_REFUND = REFUND + 3

RECORD = """
mutation($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) { purchase { points } member { points { pending } } userErrors { code } }
}
"""


@pytest.fixture(autouse=True)
async def exact_next_settle_at(db: str) -> AsyncIterator[None]:
    """The write path keeps `next_settle_at` without re-reading the lots: after every test here it is exact."""
    yield
    await assert_next_settle_at_exact()


@contextmanager
def counted() -> Iterator[SQLCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = SQLCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)


def kinds(statements: list[str]) -> list[str]:
    """Each statement as its verb and table: `INSERT purchase`, `SELECT member`, `UPDATE member` (a SELECT's table
    is its outer FROM's, not a subquery's)."""
    described = []
    for statement in statements:
        words = statement.replace('"', "").split()
        verb = words[0]
        if verb == "SELECT":
            depth, table = 0, ""
            for word, following in pairwise(words):
                if word == "FROM" and depth == 0:
                    table = following
                    break
                depth += word.count("(") - word.count(")")
        elif verb == "INSERT":
            table = words[2]
        else:
            table = words[1]
        described.append(f"{verb} {table}")
    return described


async def test_a_plain_purchase_sends_12_statements(program: Program, clock: FrozenClock) -> None:
    # given a member with an earlier purchase (the configuration snapshot is loaded)
    member = await new_member("uid-budget")
    await buy(member.id, "R0", [line("A", 1_000)])

    # when a receipt of three lines is recorded
    with counted() as counter:
        recorded = await buy(member.id, "R1", [line("A", 1_000), line("B", 2_000, quantity=2), line("C", 500)])

    # then
    assert recorded.points == 35
    assert kinds(counter.statements) == [
        "INSERT idempotency_record",
        "SELECT member",
        "SELECT member",
        "INSERT purchase",
        "INSERT purchase_line",
        "INSERT qualifying_credit",
        "INSERT points_lot",
        "UPDATE member",
        "INSERT ledger_entry",
        "INSERT outbox_event",
        "INSERT audit_log",
        "UPDATE idempotency_record",
    ]
    assert len(counter.statements) == PLAIN_PURCHASE


async def test_a_purchase_with_a_campaign_a_bonus_rule_and_a_stamp_card_sends_two_more(
    program: Program, clock: FrozenClock
) -> None:
    # given a double-points campaign, a bonus rule and a stamp card, all matching
    now = clock.now()
    await Campaign.create(
        name="Double", multiplier=Decimal(2), starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )
    await BonusRule.create(name="Beans", match_type="category", match_value="coffee", points_per_item=10)
    card = await stamp_card(required=10, match_category="coffee")
    member = await new_member("uid-budget")
    await buy(member.id, "R0", [line("BEANS", 1_000, category="coffee")])

    # when
    with counted() as counter:
        recorded = await buy(member.id, "R1", [line("BEANS", 1_000, category="coffee", quantity=2), line("B", 500)])

    # then the campaign, the rule and the card came from the snapshot: only the card's progress is read and written
    assert (recorded.points, recorded.breakdown.campaigns, recorded.breakdown.bonus_rules) == (
        50,
        ["Double"],
        ["Beans"],
    )
    assert [(s.card_id, s.added, s.stamps) for s in recorded.stamps] == [(card.id, 2, 3)]
    assert kinds(counter.statements)[8:11] == ["INSERT ledger_entry", "SELECT stamp_progress", "UPDATE stamp_progress"]
    assert len(counter.statements) == STAMPED_PURCHASE


async def test_a_first_stamp_inserts_the_progress_and_a_completion_reads_the_reward(
    program: Program, clock: FrozenClock
) -> None:
    # given a 2-stamp card and a member without progress on it
    card = await stamp_card(required=2, match_category="coffee")
    member = await new_member("uid-budget")
    await buy(member.id, "R0", [line("A", 1_000)])

    # when the first purchase completes the card
    with counted() as counter:
        recorded = await buy(member.id, "R1", [line("BEANS", 1_000, category="coffee", quantity=3)])

    # then: progress read, the reward, the voucher, the new progress row; the voucher's event joins the batch
    assert [(s.card_id, s.stamps, s.vouchers_issued) for s in recorded.stamps] == [(card.id, 1, 1)]
    assert kinds(counter.statements)[9:14] == [
        "SELECT stamp_progress",
        "SELECT reward",
        "INSERT voucher",
        "INSERT stamp_progress",
        "INSERT outbox_event",
    ]
    assert len(counter.statements) == PLAIN_PURCHASE + 4
    assert await Voucher.filter(member_id=member.id, stamp_card_id=card.id).count() == 1
    assert await OutboxEvent.filter(member_id=member.id).order_by("id").values_list("type", flat=True) == [
        "member.enrolled",
        "points.earned",
        "points.earned",
        "voucher.issued",
    ]


async def test_an_idempotent_replay_sends_2_statements(program: Program, clock: FrozenClock) -> None:
    # given a recorded receipt
    member = await new_member("uid-budget")
    first = await buy(member.id, "R1", [line("A", 1_000)])

    # when it is sent again
    with counted() as counter:
        again = await buy(member.id, "R1", [line("A", 1_000)])

    # then the first answer, from the record its insert collided with
    assert again == first
    assert kinds(counter.statements) == ["INSERT idempotency_record", "SELECT idempotency_record"]
    assert len(counter.statements) == REPLAY


async def test_a_refund_by_amount_sends_15_statements(program: Program, clock: FrozenClock) -> None:
    # given a purchase whose points are still pending
    member = await new_member("uid-budget")
    await buy(member.id, "R1", [line("A", 4_000)])

    # when half of it is refunded
    with counted() as counter:
        result = await refund_purchase(CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=2_000)

    # then the purchase's own lot covers the points: other lots are not read
    assert (result.points_reversed, result.points_recovered, result.unrecovered) == (20, 20, 0)
    assert kinds(counter.statements) == [
        "INSERT idempotency_record",
        "SELECT member",
        "SELECT purchase",
        "SELECT cashback_entry",
        "SELECT points_lot",
        "UPDATE member",
        "INSERT ledger_entry",
        "UPDATE points_lot",
        "INSERT lot_allocation",
        "INSERT refund",
        "UPDATE purchase",
        "INSERT qualifying_credit",
        "INSERT outbox_event",
        "INSERT audit_log",
        "UPDATE idempotency_record",
    ]
    assert len(counter.statements) == REFUND
    assert (await Member.get(id=member.id)).points_pending == 20


async def test_a_refund_of_a_receipt_paid_partly_with_cashback_adds_its_return(
    program: Program, clock: FrozenClock
) -> None:
    # given a purchase of which €4.00 was paid with cashback
    member = await new_member("uid-budget")
    await give_available(member.id, 100)
    back = await Reward.create(name="Back", kind=RewardKind.CASHBACK, points_cost=100, value=1_000)
    await redeem_reward(member.id, back.id, idempotency_key="c1")
    await buy(member.id, "R1", [line("A", 4_000)])
    await spend_cashback(CASHIER, member.id, store_code="S1", receipt_id="R1", amount=400, idempotency_key="s1")

    # when half of it is refunded
    with counted() as counter:
        result = await refund_purchase(CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=2_000)

    # then half the cashback comes back: its UPDATE, entry and event after the points' qualifying credit
    assert result.cashback_returned == 200
    assert kinds(counter.statements)[11:15] == [
        "INSERT qualifying_credit",
        "UPDATE member",
        "INSERT cashback_entry",
        "INSERT outbox_event",
    ]
    assert len(counter.statements) == CASHBACK_REFUND


async def test_a_full_refund_of_the_earliest_lot_reads_the_next_settle_time_again(
    program: Program, clock: FrozenClock
) -> None:
    # given two purchases a day apart: the first one's lot matures first
    member = await new_member("uid-budget")
    await buy(member.id, "R1", [line("A", 1_000)])
    clock.advance(timedelta(days=1))
    await buy(member.id, "R2", [line("A", 2_000)])
    assert (await Member.get(id=member.id)).next_settle_at == clock.now() + timedelta(days=13)

    # when the first purchase is refunded in full
    with counted() as counter:
        await refund_purchase(CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=1_000)

    # then the emptied lot was the earliest: two reads find the next one (the second purchase's)
    assert kinds(counter.statements)[4:7] == ["SELECT points_lot"] * 3
    assert len(counter.statements) == REFUND + 2
    assert (await Member.get(id=member.id)).next_settle_at == clock.now() + timedelta(days=14)


async def test_a_configuration_change_reloads_the_snapshot_once(program: Program, clock: FrozenClock) -> None:
    # given a recorded purchase (snapshot loaded)
    member = await new_member("uid-budget")
    await buy(member.id, "R0", [line("A", 1_000)])

    # when a campaign is created, then two receipts follow
    now = clock.now()
    await Campaign.create(
        name="Triple", multiplier=Decimal(3), starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )
    with counted() as first:
        reloaded = await buy(member.id, "R1", [line("A", 1_000)])
    with counted() as second:
        cached = await buy(member.id, "R2", [line("A", 1_000)])

    # then the first reloads (program, tiers, campaigns, bonus rules, stamp cards, membership plans, the referral
    # policy) after the member's lock read the new version, and earns triple; the next does not reload
    assert (reloaded.points, cached.points) == (30, 30)
    assert kinds(first.statements)[1:9] == [
        "SELECT member",
        "SELECT program",
        "SELECT tier",
        "SELECT campaign",
        "SELECT bonus_rule",
        "SELECT stamp_card",
        "SELECT membership_plan",
        "SELECT referral_policy",
    ]
    assert (len(first.statements), len(second.statements)) == (PLAIN_PURCHASE + 7, PLAIN_PURCHASE)


async def test_next_settle_at_stays_exact_through_a_history_of_purchases_and_refunds(
    program: Program, clock: FrozenClock
) -> None:
    # given a member who buys, lets lots mature and expire, and returns goods, checked after every step
    member = await new_member("uid-history")
    steps = [
        lambda: buy(member.id, "R1", [line("A", 5_000)]),
        lambda: buy(member.id, "R2", [line("A", 3_000)]),
        lambda: refund_purchase(CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000),
    ]
    for step in steps:
        await step()
        await assert_next_settle_at_exact()
    clock.advance(timedelta(days=20))  # R2's lot matured (not yet settled)
    await buy(member.id, "R3", [line("A", 1_000)])  # settles first: R2 available, expiring in a year
    await assert_next_settle_at_exact()
    await refund_purchase(CASHIER, store_code="S1", receipt_id="R2", refund_id="F2", amount=3_000)
    await assert_next_settle_at_exact()
    clock.advance(timedelta(days=400))  # R3 matured and expired
    recorded = await buy(member.id, "R4", [line("A", 2_000)])
    await assert_next_settle_at_exact()

    # then
    stored = await Member.get(id=member.id)
    assert (stored.points_available, stored.points_pending, recorded.points) == (0, 20, 20)
    assert stored.next_settle_at == clock.now() + timedelta(days=14)


async def test_purchase_record_on_the_staff_schema_adds_one_read_for_the_payload_member(
    program: Program, clock: FrozenClock
) -> None:
    # given a member with an earlier purchase, and the till's mutation asking for the member too
    member = await new_member("uid-budget")
    await buy(member.id, "R0", [line("A", 1_000)])
    variables = {
        "input": {
            "member": relay.to_base64("Member", member.id),
            "storeCode": "S1",
            "receiptId": "R1",
            "occurredAt": clock.now().isoformat(),
            "currency": "EUR",
            "total": 3_000,
            "lines": [{"sku": "A", "amount": 1_000}, {"sku": "B", "quantity": 2, "amount": 2_000}],
        }
    }

    await cached_program()  # the read paths' program cache (a few seconds in production) is warm

    # when
    with counted() as counter:
        result = await run_staff(RECORD, CASHIER, variables)

    # then the purchase's statements and the payload's member (one loader read after the commit)
    assert result.errors is None
    assert result.data == {
        "purchaseRecord": {
            "purchase": {"points": 30},
            "member": {"points": {"pending": 40}},
            "userErrors": [],
        }
    }
    assert kinds(counter.statements)[PLAIN_PURCHASE:] == ["SELECT member"]
    assert len(counter.statements) == PLAIN_PURCHASE + 1


async def test_a_receipt_that_earns_nothing_writes_no_lot_entry_or_credit(program: Program, clock: FrozenClock) -> None:
    # given a member who bought a minute ago
    member = await new_member("uid-budget")
    await buy(member.id, "R0", [line("A", 1_000)])
    clock.advance(timedelta(minutes=1))

    # when a receipt of free items comes in
    with counted() as counter:
        recorded = await buy(member.id, "R1", [line("FREEBIE", 0)])

    # then no points, and the member row only moves its last purchase time
    assert recorded.points == 0
    assert kinds(counter.statements) == [
        "INSERT idempotency_record",
        "SELECT member",
        "SELECT member",
        "INSERT purchase",
        "INSERT purchase_line",
        "UPDATE member",
        "INSERT outbox_event",
        "INSERT audit_log",
        "UPDATE idempotency_record",
    ]
    assert (await Member.get(id=member.id)).last_purchase_at == clock.now()


async def test_a_debit_across_two_lots_and_a_credit_keep_to_their_statements(
    program: Program, clock: FrozenClock
) -> None:
    # given two available lots of 30 and 50 points, the first expiring first
    member = await new_member("uid-budget")
    await give_available(member.id, 30, key="first")
    clock.advance(timedelta(days=1))
    await give_available(member.id, 50, key="second")

    # when 40 points are redeemed
    with counted() as debit:
        redeemed = await redeem_points(member.id, 40, idempotency_key="K1")

    # then the lots are read before the balance moves, so next_settle_at (the first lot's expiry, now emptied) is
    # read again and written in the balance's UPDATE; the two allocations are one batch
    assert redeemed.balance == 40
    assert kinds(debit.statements) == [
        "INSERT idempotency_record",
        "SELECT member",
        "SELECT points_lot",
        "SELECT points_lot",
        "SELECT points_lot",
        "UPDATE member",
        "INSERT ledger_entry",
        "UPDATE points_lot",
        "UPDATE points_lot",
        "INSERT lot_allocation",
        "INSERT outbox_event",
        "UPDATE idempotency_record",
    ]

    # when points are credited (no settle: nothing is due)
    with counted() as credit:
        await give_available(member.id, 10, key="third")

    # then
    assert kinds(credit.statements) == [
        "INSERT idempotency_record",
        "SELECT member",
        "SELECT program",
        "SELECT tier",
        "INSERT points_lot",
        "UPDATE member",
        "INSERT ledger_entry",
        "INSERT outbox_event",
        "UPDATE idempotency_record",
    ]
    assert (await Member.get(id=member.id)).points_available == 50
