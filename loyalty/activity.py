"""What the member app reads of the ledger: the activity feed and the points expiring soon.

Hot reads of the home screen, hand-written in `loyalty.sql` (one statement each, any number of members).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from loyalty import sql
from loyalty.models import EntryKind, LedgerEntry, LotStatus, PointsLot
from loyalty.rows import EntryRow


class ExpiringRow(NamedTuple):
    member_id: int
    expires_at: datetime
    remaining: int


_EXPIRING_SOON = sql.rows(
    "activity.expiring_soon",
    PointsLot,
    ExpiringRow,
    'SELECT "member_id", "expires_at", "remaining" FROM "points_lot"'
    ' WHERE "member_id" IN ({ids}) AND "status" = ? AND "remaining" > 0 AND "expires_at" <= ?'
    ' ORDER BY "expires_at", "id"',
)
_ENTRIES = f'SELECT {sql.columns(EntryRow, "e")} FROM "ledger_entry" AS "e"'  # noqa: S608 - names from the row type
_ACTIVITY = sql.rows(
    "activity.page",
    LedgerEntry,
    EntryRow,
    f'{_ENTRIES} WHERE "e"."member_id" = ? AND "e"."kind" <> ? ORDER BY "e"."id" DESC LIMIT ?',
)
_ACTIVITY_BEFORE = sql.rows(
    "activity.page_before",
    LedgerEntry,
    EntryRow,
    f'{_ENTRIES} WHERE "e"."member_id" = ? AND "e"."kind" <> ? AND "e"."id" < ? ORDER BY "e"."id" DESC LIMIT ?',
)


async def points_expiring_soon(member_ids: Sequence[int], until: datetime) -> dict[int, list[tuple[datetime, int]]]:
    """Per member, the available points that expire by `until`: (expiry time, points) summed per expiry, soonest first.

    One query for any number of members (the app's "expiring soon" warning).
    """
    rows = await sql.fetch_rows(_EXPIRING_SOON, [LotStatus.AVAILABLE.value, until], ids=list(member_ids))
    totals: dict[int, dict[datetime, int]] = {member_id: {} for member_id in member_ids}
    for row in rows:
        by_expiry = totals[row.member_id]
        by_expiry[row.expires_at] = by_expiry.get(row.expires_at, 0) + row.remaining
    return {member_id: list(by_expiry.items()) for member_id, by_expiry in totals.items()}


async def activity_page(member_id: int, limit: int, before: int | None = None) -> list[EntryRow]:
    """The member's ledger entries newest first, `limit` of them with ids below `before`.

    Maturing (pending -> available) is bookkeeping, not activity, and is left out.
    """
    statement = _ACTIVITY if before is None else _ACTIVITY_BEFORE
    params = [member_id, EntryKind.MATURE.value, *([] if before is None else [before]), limit]
    return await sql.fetch_rows(statement, params)
