"""Helpers for the referral tests (not a test module)."""

from __future__ import annotations

from typing import Any

from loyalty import referrals
from loyalty.members import enroll_member
from loyalty.models import Member, OutboxEvent, ReferralPolicy

POLICY: dict[str, Any] = {
    "enabled": True,
    "referee_points": 100,
    "referrer_points": 200,
    "min_spend": 5_000,
    "apply_days": 14,
    "device_max_referees": 2,
    "device_window_hours": 72,
}
DEVICE_KEY = b"k" * 32


async def policy(**overrides: Any) -> ReferralPolicy | None:
    """The test referral policy, with `overrides`."""
    return await referrals.apply_referral_config({**POLICY, **overrides})


async def member(uid: str, email: str | None = None, phone: str | None = None) -> Member:
    """Enroll a member now (email `<uid>@example.com` unless given), with a phone if given."""
    enrolled, created = await enroll_member(uid, email=email or f"{uid}@example.com")
    assert created
    if phone is not None:
        await Member.filter(id=enrolled.id).update(phone=phone)
        enrolled.phone = phone
    return enrolled


async def code(member_id: int) -> str:
    return await referrals.code_of(member_id)


async def refer(referrer: Member, referee: Member, device_id: str | None = None) -> referrals.Referral:
    """The referee applies the referrer's code (from `device_id`, hashed with the test key)."""
    device = referrals.device_hash(device_id, DEVICE_KEY)
    return await referrals.apply_referral(referee.id, await code(referrer.id), device=device)


async def referral_events() -> list[tuple[str, int | None]]:
    """The referral events in the outbox, oldest first: (type, member id)."""
    rows = await OutboxEvent.filter(type__startswith="referral.").order_by("id").values_list("type", "member_id")
    return [(str(t), m) for t, m in rows]
