"""The hand-written hot reads (`loyalty.sql`) must return exactly what the ORM returns, on both engines."""

import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from tortoise.models import Model

from loyalty import activity, sql
from loyalty.clock import FrozenClock
from loyalty.members import members_by_id
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    Member,
    PointsLot,
    Program,
    Purchase,
    Refund,
    Tier,
)
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import give_available, new_member, purchase

ROOT = Path(__file__).resolve().parents[2]

# A statement of the tests' own: `{ids}` between other placeholders (and a quote inside an identifier: no literal).
_IDS_BETWEEN = sql.statement(
    "tests.ids_between_parameters",
    Member,
    """SELECT "id" FROM "member" AS "member's" WHERE "member_number" <> ? AND "id" IN ({ids}) AND "id" > ?"""
    ' ORDER BY "id"',
)


def _values(instance: Model) -> dict[str, object]:
    return {column: getattr(instance, column) for column in sql.table(type(instance)).columns}


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

    rows = await sql.fetch(_IDS_BETWEEN, [members[1].member_number, ids[0]], ids=ids[:3])

    assert [row["id"] for row in rows] == [ids[2]]  # ids[0] is not > ids[0], ids[1] has the excluded number
    assert await sql.fetch(_IDS_BETWEEN, [members[1].member_number, ids[0]], ids=[]) == []


# --- declaring and running statements -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("""SELECT "id" FROM "member" WHERE "email" = 'who?' AND "id" = ?""", "a string literal"),
        ("""SELECT "id" FROM "member" WHERE "timezone" = 'UTC'""", "a string literal"),
        ('SELECT "id" FROM "member" WHERE "id" = ? -- by id', "a comment"),
        ('SELECT "id" FROM "member" /* by id? */ WHERE "id" = ?', "a comment"),
        ('SELECT "id" FROM "member" WHERE "id" = ?; DELETE FROM "member"', "a ;"),
        ('SELECT "id" FROM "member" WHERE "id" = $1', "a $"),
        ('SELECT "id" FROM "member" WHERE "email" = $$who?$$', "a $"),
        ('SELECT "id" AS "which?" FROM "member" WHERE "id" = ?', "a ? inside a quoted identifier"),
        ('SELECT "id" FROM "member', "an unterminated quoted identifier"),
        ('SELECT "id" FROM "member" WHERE "id" IN ({ids}) OR "tier_id" IN ({ids})', "more than one {ids} list"),
    ],
)
def test_a_statement_whose_placeholders_could_be_misnumbered_is_refused(text: str, refusal: str) -> None:
    # when a statement with a literal, a comment, a second statement or a stray placeholder is declared
    with pytest.raises(ValueError, match=re.escape(f"statement 'tests.refused': {refusal}")):
        sql.statement("tests.refused", Member, text)

    # then it is refused at once, and nothing is registered
    assert "tests.refused" not in sql.registered()


def test_a_select_is_checked_like_a_statement() -> None:
    # when the clauses after a whole-row select hold a literal
    with pytest.raises(ValueError, match=re.escape("statement 'tests.refused': a string literal")):
        sql.select("tests.refused", Member, """WHERE "timezone" = 'UTC'""")

    # then nothing is registered
    assert "tests.refused" not in sql.registered()


def test_a_name_is_registered_once() -> None:
    # given the statement registered as "members.by_id"
    first = sql.registered()["members.by_id"]

    # when another statement is declared under that name
    with pytest.raises(ValueError, match=re.escape("a statement named 'members.by_id' is already registered")):
        sql.select("members.by_id", Member, 'WHERE "member_number" = ?')

    # then the first one stays
    assert sql.registered()["members.by_id"] is first


async def test_only_registered_statements_run(program: Program) -> None:
    # given a member, and statements that did not go through `sql.statement` / `sql.select`
    member = await new_member("uid-unregistered")
    stray = sql.Statement("tests.stray", Member, 'SELECT "id" FROM "member"')
    forged = sql.Select("members.by_id", Member, 'WHERE "id" IN ({ids})')  # a registered name, not its statement
    text: Any = 'SELECT "id" FROM "member"'

    # when they are run, then they are refused before reaching the database
    with pytest.raises(LookupError, match=re.escape("not a registered statement: Statement(name='tests.stray'")):
        await sql.fetch(stray)
    with pytest.raises(LookupError, match=re.escape("not a registered statement: Select(name='members.by_id'")):
        await sql.fetch_models(forged, ids=[member.id])
    with pytest.raises(LookupError, match=re.escape("not a registered statement: 'SELECT")):
        await sql.fetch(text)
    assert "tests.stray" not in sql.registered()


async def test_table_describes_a_models_columns_keys_and_references(db: str) -> None:
    # when the tables of a ledger model and of a member are described
    entries, purchases, members = sql.table(LedgerEntry), sql.table(Purchase), sql.table(Member)

    # then in the order the models declare their fields, foreign keys where their relation is declared
    assert entries == sql.Table(
        name="ledger_entry",
        columns=(
            "id",
            "member_id",
            "kind",
            "delta_available",
            "delta_pending",
            "delta_lifetime",
            "unrecovered",
            "description",
            "lot_id",
            "purchase_id",
            "reverses_id",
            "created_at",
        ),
        primary_key="id",
        references={"member_id": Member, "lot_id": PointsLot, "purchase_id": Purchase, "reverses_id": LedgerEntry},
        unique=(("reverses_id",),),
    )
    assert list(entries.references) == ["member_id", "lot_id", "purchase_id", "reverses_id"]
    assert (purchases.unique, sql.table(Refund).unique) == (
        (("store_code", "receipt_id"),),
        (("purchase_id", "refund_id"),),
    )
    assert (members.unique, dict(members.references)) == (
        (("firebase_uid",), ("member_number",)),
        {"tier_id": Tier, "manual_tier_id": Tier},
    )
    assert members.columns[12:16] == ("tier_id", "tier_since", "tier_held_until", "manual_tier_id")


def test_a_table_is_not_described_before_tortoise_has_started() -> None:
    # given a fresh process, the models imported but Tortoise not started
    script = "from loyalty import sql\nfrom loyalty.models import Member\nsql.table(Member)"

    # when a table is described
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False)

    # then it is refused (its foreign-key columns are not known yet), not described without them
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "RuntimeError: Member: its table is known only once Tortoise has started"
    )
