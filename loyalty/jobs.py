"""Periodic jobs beyond expiry (which lives in `loyalty.ledger.expire_due_points`)."""

from __future__ import annotations

from loyalty import clock
from loyalty.ledger import locked_member, settle
from loyalty.models import Member
from loyalty.program import load_program
from loyalty.tiers import evaluate_tier


async def evaluate_due_tiers(batch_size: int = 500) -> int:
    """Re-evaluate every member whose tier hold has ended (downgrades one tier at a time); returns the count.

    Idempotent: an evaluated member's hold moves to the end of the current period.
    """
    program = await load_program()
    evaluated = 0
    last_id = 0
    while True:
        ids = (
            await Member.filter(tier_held_until__lte=clock.now(), id__gt=last_id)
            .order_by("id")
            .limit(batch_size)
            .values_list("id", flat=True)
        )
        if not ids:
            return evaluated
        for member_id in ids:
            async with locked_member(member_id) as (conn, member):
                await settle(conn, member)
                await evaluate_tier(conn, member, program)
            evaluated += 1
        last_id = ids[-1]
