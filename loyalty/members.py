"""Members: enrollment on first sign-in, lookup, and profile updates."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock, consent, events, sql
from loyalty.checks import MAX_NAME, check_text, clean_text
from loyalty.contacts import email_key
from loyalty.errors import InvalidInput, MemberNotFound
from loyalty.ledger import settle_member_if_due
from loyalty.memberships import benefit_plan_params, benefit_plan_sql
from loyalty.models import ConsentChannel, ConsentPurpose, ConsentSource, Member, Program
from loyalty.program import load_program, tiers_of
from loyalty.rows import AnyMember, MemberRow
from loyalty.tiers import period_end, period_start

MEMBER_NUMBER_DIGITS = 10  # 9 random digits + a Luhn check digit
MAX_INTERESTS = 20
MAX_TIMEZONE = 64  # the timezone column


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit for `digits`, so that typos in a typed member number are caught."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_member_number() -> str:
    body = str(secrets.randbelow(9 * 10 ** (MEMBER_NUMBER_DIGITS - 2)) + 10 ** (MEMBER_NUMBER_DIGITS - 2))
    return body + luhn_check_digit(body)


def is_valid_member_number(value: str) -> bool:
    return len(value) == MEMBER_NUMBER_DIGITS and value.isdigit() and luhn_check_digit(value[:-1]) == value[-1]


async def enroll_member(firebase_uid: str, *, email: str | None = None, display_name: str = "") -> tuple[Member, bool]:
    """The member for a Firebase user, enrolling them (entry tier, `member.enrolled`) on first sign-in.

    Returns (member, created). Concurrent first sign-ins of one user enroll exactly once.
    """
    existing = await Member.get_or_none(firebase_uid=firebase_uid)
    if existing is not None:
        return existing, False
    program = await load_program()
    entry_tier = tiers_of(program)[0]
    for _ in range(5):
        now = clock.now()
        try:
            async with in_transaction() as conn:
                member = await Member.create(
                    firebase_uid=firebase_uid,
                    member_number=new_member_number(),
                    email=email,
                    email_key=email_key(email),
                    display_name=clean_text(display_name, MAX_NAME),
                    card_secret=secrets.token_hex(20),
                    tier_id=entry_tier.id,
                    tier_since=now,
                    created_at=now,
                    updated_at=now,
                    using_db=conn,
                )
                await events.emit(
                    conn,
                    events.MEMBER_ENROLLED,
                    member_id=member.id,
                    payload={"member_number": member.member_number, "tier": entry_tier.name},
                )
                return member, True
        except IntegrityError:
            # Either the same user enrolled concurrently, or (rarely) the member number collided.
            existing = await Member.get_or_none(firebase_uid=firebase_uid)
            if existing is not None:
                return existing, False
    raise RuntimeError("could not allocate a unique member number")


_MEMBERS_BY_ID = sql.select("members.by_id", Member, f'WHERE "id" IN ({sql.IDS})')


async def members_by_id(member_ids: Sequence[int]) -> dict[int, Member]:
    """The members with these ids that exist, by id (one query)."""
    return {member.id: member for member in await sql.fetch_models(_MEMBERS_BY_ID, ids=member_ids)}


# The hot reads of a member (the app's home screen, the checkout's lookup): one statement each, rows with the
# qualifying value of the tier period the read is in, which the tier progress shows.
_QUALIFYING_VALUE = (
    '(SELECT CAST(COALESCE(SUM("q"."amount"), 0) AS BIGINT) FROM "qualifying_credit" AS "q"'
    ' WHERE "q"."member_id" = "m"."id" AND "q"."occurred_at" >= ? AND "q"."occurred_at" < ?) AS "qualifying_value"'
)
_MEMBER_ID = '"m"."id"'
_MEMBER_ROW = (
    f"SELECT {sql.columns(MemberRow, 'm', until='qualifying_value')}, {_QUALIFYING_VALUE},"  # noqa: S608
    f' {benefit_plan_sql(_MEMBER_ID)} AS "membership_plan_id"'
    ' FROM "member" AS "m"'
)
_ROWS_BY_ID = sql.rows("members.rows_by_id", Member, MemberRow, f'{_MEMBER_ROW} WHERE "m"."id" IN ({sql.IDS})')
_ROW_BY_NUMBER = sql.rows("members.row_by_number", Member, MemberRow, f'{_MEMBER_ROW} WHERE "m"."member_number" = ?')
# Emails and phones are not unique: two rows say "ambiguous". Two values: as stored, and normalized.
_ROWS_BY_EMAIL = sql.rows(
    "members.rows_by_email", Member, MemberRow, f'{_MEMBER_ROW} WHERE "m"."email" IN (?, ?) LIMIT 2'
)
_ROWS_BY_PHONE = sql.rows(
    "members.rows_by_phone", Member, MemberRow, f'{_MEMBER_ROW} WHERE "m"."phone" IN (?, ?) LIMIT 2'
)


def _window(program: Program, at: datetime) -> list[Any]:
    """The parameters of the row's own columns: the tier period's window, the membership's time."""
    return [period_start(program, at), period_end(program, at), *benefit_plan_params(at)]


async def member_rows(member_ids: Sequence[int], program: Program, at: datetime) -> dict[int, MemberRow]:
    """The members with these ids that exist, by id, as rows with their qualifying value at `at` (one query)."""
    return {row.id: row for row in await sql.fetch_rows(_ROWS_BY_ID, _window(program, at), ids=member_ids)}


async def member_by_number(member_number: str, program: Program, at: datetime) -> MemberRow | None:
    """The member with this member number, or None (one query: the checkout's lookup)."""
    found = await sql.fetch_rows(_ROW_BY_NUMBER, [*_window(program, at), member_number])
    return found[0] if found else None


async def member_by_contact(kind: str, values: Sequence[str], program: Program, at: datetime) -> MemberRow | None:
    """The one member whose `kind` ("email" or "phone") is one of `values` (one or two), or None (none or several)."""
    statement = {"email": _ROWS_BY_EMAIL, "phone": _ROWS_BY_PHONE}[kind]
    first, *rest = values
    found = await sql.fetch_rows(statement, [*_window(program, at), first, rest[0] if rest else first])
    return found[0] if len(found) == 1 else None


async def settled(member: AnyMember, at: datetime) -> AnyMember:
    """`member` with its balances brought up to date as of `at`: itself unless a lot matures or expires by then, else
    the member settled under its lock (`ledger.settle_member_if_due`, a model)."""
    if member.next_settle_at is None or member.next_settle_at > at:
        return member
    return await settle_member_if_due(await get_member(member.id), at)


async def get_member(member_id: int) -> Member:
    """The member with this id, or `MemberNotFound`."""
    member = (await members_by_id([member_id])).get(member_id)
    if member is None:
        raise MemberNotFound("no such member", field="member_id")
    return member


@dataclass(frozen=True)
class ProfileChanges:
    """Fields a member may change; `None` leaves a field as it is."""

    display_name: str | None = None
    birthday: date | None = None
    interests: list[str] | None = None
    marketing_consent: bool | None = None
    timezone: str | None = None


def _validate(changes: ProfileChanges, today: date) -> None:
    if changes.display_name is not None:
        check_text(changes.display_name.strip(), "display_name", 100, label="name")
    if changes.birthday is not None and not date(1900, 1, 1) <= changes.birthday <= today:
        raise InvalidInput("birthday must be a past date after 1900", field="birthday")
    if changes.interests is not None:
        if len(changes.interests) > MAX_INTERESTS:
            raise InvalidInput(f"at most {MAX_INTERESTS} interests", field="interests")
        for interest in changes.interests:
            check_text(interest.strip(), "interests", 40, label="each interest")
    if changes.timezone is not None:
        # Bounded by its column first: ZoneInfo reads a file of that name, and a very long one is an OSError.
        if len(changes.timezone) > MAX_TIMEZONE or not changes.timezone.isprintable():
            raise InvalidInput("unknown timezone", field="timezone")
        try:
            ZoneInfo(changes.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidInput("unknown timezone", field="timezone") from exc


async def update_profile(member_id: int, changes: ProfileChanges) -> Member:
    """Apply profile changes; a change of marketing consent goes through `loyalty.consent` (recorded as the member's,
    from the app). Emits `member.updated`."""
    now = clock.now()
    _validate(changes, now.date())
    async with in_transaction() as conn:
        member = await Member.filter(id=member_id).using_db(conn).select_for_update().first()
        if member is None:
            raise MemberNotFound("no such member", field="member_id")
        changed: list[str] = []
        if changes.display_name is not None:
            member.display_name = changes.display_name.strip()
            changed.append("display_name")
        if changes.birthday is not None:
            member.birthday = changes.birthday
            changed.append("birthday")
        if changes.interests is not None:
            member.interests = sorted({i.strip().lower() for i in changes.interests})
            changed.append("interests")
        if changes.timezone is not None:
            member.timezone = changes.timezone
            changed.append("timezone")
        if changes.marketing_consent is not None:
            # The one way consent changes (its record and history, and these cached columns): `loyalty.consent`.
            changed += await consent.apply_consent(
                conn,
                member,
                ConsentChannel.PUSH,
                ConsentPurpose.MARKETING,
                changes.marketing_consent,
                ConsentSource.APP,
                consent.member_actor(member.id),
                now,
            )
        if changed:
            member.updated_at = now
            await member.save(using_db=conn, update_fields=[*changed, "updated_at"])
            await events.emit(conn, events.MEMBER_UPDATED, member_id=member.id, payload={"fields": changed})
        return member
