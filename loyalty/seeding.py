"""Seeding a programme (and optionally demo members with purchases) from a parsed TOML document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loyalty import clock
from loyalty.earning import apply_earning_config
from loyalty.ledger import earn_for_purchase
from loyalty.members import enroll_member
from loyalty.offers import apply_offer_config
from loyalty.program import apply_program_config


async def seed_from_config(config: dict[str, Any]) -> str:
    """Apply the programme config, enrol `[[members]]` with their purchases, then write `[[offers]]` (idempotent)."""
    program = await apply_program_config(config)
    members = config.get("members", [])
    for spec in members:
        email = spec["email"]
        member, _ = await enroll_member(f"demo:{email.lower()}", email=email, display_name=spec.get("name", ""))
        for i, total in enumerate(spec.get("purchases", [])):
            # Spread purchases over past weeks so some points are available and some pending.
            await earn_for_purchase(
                member.id,
                store_code="DEMO",
                receipt_id=f"{member.member_number}-{i}",
                occurred_at=clock.now() - timedelta(days=7 * (len(spec["purchases"]) - i)),
                currency=program.currency,
                total=total,
            )
    offers = await apply_offer_config(config.get("offers", []))
    rules = await apply_earning_config(config.get("campaigns", []), config.get("bonus_rules", []))
    return (
        f"programme {program.name!r} with {len(program.tiers)} tiers, {len(members)} demo members, {offers} offers, "
        f"{rules} campaigns and bonus rules"
    )
