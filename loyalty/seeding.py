"""Seeding a program (and optionally demo members with purchases) from a parsed TOML document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loyalty.actors import SYSTEM
from loyalty.earning import LineInput, apply_earning_config
from loyalty.errors import DomainError
from loyalty.members import enroll_member
from loyalty.offers import apply_offer_config
from loyalty.program import apply_program_config
from loyalty.purchases import PurchaseRequest, record_purchase
from loyalty.rewards import apply_reward_config
from loyalty.staff import StaffEmailTaken, create_staff
from loyalty.stamps import apply_stamp_card_config


async def seed_from_config(config: dict[str, Any]) -> str:
    """Apply the program config, enroll `[[members]]` with their purchases, then write `[[offers]]` (idempotent)."""
    program = await apply_program_config(config)
    members = config.get("members", [])
    for spec in members:
        email = spec["email"]
        member, _ = await enroll_member(f"demo:{email.lower()}", email=email, display_name=spec.get("name", ""))
        for i, total in enumerate(spec.get("purchases", [])):
            # Spread over the weeks before enrollment so some points are available and some pending; anchored to
            # the enrollment time so that seeding again replays the same receipts (idempotent).
            request = PurchaseRequest(
                member_id=member.id,
                store_code="DEMO",
                receipt_id=f"{member.member_number}-{i}",
                occurred_at=member.created_at - timedelta(days=7 * (len(spec["purchases"]) - i - 1), hours=1),
                currency=program.currency,
                total=total,
                lines=(LineInput(sku="DEMO", category="", quantity=1, amount=total),),
            )
            await record_purchase(SYSTEM, request)
    offers = await apply_offer_config(config.get("offers", []))
    rules = await apply_earning_config(config.get("campaigns", []), config.get("bonus_rules", []))
    rewards = await apply_reward_config(config.get("rewards", []))
    cards = await apply_stamp_card_config(config.get("stamp_cards", []))
    staff = await _seed_staff(config.get("staff", []))
    return (
        f"program {program.name!r} with {len(program.tiers)} tiers, {len(members)} demo members, {offers} offers, "
        f"{rules} campaigns and bonus rules, {rewards} rewards, {cards} stamp cards, {staff} staff accounts"
    )


async def _seed_staff(specs: list[dict[str, Any]]) -> int:
    # Demo logins only: a real program creates staff with `klubb staff create` (no passwords in files).
    for spec in specs:
        try:
            await create_staff(
                spec["email"], spec["password"], spec["role"], spec.get("stores", []), spec.get("name", "")
            )
        except StaffEmailTaken:
            continue  # seeding is idempotent
        except (KeyError, DomainError) as exc:
            raise DomainError(f"staff config {spec.get('email')!r}: {exc}") from exc
    return len(specs)
