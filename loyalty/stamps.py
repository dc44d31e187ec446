"""Stamp cards: buy N qualifying items (or make N qualifying visits) and get a voucher for the card's reward.

Stamps are added in the purchase's transaction, for every active card:

- `counts="items"`: the quantity of the receipt's lines that match the card (`match_category` and/or `match_sku`;
  neither set: every line). Voided lines and lines in the program's excluded categories never count.
- `counts="visits"`: one stamp when the purchase total reaches `min_spend` (if set) and, if the card has a match,
  at least one counting line matches it.

On reaching `stamps_required` the member gets one voucher per completion and keeps the surplus stamps, so one
large purchase can complete a card several times. Refunds do not remove stamps (nor the vouchers they gave):
the voucher is the member's once issued; a cashier who must undo it cancels the voucher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock, events, sql
from loyalty.checks import check_text, is_whole
from loyalty.earning import LineInput
from loyalty.errors import InvalidInput
from loyalty.models import Program, Reward, StampCard, StampProgress
from loyalty.rows import StampCardRow
from loyalty.vouchers import issue_voucher


@dataclass(frozen=True)
class StampOutcome:
    """What one purchase did to one card."""

    card_id: int
    name: str
    added: int
    stamps: int  # on the card now, after completions
    stamps_required: int
    vouchers_issued: int


@dataclass(frozen=True)
class StampCardProgress:
    """A member's progress on an active card (zero stamps if they never collected any)."""

    card_id: int
    name: str
    description: str
    stamps: int
    stamps_required: int
    completed: int  # times the member filled this card


def _matches(card: StampCard, line: LineInput) -> bool:
    return (card.match_category is None or line.category == card.match_category) and (
        card.match_sku is None or line.sku == card.match_sku
    )


def stamps_for(card: StampCard, program: Program, total: int, lines: Sequence[LineInput]) -> int:
    """Stamps `card` gives for a purchase of `lines` with `total` (minor units)."""
    excluded = set(program.excluded_categories or [])
    counting = [line for line in lines if not line.voided and line.category not in excluded]
    if card.counts == "visits":
        if card.min_spend is not None and total < card.min_spend:
            return 0
        has_match = card.match_category is not None or card.match_sku is not None
        return 1 if not has_match or any(_matches(card, line) for line in counting) else 0
    return sum(line.quantity for line in counting if _matches(card, line))


async def add_stamps(
    conn: BaseDBAsyncClient,
    member_id: int,
    program: Program,
    total: int,
    lines: Sequence[LineInput],
    cards: Sequence[StampCard],
    outbox: events.Outbox | None = None,
) -> list[StampOutcome]:
    """Stamp the member's `cards` (the active ones, `Configuration.stamp_cards`) for a purchase, issuing a voucher per
    completion (member row locked; `voucher.issued` into `outbox` when given).

    One statement reads the member's progress on every card the purchase stamps, one creates the missing progress
    rows, one updates each existing one; the card's reward is read only when the card completes.
    """
    stamped = [
        (card, added)
        for card in cards
        if card.stamps_required >= 1 and (added := stamps_for(card, program, total, lines))
    ]
    if not stamped:
        return []
    now = clock.now()
    existing = {
        row.card_id: row
        for row in await StampProgress.filter(
            member_id=member_id, card_id__in=[card.id for card, _ in stamped]
        ).using_db(conn)
    }
    created: list[StampProgress] = []
    outcomes = []
    for card, added in stamped:
        progress = existing.get(card.id)
        before, completed = (progress.stamps, progress.completed) if progress is not None else (0, 0)
        completions, left = divmod(before + added, card.stamps_required)
        if progress is None:
            created.append(
                StampProgress(member_id=member_id, card_id=card.id, stamps=left, completed=completions, updated_at=now)
            )
        else:
            await (
                StampProgress.filter(id=progress.id)
                .using_db(conn)
                .update(stamps=left, completed=completed + completions, updated_at=now)
            )
        if completions:
            reward = await Reward.get(id=card.reward_id, using_db=conn)
            for _ in range(completions):
                await issue_voucher(conn, member_id, reward=reward, stamp_card=card, outbox=outbox)
        outcomes.append(StampOutcome(card.id, card.name, added, left, card.stamps_required, completions))
    if created:
        await StampProgress.bulk_create(created, using_db=conn)
    return outcomes


# Every active card with one member's progress on it: one statement per member.
_MEMBER_CARDS = sql.rows(
    "stamps.for_member",
    StampCard,
    StampCardRow,
    'SELECT "c"."id", "c"."name", "c"."description", "c"."stamps_required",'
    ' COALESCE("p"."stamps", 0) AS "stamps", COALESCE("p"."completed", 0) AS "completed"'
    ' FROM "stamp_card" AS "c" LEFT JOIN "stamp_progress" AS "p" ON "p"."card_id" = "c"."id" AND "p"."member_id" = ?'
    ' WHERE "c"."active" = ? ORDER BY "c"."id"',
)


async def stamp_cards_for_members(member_ids: Sequence[int]) -> dict[int, list[StampCardProgress]]:
    """Progress on every active card for each member: one statement per member (rows)."""
    result = {}
    for member_id in member_ids:
        rows = await sql.fetch_rows(_MEMBER_CARDS, [member_id, True])
        result[member_id] = [
            StampCardProgress(row.id, row.name, row.description, row.stamps, row.stamps_required, row.completed)
            for row in rows
        ]
    return result


async def stamp_cards_for(member_id: int) -> list[StampCardProgress]:
    """A member's progress on every active card, for the app and the checkout summary."""
    return (await stamp_cards_for_members([member_id]))[member_id]


async def apply_stamp_card_config(specs: list[dict[str, Any]]) -> int:
    """Create or update stamp cards by name from parsed TOML (`[[stamp_cards]]`); `reward` names a catalog reward.

    Returns how many were written.
    """
    for spec in specs:
        name = check_text(spec.get("name"), "name", 100, label="stamp card config: a name")
        required = spec.get("stamps_required")
        if not is_whole(required, 1, 100):
            raise InvalidInput(f"stamp card config {name!r}: stamps_required must be 1 to 100", field="stamps_required")
        if spec.get("counts", "items") not in ("items", "visits"):
            raise InvalidInput(f"stamp card config {name!r}: counts is `items` or `visits`", field="counts")
        reward = await Reward.get_or_none(name=spec.get("reward"))
        if reward is None:
            raise InvalidInput(f"stamp card config {name!r}: unknown reward {spec.get('reward')!r}", field="reward")
        values = {
            key: spec[key]
            for key in ("description", "counts", "match_category", "match_sku", "min_spend")
            if key in spec
        }
        await StampCard.update_or_create(
            name=name, defaults={**values, "stamps_required": required, "reward": reward, "active": True}
        )
    return len(specs)
