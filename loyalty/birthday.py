"""Birthday points: in their birthday month, members get the program's birthday points once a year.

The month and the year are the member's own (`Member.timezone`): a Stockholm member born in March is credited from
00:00 on 1 March Stockholm time. Month-based, so a 29 February birthday is simply February, leap year or not.
Each grant runs under the idempotency key `birthday:{year}` of the member, so running the job twice, or two
jobs at once, credits once. Members without a birthday are skipped; with `birthday_points = 0` nothing is done.
The job that visits every member is `loyalty.jobs.birthday_rewards`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import ledger
from loyalty.idempotency import idempotent
from loyalty.models import EntryKind, Member
from loyalty.program import load_program


async def grant_birthday_points(member: Member, at: datetime, points: int) -> bool:
    """Credit `points` birthday points to `member` if `at` is in their birthday month (in their timezone) and they
    have not had this year's yet; True if this call credited them.

    `member` need not be locked: the credit locks it, under the member's idempotency key for the year.
    """
    if member.birthday is None:
        return False
    local = at.astimezone(ZoneInfo(member.timezone))
    if local.month != member.birthday.month:
        return False
    return await _grant(member.id, local.year, points)


@dataclass(frozen=True)
class _Credited:
    """A grant's answer, as stored for replays."""

    entry_id: int


async def _grant(member_id: int, year: int, points: int) -> bool:
    """Credit one member's birthday points for `year`; False if they already had them."""
    ran = False

    async def action(conn: BaseDBAsyncClient) -> _Credited:
        nonlocal ran
        ran = True
        member = await ledger.lock_member(conn, member_id)
        program = await load_program(conn)
        entry = await ledger.credit_available(
            conn, member, program, points, kind=EntryKind.BIRTHDAY, description=f"birthday {year}"
        )
        return _Credited(entry.id)

    # The amount is not part of the request: a program change mid-year must not grant a second time.
    request = {"member": member_id, "year": year}
    await idempotent("birthday", f"{member_id}:birthday:{year}", request, _Credited, action)
    return ran
