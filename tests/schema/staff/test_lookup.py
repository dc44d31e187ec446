"""memberLookup: by member number, rotating card code (single-use, within its window), phone or email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from strawberry import relay
from tortoise.transactions import in_transaction

from loyalty import card, vouchers
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member, is_valid_member_number
from loyalty.models import CardCodeUse, Member, Reward, RewardKind, StampCard, StampProgress, Voucher
from loyalty.program import cached_plans, cached_program
from tests.conftest import START
from tests.loyalty import ledger_helpers
from tests.loyalty.test_offers import new_offer
from tests.schema.conftest import SQLCounter
from tests.schema.staff.conftest import run_staff

LOOKUP = """
query Lookup($query: String!) {
  memberLookup(query: $query) {
    id memberNumber name
    points { available pending }
    tier { current { name } next { name } qualifyingValue nextThreshold remainingToNext progress }
  }
}
"""
PERIOD = 60  # the test program's card_code_seconds


async def _lookup(query: str, actor: Actor) -> Any:
    result = await run_staff(LOOKUP, actor, {"query": query})
    assert result.errors is None, result.errors
    return result.data["memberLookup"]


def _barcode(member: Member, clock: FrozenClock) -> str:
    return card.card_code(member, clock.now(), PERIOD).barcode_value


async def test_lookup_by_member_number_shows_the_summary(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    # given 600 points available (Silver reached) and a purchase still in its return window
    await ledger_helpers.earn_for_purchase(
        anna.id, store_code="S1", receipt_id="R1", occurred_at=clock.now(), currency="EUR", total=60_000
    )
    clock.advance(timedelta(days=15))
    await ledger_helpers.earn_for_purchase(
        anna.id, store_code="S1", receipt_id="R2", occurred_at=clock.now(), currency="EUR", total=8_000
    )

    summary = await _lookup(anna.member_number, cashier)

    assert summary == {
        "id": relay.to_base64("Member", anna.id),
        "memberNumber": anna.member_number,
        "name": "Anna",
        "points": {"available": 600, "pending": 100},  # 80 EUR at Silver's 1.25
        "tier": {
            "current": {"name": "Silver"},
            "next": {"name": "Gold"},
            "qualifyingValue": 680,
            "nextThreshold": 2000,
            "remainingToNext": 1320,
            "progress": 0.12,
        },
    }


async def test_the_card_barcode_finds_the_member_once(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    barcode = _barcode(anna, clock)

    assert (await _lookup(barcode, cashier))["memberNumber"] == anna.member_number
    assert await _lookup(barcode, cashier) is None  # a screenshot or a replay of the same scan
    assert await CardCodeUse.filter(member_id=anna.id).count() == 1


async def test_the_code_of_the_previous_window_is_still_accepted(
    anna: Member, cashier: Actor, clock: FrozenClock
) -> None:
    barcode = _barcode(anna, clock)
    clock.advance(timedelta(seconds=PERIOD))

    assert (await _lookup(barcode, cashier))["memberNumber"] == anna.member_number


async def test_a_phone_clock_one_window_ahead_is_accepted_two_are_not(
    anna: Member, cashier: Actor, clock: FrozenClock
) -> None:
    # given a pass on a phone whose clock runs ahead: it shows the next window's code, or the one after
    one_ahead = card.card_code(anna, clock.now() + timedelta(seconds=PERIOD), PERIOD).barcode_value
    two_ahead = card.card_code(anna, clock.now() + timedelta(seconds=2 * PERIOD), PERIOD).barcode_value

    assert (await _lookup(one_ahead, cashier))["memberNumber"] == anna.member_number
    assert await _lookup(two_ahead, cashier) is None
    assert await CardCodeUse.filter(member_id=anna.id).count() == 1


async def test_a_replay_in_the_next_window_is_still_refused(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    barcode = _barcode(anna, clock)
    assert (await _lookup(barcode, cashier))["memberNumber"] == anna.member_number
    clock.advance(timedelta(seconds=PERIOD))

    assert await _lookup(barcode, cashier) is None
    assert await CardCodeUse.filter(member_id=anna.id).count() == 1


async def test_an_expired_code_is_refused(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    barcode = _barcode(anna, clock)
    clock.advance(timedelta(seconds=2 * PERIOD))

    assert await _lookup(barcode, cashier) is None
    assert await CardCodeUse.all().count() == 0


async def test_a_code_seen_in_an_earlier_window_is_no_reuse(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    # given the same six digits were used an hour ago (codes come round again, one in a million per window)
    code = card.card_code(anna, clock.now(), PERIOD)
    window = int(clock.now().timestamp()) // PERIOD
    await CardCodeUse.create(member_id=anna.id, code=f"{window - 60}{code.code}", used_at=clock.now())

    assert (await _lookup(code.barcode_value, cashier))["memberNumber"] == anna.member_number


async def test_another_members_code_does_not_open_this_member(
    anna: Member, bo: Member, cashier: Actor, clock: FrozenClock
) -> None:
    bos_code = card.card_code(bo, clock.now(), PERIOD).code

    assert await _lookup(anna.member_number + bos_code, cashier) is None


async def test_lookup_by_email_ignores_case(anna: Member, cashier: Actor) -> None:
    assert (await _lookup("  Anna@Example.com ", cashier))["name"] == "Anna"


async def test_lookup_by_phone_ignores_punctuation(anna: Member, cashier: Actor) -> None:
    await Member.filter(id=anna.id).update(phone="+46701234567")

    assert (await _lookup("+46 70-123 45 67", cashier))["name"] == "Anna"
    assert (await _lookup("+46701234567", cashier))["name"] == "Anna"


async def test_a_phone_number_that_passes_the_luhn_check_still_finds_by_phone(anna: Member, cashier: Actor) -> None:
    await Member.filter(id=anna.id).update(phone="0701234569")
    assert is_valid_member_number("0701234569")

    assert (await _lookup("0701234569", cashier))["name"] == "Anna"


async def test_an_ambiguous_email_finds_nobody(anna: Member, cashier: Actor) -> None:
    await enroll_member("uid-anna-2", email="anna@example.com", display_name="Another Anna")

    assert await _lookup("anna@example.com", cashier) is None


async def test_misses_are_null_without_errors(anna: Member, cashier: Actor) -> None:
    wrong_check_digit = anna.member_number[:-1] + str((int(anna.member_number[-1]) + 1) % 10)
    for query in [
        "",
        "   ",
        "nobody@example.com",
        wrong_check_digit,
        "1234567",
        "x" * 300,
        "0000000000000000",
        "١٢٣٤٥٦٧٨٩٠",
    ]:
        assert await _lookup(query, cashier) is None, query


async def test_the_lookup_runs_a_constant_number_of_sql_statements(
    anna: Member, cashier: Actor, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    await cached_program()  # the program is cached per process for a few seconds
    by_number, by_card = [], []
    for _ in range(3):
        sql_counter.statements.clear()
        await _lookup(anna.member_number, cashier)
        by_number.append(len(sql_counter.statements))
        sql_counter.statements.clear()
        await _lookup(_barcode(anna, clock), cashier)
        by_card.append(len(sql_counter.statements))
        clock.advance(timedelta(seconds=PERIOD))

    # the member with their qualifying value — and for a card code the single-use insert
    assert by_number == [1, 1, 1]
    assert by_card == [2, 2, 2]


SUMMARY = """
query Summary($query: String!) {
  memberLookup(query: $query) {
    name
    activeOffers { name benefit value }
    activeVouchers { code status }
    stampCards { name stamps stampsRequired }
  }
}
"""


async def _given_benefits(member: Member, n: int) -> None:
    """`n` running offers, `n` active vouchers and `n` stamp cards with one stamp each for `member`."""
    for i in range(n):
        reward = await Reward.create(name=f"Reward {i}", kind=RewardKind.FREE_PRODUCT, points_cost=10)
        await new_offer(name=f"Offer {i}", priority=-i)
        card_ = await StampCard.create(name=f"Card {i}", stamps_required=5, reward=reward)
        await StampProgress.create(member=member, card=card_, stamps=1, updated_at=START)
        async with in_transaction() as conn:
            await vouchers.issue_voucher(conn, member.id, reward=reward)


async def test_the_summary_shows_offers_vouchers_and_stamp_cards_with_a_constant_sql_count(
    anna: Member, cashier: Actor, sql_counter: SQLCounter
) -> None:
    # given one of each
    await _given_benefits(anna, 1)
    await cached_program()
    await cached_plans()  # the membership plans (which offers are for paid members) are cached like the program
    sql_counter.statements.clear()
    result = await run_staff(SUMMARY, cashier, {"query": anna.member_number})
    with_one = len(sql_counter.statements)

    # then the cashier sees them
    assert result.errors is None, result.errors
    code = (await Voucher.get()).code
    assert result.data == {
        "memberLookup": {
            "name": "Anna",
            "activeOffers": [{"name": "Offer 0", "benefit": "BONUS_POINTS", "value": 100}],
            "activeVouchers": [{"code": vouchers.display_code(code), "status": "ACTIVE"}],
            "stampCards": [{"name": "Card 0", "stamps": 1, "stampsRequired": 5}],
        }
    }

    # when there are ten of each, the lookup still runs the same statements
    await _given_benefits(anna, 9)
    sql_counter.statements.clear()
    result = await run_staff(SUMMARY, cashier, {"query": anna.member_number})

    assert result.errors is None, result.errors
    assert [len(result.data["memberLookup"][k]) for k in ("activeOffers", "activeVouchers", "stampCards")] == [
        10,
        10,
        10,
    ]
    assert len(sql_counter.statements) == with_one, sql_counter.statements


async def test_the_summary_says_what_each_voucher_is_for(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    # given a 5 EUR voucher and a voucher from nowhere (what a cashier may issue by hand)
    five_off = await Reward.create(
        name="5 EUR off", kind=RewardKind.AMOUNT_OFF, points_cost=50, value=500, voucher_valid_days=5
    )
    async with in_transaction() as conn:
        by_reward = await vouchers.issue_voucher(conn, anna.id, reward=five_off)
        plain = await vouchers.issue_voucher(conn, anna.id)

    result = await run_staff(
        "query($q: String!) { memberLookup(query: $q) { activeVouchers {"
        " id code name kind value sku status expiresAt } } }",
        cashier,
        {"q": anna.member_number},
    )

    assert result.errors is None, result.errors
    assert result.data["memberLookup"]["activeVouchers"] == [
        {
            "id": relay.to_base64("Voucher", by_reward.id),
            "code": vouchers.display_code(by_reward.code),
            "name": "5 EUR off",
            "kind": "amount_off",
            "value": 500,
            "sku": None,
            "status": "ACTIVE",
            "expiresAt": (clock.now() + timedelta(days=5)).isoformat(),
        },
        {
            "id": relay.to_base64("Voucher", plain.id),
            "code": vouchers.display_code(plain.code),
            "name": "Voucher",
            "kind": None,
            "value": 0,
            "sku": None,
            "status": "ACTIVE",
            "expiresAt": (clock.now() + timedelta(days=30)).isoformat(),
        },
    ]
