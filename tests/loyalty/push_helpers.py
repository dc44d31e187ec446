"""Many members at once for push tests: written in bulk (10,000 through `enroll_member` would take minutes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from loyalty import clock
from loyalty.models import (
    Consent,
    ConsentChannel,
    ConsentPurpose,
    ConsentSource,
    Device,
    DevicePlatform,
    Member,
    Program,
)

Overrides = Callable[[int], dict[str, Any]]


async def bulk_members(count: int, program: Program, overrides: Overrides | None = None) -> list[int]:
    """`count` members in the entry tier (ids ascending), `overrides(i)` setting columns of the i-th."""
    now = clock.now()
    entry = min(program.tiers, key=lambda t: t.rank)
    start = await Member.all().count()
    rows = []
    for i in range(count):
        n = start + i
        values: dict[str, Any] = {
            "firebase_uid": f"bulk-{n}",
            "member_number": f"B{n:09d}",
            "card_secret": "S" * 32,
            "tier_id": entry.id,
            "created_at": now,
            "updated_at": now,
        }
        values.update(overrides(i) if overrides else {})
        if values.get("marketing_consent"):
            values["marketing_consent_at"] = now  # the cache of the consent written below
        rows.append(Member(**values))
    await Member.bulk_create(rows, batch_size=1000)
    ids = await Member.filter(firebase_uid__startswith="bulk-").order_by("id").values_list("id", flat=True)
    consenting = await Member.filter(firebase_uid__startswith="bulk-", marketing_consent=True).values_list(
        "id", flat=True
    )
    await record_consents([int(m) for m in consenting])
    return [int(i) for i in ids]  # type: ignore[call-overload]


async def record_consents(member_ids: list[int], source: ConsentSource = ConsentSource.IMPORT) -> None:
    """The (push, marketing) consent record behind members written with the cached opt-in (`marketing_consent`):
    tests/invariants.py checks the cache against it, and the sender reads the record."""
    now = clock.now()
    await Consent.bulk_create(
        [
            Consent(
                member_id=m,
                channel=ConsentChannel.PUSH,
                purpose=ConsentPurpose.MARKETING,
                granted=True,
                source=source,
                changed_at=now,
            )
            for m in member_ids
        ],
        batch_size=1000,
    )


async def add_devices(member_ids: list[int], locale: str = "en", seen: datetime | None = None) -> None:
    at = seen or clock.now()
    await Device.bulk_create(
        [
            Device(
                member_id=m,
                token=f"tok-{m}-{locale}",
                platform=DevicePlatform.ANDROID,
                locale=locale,
                created_at=at,
                last_seen_at=at,
            )
            for m in member_ids
        ],
        batch_size=1000,
    )
