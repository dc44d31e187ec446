"""The hand-written hot reads (`loyalty.sql`) must return exactly what the ORM returns, on both engines."""

from datetime import date, timedelta

from tortoise.models import Model

from loyalty import activity, sql
from loyalty.clock import FrozenClock
from loyalty.members import members_by_id
from loyalty.models import EntryKind, LedgerEntry, Member, Program, Tier
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import give_available, new_member, purchase


def _values(instance: Model) -> dict[str, object]:
    return {name: getattr(instance, name) for name in sorted(instance._meta.fields_db_projection)}


async def test_members_by_id_builds_the_same_members_as_the_orm(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-sql")
    gold = await Tier.get(program_id=program.id, name="Gold")
    await Member.filter(id=member.id).update(
        birthday=date(1990, 2, 28),
        interests=["coffee", "books"],
        marketing_consent=True,
        marketing_consent_at=clock.now(),
        manual_tier_id=gold.id,
        manual_tier_until=clock.now() + timedelta(days=30),
    )
    other = await new_member("uid-sql-2")

    found = await members_by_id([member.id, other.id, other.id + 1000])

    assert sorted(found) == [member.id, other.id]
    assert _values(found[member.id]) == _values(await Member.get(id=member.id))
    assert found[member.id].manual_tier_id == gold.id  # a foreign-key column, added by Tortoise at start-up
    assert await members_by_id([]) == {}


async def test_activity_page_equals_the_orm_query(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-activity")
    await give_available(member.id, 500)
    for receipt in range(4):
        await purchase(member.id, f"R{receipt}", 1_000 + receipt, clock.now())
        clock.advance(timedelta(minutes=1))
    await ledger_helpers.redeem_points(member.id, 50, idempotency_key="k1")

    first = await activity.activity_page(member.id, 3)
    rest = await activity.activity_page(member.id, 10, before=first[-1].id)

    expected = await LedgerEntry.filter(member_id=member.id).exclude(kind=EntryKind.MATURE).order_by("-id")
    assert [_values(e) for e in first + rest] == [_values(e) for e in expected]
    assert (len(first), first[0].kind, len(expected)) == (3, EntryKind.REDEEM, 6)


async def test_fetch_fills_an_id_list_between_other_parameters(program: Program) -> None:
    members = [await new_member(f"uid-ids-{i}") for i in range(4)]
    ids = [m.id for m in members]

    rows = await sql.fetch(
        'SELECT "id" FROM "member" WHERE "member_number" <> ? AND "id" IN ({ids}) AND "id" > ? ORDER BY "id"',
        [members[1].member_number, ids[0]],
        ids=ids[:3],
    )

    assert [row["id"] for row in rows] == [ids[2]]  # ids[0] is not > ids[0], ids[1] has the excluded number
    assert await sql.fetch('SELECT "id" FROM "member" WHERE "id" IN ({ids})', ids=[]) == []
