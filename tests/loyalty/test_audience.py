"""The campaign audience in SQL is the offers' targeting: compared with `offers._targets` on generated members, both
engines; the campaigns' own rule, minimum spend, at its edges."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from tortoise import connections

from loyalty import audience
from loyalty.audience import Query, Targeting
from loyalty.clock import FrozenClock
from loyalty.models import LifecycleStage, Member, Offer, OfferBenefit, Program, Purchase
from loyalty.offers import _member_tier, _targets, lifecycle_stage
from loyalty.program import load_program
from tests.loyalty.push_helpers import bulk_members

# Just before midnight UTC at the end of March: Kiritimati (UTC+14) is in April already, Pago Pago (UTC-11) not.
AT = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Stockholm"]
INTERESTS = ["coffee", " Coffee ", "TEA", "İstanbul", "books", "straße"]


async def _audience_ids(targeting: Targeting, program: Program, at: datetime) -> list[int]:
    conn = connections.get("default")
    query = Query(audience.postgres(conn))
    where = await audience.condition(conn, query, targeting, program, at)
    rows = await conn.execute_query_dict(
        f'SELECT "m"."id" FROM "member" AS "m" WHERE {where} ORDER BY "m"."id"',
        query.values,
    )
    return [row["id"] for row in rows]


def _generated(i: int, rng: random.Random, tier_ids: list[int]) -> dict[str, Any]:
    created = AT - timedelta(days=rng.choice([0, 29, 30, 31, 100, 400]), seconds=rng.choice([-1, 0, 1]))
    last = rng.choice([None, *(AT - timedelta(days=d) for d in (0, 59, 60, 61, 179, 180, 181, 500))])
    return {
        "tier_id": rng.choice([*tier_ids, None]),
        "created_at": created,
        "last_purchase_at": last,
        "birthday": rng.choice([None, date(1990, 3, 15), date(1985, 4, 1), date(2000, 2, 29)]),
        "timezone": rng.choice(ZONES),
        "interests": rng.sample(INTERESTS, rng.randint(0, 3)),
    }


TARGETINGS = [
    Targeting(),
    Targeting(tier_names=("Silver", "Gold")),
    Targeting(tier_names=("Platinum",)),
    Targeting(min_tier_rank=1),
    Targeting(min_tier_rank=0),
    Targeting(lifecycle_stages=(LifecycleStage.NEW,)),
    Targeting(lifecycle_stages=(LifecycleStage.ACTIVE,)),
    Targeting(lifecycle_stages=(LifecycleStage.LAPSING, LifecycleStage.LAPSED)),
    Targeting(birthday_month=True),
    Targeting(interests=("COFFEE",)),
    Targeting(interests=("i̇stanbul", "Straße ")),
    Targeting(interests=("nothing",)),
    Targeting(tier_names=("Member",), lifecycle_stages=(LifecycleStage.ACTIVE,), birthday_month=True),
]


@pytest.mark.parametrize("targeting", TARGETINGS, ids=repr)
async def test_the_sql_audience_is_the_offers_targeting(
    program: Program, clock: FrozenClock, targeting: Targeting
) -> None:
    # given 300 generated members around every threshold: tiers (and none), lifecycle days, birthdays in timezones
    # on both sides of a month's end, interests differing in case, spaces and non-ASCII letters
    rng = random.Random(11)
    tier_ids = [t.id for t in program.tiers]
    clock.set(AT - timedelta(days=500))
    await bulk_members(300, program, lambda i: _generated(i, rng, tier_ids))
    clock.set(AT)
    program = await load_program()
    as_offer = Offer(
        name="o",
        benefit=OfferBenefit.BONUS_POINTS,
        valid_from=AT,
        valid_until=AT,
        tier_names=list(targeting.tier_names),
        min_tier_rank=targeting.min_tier_rank,
        lifecycle_stages=[s.value for s in targeting.lifecycle_stages],
        birthday_month=targeting.birthday_month,
        interests=list(targeting.interests),
    )

    # when the audience is read in SQL
    found = await _audience_ids(targeting, program, AT)

    # then it is exactly the members the offers' rules target
    expected = [
        m.id
        for m in await Member.all().order_by("id")
        if _targets(as_offer, m, _member_tier(program, m), lifecycle_stage(m, program, AT), AT)
    ]
    assert found == expected
    assert len(set(found)) == len(found)


async def _purchase(member_id: int, total: int, at: datetime, refunded: int = 0, receipt: str = "") -> None:
    await Purchase.create(
        member_id=member_id,
        store_code="S1",
        receipt_id=receipt or f"R{member_id}-{total}-{at.timestamp()}",
        occurred_at=at,
        currency="EUR",
        total=total,
        points_earned=0,
        qualifying_value=0,
        refunded_total=refunded,
        created_at=at,
    )


async def test_minimum_spend_is_net_spend_in_the_current_tier_period(program: Program, clock: FrozenClock) -> None:
    # given (calendar-year tier periods) members who spent, this year, exactly 100.00, 99.99, 120.00 less a 20.01
    # refund, and 100.00 last December
    exact, short, refunded, last_year = await bulk_members(4, program)
    this_year = datetime(2026, 1, 1, tzinfo=UTC)
    await _purchase(exact, 6_000, this_year)
    await _purchase(exact, 4_000, this_year + timedelta(days=30))
    await _purchase(short, 9_999, this_year + timedelta(days=1))
    await _purchase(refunded, 12_000, this_year + timedelta(days=1), refunded=2_001)
    await _purchase(last_year, 10_000, this_year - timedelta(seconds=1))

    # when the audience with a minimum spend of 100.00 is read
    found = await _audience_ids(Targeting(min_spend=10_000), program, clock.now())

    # then only the member who spent exactly that is in it
    assert found == [exact]
