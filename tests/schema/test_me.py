"""The home screen: every `me` field, pagination, isolation between members, and the SQL budget."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from loyalty import card, jobs
from loyalty import clock as business_clock
from loyalty.clock import FrozenClock
from loyalty.models import Member, Program, TierPeriod
from loyalty.program import forget_cached_program
from tests.conftest import START
from tests.loyalty import ledger_helpers
from tests.loyalty.test_offers import new_offer
from tests.schema.conftest import HOME_QUERY, SQLCounter


def _iso(value: Any) -> str:
    return value.isoformat()


async def _earn(member: Member, receipt: str, total: int, clock: FrozenClock) -> None:
    await ledger_helpers.earn_for_purchase(
        member.id, store_code="S1", receipt_id=receipt, occurred_at=clock.now(), currency="EUR", total=total
    )


async def test_home_query_returns_every_field(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    # Given 600 points earned a month ago (now available, and Silver reached), a 50 EUR purchase today
    # (pending, 62 points with Silver's 1.25 multiplier) and 100 points redeemed
    clock.advance(timedelta(days=-30))
    await _earn(anna, "R1", 60_000, clock)
    clock.advance(timedelta(days=30))
    await jobs.expire_points()
    await _earn(anna, "R2", 5_000, clock)
    await ledger_helpers.redeem_points(anna.id, 100, idempotency_key="k1")
    anna = await Member.get(id=anna.id)

    # When the app loads its home screen
    result = await as_member(anna).execute(HOME_QUERY)

    # Then everything the app shows is there and exact
    assert "errors" not in result
    me = result["data"]["me"]
    code = card.card_code(anna, clock.now(), 60)
    entries = [e["node"] for e in me["activity"]["edges"]]
    assert me["memberNumber"] == anna.member_number
    assert me["displayName"] == "Anna"
    assert me["card"] == {
        "barcodeValue": code.barcode_value,
        "barcodeFormat": "QR_CODE",
        "code": code.code,
        "codeExpiresAt": _iso(code.expires_at),
    }
    assert me["points"] == {"available": 500, "pending": 62, "lifetimeEarned": 662, "expiringSoon": []}
    assert me["tier"] == {
        "current": {"name": "Silver"},
        "next": {"name": "Gold"},
        "qualifyingValue": 650,
        "nextThreshold": 2000,
        "remainingToNext": 1350,
        "progress": 0.1,
        "periodEndsAt": "2027-01-01T00:00:00+00:00",
        "neededToKeep": 0,
    }
    assert [(e["kind"], e["points"], e["pending"], e["description"]) for e in entries] == [
        ("REDEEM", -100, 0, "Points redeemed"),
        ("EARN", 62, 62, "Purchase"),
        ("EARN", 600, 600, "Purchase"),
    ]
    assert me["activity"]["pageInfo"] == {"hasNextPage": False, "endCursor": me["activity"]["edges"][-1]["cursor"]}


async def test_activity_shows_when_things_happened_not_when_they_were_written(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    # Given a receipt made at 09:00 that the till sent at noon, a partial refund recorded at 15:00, another one
    # recorded then for goods that came back at 14:00, and a redemption at 16:00
    made_at = clock.now() - timedelta(hours=3)
    await ledger_helpers.purchase(anna.id, "R1", 10_000, made_at)
    clock.advance(timedelta(hours=3))
    refunded_at = clock.now()
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=2_000)
    returned_at = clock.now() - timedelta(hours=1)
    await ledger_helpers.refund_purchase(
        store_code="S1", receipt_id="R1", refund_id="F2", amount=1_000, occurred_at=returned_at
    )
    await ledger_helpers.give_available(anna.id, 50)
    clock.advance(timedelta(hours=1))
    await ledger_helpers.redeem_points(anna.id, 30, idempotency_key="k1")

    # When the app shows the activity
    result = await as_member(anna).execute(
        "{ me { activity(first: 10) { edges { node { kind points occurredAt } } } } }"
    )

    # Then the purchase is at the receipt's time, a refund at the time it gives, the others when they were recorded
    assert [e["node"] for e in result["data"]["me"]["activity"]["edges"]] == [
        {"kind": "REDEEM", "points": -30, "occurredAt": _iso(clock.now())},
        {"kind": "ADJUSTMENT", "points": 50, "occurredAt": _iso(refunded_at)},
        {"kind": "REFUND_CLAWBACK", "points": -10, "occurredAt": _iso(returned_at)},
        {"kind": "REFUND_CLAWBACK", "points": -20, "occurredAt": _iso(refunded_at)},
        {"kind": "EARN", "points": 100, "occurredAt": _iso(made_at)},
    ]


async def test_points_expiring_soon_are_listed_by_date(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    # Given 120 points that became available 350 days ago (they expire in 15 days)
    clock.advance(timedelta(days=-364))
    await _earn(anna, "R1", 12_000, clock)
    clock.advance(timedelta(days=364))

    result = await as_member(anna).execute("{ me { points { available expiringSoon { amount expiresAt } } } }")

    expires_at = clock.now() - timedelta(days=364) + timedelta(days=14 + 365)
    assert result["data"]["me"]["points"] == {
        "available": 120,
        "expiringSoon": [{"amount": 120, "expiresAt": _iso(expires_at)}],
    }


async def test_activity_pages_with_cursors(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    for i in range(5):
        await _earn(anna, f"R{i}", 1_000 * (i + 1), clock)
    query = (
        "query($after: String) { me { activity(first: 2, after: $after) {"
        " edges { node { points } } pageInfo { hasNextPage endCursor } } } }"
    )
    client = as_member(anna)

    pages = []
    after = None
    while True:
        activity = (await client.execute(query, {"after": after}))["data"]["me"]["activity"]
        pages.append([e["node"]["points"] for e in activity["edges"]])
        if not activity["pageInfo"]["hasNextPage"]:
            break
        after = activity["pageInfo"]["endCursor"]

    assert pages == [[50, 40], [30, 20], [10]]


async def test_activity_page_size_is_limited_to_100(anna: Member, as_member: Any) -> None:
    result = await as_member(anna).execute("{ me { activity(first: 101) { edges { cursor } } } }")

    assert result["data"] is None
    assert result["errors"][0]["message"] == "`first` must be between 1 and 100"
    assert result["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}


async def test_a_forged_cursor_is_a_bad_request(anna: Member, as_member: Any) -> None:
    forged = base64.urlsafe_b64encode(b"member:1").decode()

    result = await as_member(anna).execute(
        "query($a: String) { me { activity(after: $a) { edges { cursor } } } }", {"a": forged}
    )

    assert result["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}


async def test_me_needs_a_signed_in_member(as_member: Any, program: Any) -> None:
    result = await as_member(None).execute("{ me { memberNumber } }")

    assert result["data"] is None
    assert result["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_program_is_public(as_member: Any, program: Any) -> None:
    result = await as_member(None).execute("{ program { name currency tiers { name threshold benefits } } }")

    assert result == {
        "data": {
            "program": {
                "name": "Test Club",
                "currency": "EUR",
                "tiers": [
                    {"name": "Member", "threshold": 0, "benefits": ["Member prices"]},
                    {"name": "Silver", "threshold": 500, "benefits": ["Free delivery"]},
                    {"name": "Gold", "threshold": 2000, "benefits": ["Early access", "Birthday gift"]},
                ],
            }
        }
    }


async def test_another_members_objects_look_exactly_like_missing_ones(
    anna: Member, bo: Member, as_member: Any, clock: FrozenClock
) -> None:
    # Given Bo has an activity entry and Anna knows its global id
    await _earn(bo, "R-bo", 10_000, clock)
    bo_view = await as_member(bo).execute("{ me { id activity(first: 1) { edges { node { id } } } } }")
    bo_member_id = bo_view["data"]["me"]["id"]
    bo_entry_id = bo_view["data"]["me"]["activity"]["edges"][0]["node"]["id"]
    missing_entry_id = base64.b64encode(b"ActivityEntry:999999").decode()
    missing_member_id = base64.b64encode(b"Member:999999").decode()
    query = "query($id: ID!) { node(id: $id) { id } }"
    client = as_member(anna)

    # When Anna asks for Bo's objects and for ids that do not exist
    answers = [await client.execute(query, {"id": i}) for i in (bo_entry_id, missing_entry_id)]
    member_answers = [await client.execute(query, {"id": i}) for i in (bo_member_id, missing_member_id)]

    # Then she gets the same empty answer for both
    assert answers == [{"data": {"node": None}}, {"data": {"node": None}}]
    assert member_answers == [{"data": {"node": None}}, {"data": {"node": None}}]
    # ... while Bo can refetch his own entry
    assert (await as_member(bo).execute(query, {"id": bo_entry_id})) == {"data": {"node": {"id": bo_entry_id}}}


async def test_home_query_sql_count_does_not_grow_with_activity(
    anna: Member, as_member: Any, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    client = as_member(anna)
    await _earn(anna, "R0", 1_000, clock)
    await client.execute(HOME_QUERY)  # warm the program cache
    sql_counter.statements.clear()
    await client.execute(HOME_QUERY)
    with_one = len(sql_counter.statements)

    for i in range(1, 30):
        await _earn(anna, f"R{i}", 1_000, clock)
    sql_counter.statements.clear()
    result = await client.execute(HOME_QUERY)

    assert len(result["data"]["me"]["activity"]["edges"]) == 10
    # the member with their qualifying value, points expiring soon, the activity page
    assert len(sql_counter.statements) == with_one == 3, sql_counter.statements


class TickingClock(FrozenClock):
    """A clock that moves a day on from every reading it gives, and records the readings."""

    def __init__(self, at: datetime) -> None:
        super().__init__(at)
        self.readings: list[datetime] = []

    def now(self) -> datetime:
        reading = super().now()
        self.readings.append(reading)
        self.advance(timedelta(days=1))
        return reading


async def test_a_response_reads_one_instant(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    # Given a rolling tier period, so the period's end is a year from the instant it is read at
    await Program.filter(id=1).update(tier_period=TierPeriod.ROLLING_12_MONTHS)
    forget_cached_program()
    at = START + timedelta(days=400)  # the request's instant
    # ... a purchase exactly a rolling year before it (qualifying then, not a day later; its points expire 14 days
    # after it), 100 points expiring exactly at the expiring-soon cut-off and 20 an hour after it
    clock.set(at - timedelta(days=365))
    await _earn(anna, "R1", 10_000, clock)
    clock.set(at - timedelta(days=365 - 30))
    await ledger_helpers.give_available(anna.id, 100, key="at-cut-off")
    clock.advance(timedelta(hours=1))
    await ledger_helpers.give_available(anna.id, 20, key="after-cut-off")
    # ... an offer that ends an hour after the instant and one that starts an hour after it
    await new_offer(name="ends", valid_from=at - timedelta(days=1), valid_until=at + timedelta(hours=1))
    await new_offer(name="starts", valid_from=at + timedelta(hours=1), valid_until=at + timedelta(days=9))
    clock.set(at)
    await jobs.expire_points()  # the purchase's points matured: nothing left to settle on the read
    anna_client = as_member(anna)
    query = (
        "{ me { card { code codeExpiresAt } points { expiringSoon { amount expiresAt } }"
        " tier { qualifyingValue periodEndsAt } offers { edges { node { name } } } } }"
    )

    # When the app asks for all of them and every clock reading moves time on by a day
    ticking = TickingClock(at)
    business_clock.use_clock(ticking)
    try:
        result = await anna_client.execute(query)
    finally:
        business_clock.use_clock(clock)

    # Then the clock was read once, and every time in the response derives from that reading
    code = card.card_code(anna, at, 60)
    assert ticking.readings == [at]
    assert result == {
        "data": {
            "me": {
                "card": {"code": code.code, "codeExpiresAt": _iso(code.expires_at)},
                "points": {
                    "expiringSoon": [
                        {"amount": 100, "expiresAt": _iso(at + timedelta(days=14))},
                        {"amount": 100, "expiresAt": _iso(at + timedelta(days=30))},
                    ]
                },
                "tier": {"qualifyingValue": 100, "periodEndsAt": _iso(at + timedelta(days=365))},
                "offers": {"edges": [{"node": {"name": "ends"}}]},
            }
        }
    }


async def test_the_program_is_read_once_per_request_and_only_when_needed(
    anna: Member, as_member: Any, sql_counter: SQLCounter
) -> None:
    # Given the program is not in the process's cache
    client = as_member(anna)
    forget_cached_program()
    sql_counter.statements.clear()

    # When a request needs nothing of it, and one needs it in five fields
    trivial = await client.execute("{ __typename }")
    trivial_statements = list(sql_counter.statements)
    forget_cached_program()
    result = await client.execute(
        "{ program { name } me { card { code } lifecycleStage tier { current { name } } points { expiringSoon {"
        " amount } } } }"
    )

    # Then the first read nothing and the second read the program once
    assert trivial == {"data": {"__typename": "Query"}}
    assert trivial_statements == []
    assert result["data"]["program"] == {"name": "Test Club"}
    assert result["data"]["me"]["tier"] == {"current": {"name": "Member"}}
    assert len([s for s in sql_counter.statements if 'FROM "program"' in s]) == 1, sql_counter.statements
