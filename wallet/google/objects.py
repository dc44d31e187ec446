"""The Google Wallet resources: one loyalty class for the programme, one loyalty object per member.

The object's barcode rotates: Google's app computes `{totp_value_0}` on the phone from the member's TOTP key with
the same rule as the app's checkout code (`loyalty.card`: RFC 6238, SHA-1, 6 digits, `card_code_seconds`), so the
till reads member number + code and `loyalty.lookup` accepts it once, like the app's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loyalty import card
from wallet.google.config import GoogleWalletConfig

JSON = dict[str, Any]


@dataclass(frozen=True)
class CardContent:
    """What a member's Google Wallet card shows."""

    member_number: str
    display_name: str
    points_available: int
    points_pending: int
    tier_name: str
    next_tier_name: str | None
    remaining_to_next: int | None
    totp_key_base16: str
    code_seconds: int

    @property
    def progress_text(self) -> str:
        if self.next_tier_name is None or self.remaining_to_next is None:
            return "Top tier reached"
        return f"{self.remaining_to_next:,} points to {self.next_tier_name}"

    def notable(self) -> tuple[int, int, str]:
        """What deserves a notification when it changes: the balances and the tier (not the name or the progress)."""
        return (self.points_available, self.points_pending, self.tier_name)


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
    return {
        "accountId": content.member_number,
        "accountName": content.display_name[:64],
        "loyaltyPoints": {"label": "Points", "balance": {"int": content.points_available}},
        "secondaryLoyaltyPoints": {"label": "Pending", "balance": {"int": content.points_pending}},
        "textModulesData": [
            {"id": "tier", "header": "Tier", "body": content.tier_name},
            {"id": "progress", "header": "Next tier", "body": content.progress_text},
        ],
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
