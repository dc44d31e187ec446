"""The Google Wallet resources: one loyalty class for the programme, one loyalty object per member.

The object's barcode rotates: Google's app computes `{totp_value_0}` on the phone from the member's TOTP key with
the same rule as the app's checkout code (`loyalty.card`: RFC 6238, SHA-1, 6 digits, `card_code_seconds`), so the
till reads member number + code and `loyalty.lookup` accepts it once, like the app's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from loyalty import card
from loyalty.wallet import PassContent
from wallet.google.config import GoogleWalletConfig

JSON = dict[str, Any]


@dataclass(frozen=True)
class CardContent:
    """What a member's Google Wallet card shows: the pass content both platforms share
    (`loyalty.wallet.pass_content`: balances, tier progress, points expiring soon) and the rotating code's key and
    period."""

    shown: PassContent
    totp_key_base16: str
    code_seconds: int

    @property
    def member_number(self) -> str:
        return self.shown.member_number

    @property
    def progress_text(self) -> str:
        if self.shown.next_tier_name is None or self.shown.remaining_to_next is None:
            return "Top tier reached"
        return f"{self.shown.remaining_to_next:,} points to {self.shown.next_tier_name}"

    @property
    def expiring_text(self) -> str | None:
        """ "120 points expire on 2026-03-31" (the soonest expiry, UTC date), or None with nothing expiring soon."""
        if not self.shown.expiring_points or self.shown.expiring_at is None:
            return None
        day = self.shown.expiring_at.astimezone(UTC).date().isoformat()
        return f"{self.shown.expiring_points:,} points expire on {day}"

    def notable(self) -> tuple[int, int, str]:
        """What deserves a notification when it changes: the balances and the tier (not the name or the progress)."""
        return (self.shown.points_available, self.shown.points_pending, self.shown.tier_name)


@dataclass(frozen=True)
class ClassLook:
    """What the programme's class shows: names and colour (from the program and the shared pass design)."""

    program_name: str
    issuer_name: str
    background: str  # #rrggbb

    @classmethod
    def of(cls, program_name: str, organization_name: str, background_rgb: str) -> ClassLook:
        return cls(program_name, organization_name or program_name, hex_color(background_rgb))


def hex_color(rgb: str, default: str = "#202124") -> str:
    """`rgb(r, g, b)` (the pass design's form, Apple's) as Google's `#rrggbb`; `default` for anything else."""
    if rgb.startswith("#") and len(rgb) == 7:
        return rgb.lower()
    parts = rgb[4:-1].split(",") if rgb.startswith("rgb(") and rgb.endswith(")") else []
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return default
    return "#" + "".join(f"{int(p):02x}" for p in parts)


def object_suffix(member_number: str) -> str:
    # The member number: digits only, so always a valid suffix, unique and stable.
    return f"member-{member_number}"


def loyalty_class(config: GoogleWalletConfig, look: ClassLook) -> JSON:
    resource: JSON = {
        "id": config.class_id,
        "issuerName": look.issuer_name[:100],
        "programName": look.program_name[:100],
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": look.background,
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
    }
    if config.logo_url:
        resource["programLogo"] = {"sourceUri": {"uri": config.logo_url}}
    if config.callback_url:
        resource["callbackOptions"] = {"url": config.callback_url}
    return resource


def mutable_fields(content: CardContent) -> JSON:
    """The object's fields that follow the member (what a sync PATCHes)."""
    shown = content.shown
    modules: list[JSON] = [
        {"id": "tier", "header": "Tier", "body": shown.tier_name},
        {"id": "progress", "header": "Next tier", "body": content.progress_text},
    ]
    if (expiring := content.expiring_text) is not None:
        modules.append({"id": "expiring", "header": "Expiring soon", "body": expiring})
    return {
        "accountId": shown.member_number,
        "accountName": shown.display_name[:64],
        "loyaltyPoints": {"label": "Points", "balance": {"int": shown.points_available}},
        "secondaryLoyaltyPoints": {"label": "Pending", "balance": {"int": shown.points_pending}},
        "textModulesData": modules,
    }


def rotating_barcode(content: CardContent) -> JSON:
    return {
        "type": card.BARCODE_FORMAT,
        "valuePattern": content.member_number + "{totp_value_0}",
        "alternateText": content.member_number,
        "totpDetails": {
            "periodMillis": str(content.code_seconds * 1000),
            "algorithm": "TOTP_" + card.TOTP_ALGORITHM,
            "parameters": [{"key": content.totp_key_base16, "valueLength": card.CODE_DIGITS}],
        },
    }


def loyalty_object(config: GoogleWalletConfig, content: CardContent) -> JSON:
    return {
        "id": config.object_id(object_suffix(content.member_number)),
        "classId": config.class_id,
        "state": "ACTIVE",
        **mutable_fields(content),
        "rotatingBarcode": rotating_barcode(content),
    }


def object_patch(content: CardContent, *, notify: bool) -> JSON:
    """A PATCH body for the member's object; `notify` asks Google to tell the holder (counted against the limit).

    The barcode goes along: an object saved from an old link, or a changed code period, comes out right.
    """
    body = {**mutable_fields(content), "rotatingBarcode": rotating_barcode(content)}
    if notify:
        body["notifyPreference"] = "NOTIFY_ON_UPDATE"
    return body
