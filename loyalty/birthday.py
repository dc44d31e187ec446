"""The birthday job: in their birthday month, members get the program's birthday points once a year.

The month and the year are the member's own (`Member.timezone`): a Stockholm member born in March is credited from
00:00 on 1 March Stockholm time. Month-based, so a 29 February birthday is simply February, leap year or not.
Each grant runs under the idempotency key `birthday:{year}` of the member, so running the job twice, or two
jobs at once, credits once. Members without a birthday are skipped; with `birthday_points = 0` nothing is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock, ledger
from loyalty.idempotency import idempotent
from loyalty.models import EntryKind, Member
from loyalty.program import load_program


async def grant_birthday_points(batch_size: int = 500) -> int:
    """Credit `Program.birthday_points` to every member in their birthday month not yet credited this year.

    Returns how many members this run credited (0 on a second run).
    """
    program = await load_program()
    if program.birthday_points <= 0:
        return 0
    now = clock.now()
    granted = 0
    last_id = 0
    while True:
        rows = (
            await Member.filter(birthday__isnull=False, id__gt=last_id)
            .order_by("id")
            .limit(batch_size)
            .values_list("id", "birthday", "timezone")
        )
        if not rows:
            return granted
        for member_id, birthday, timezone in rows:
            local = now.astimezone(ZoneInfo(timezone))
            if local.month == birthday.month and await _grant(member_id, local.year, program.birthday_points):
                granted += 1
        last_id = rows[-1][0]


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
