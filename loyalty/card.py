"""The digital member card: a rotating one-time code for the checkout, derived from a per-member secret.

The code changes every `card_code_seconds`; a screenshot of the card stops working within that window.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from loyalty.rows import AnyMember

CODE_DIGITS = 6
BARCODE_FORMAT = "QR_CODE"


@dataclass(frozen=True)
class CardCode:
    code: str  # what a cashier can type
    barcode_value: str  # what the till scans: member number + code
    expires_at: datetime


def _code_for_window(secret: str, window: int) -> str:
    digest = hmac.new(bytes.fromhex(secret), window.to_bytes(8, "big"), hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def card_code(member: AnyMember, at: datetime, period_seconds: int) -> CardCode:
    """The member's checkout code valid at `at`."""
    window = int(at.timestamp()) // period_seconds
    code = _code_for_window(member.card_secret, window)
    expires = datetime.fromtimestamp((window + 1) * period_seconds, UTC)
    return CardCode(code=code, barcode_value=f"{member.member_number}{code}", expires_at=expires)


def card_code_window(member: AnyMember, code: str, at: datetime, period_seconds: int) -> int | None:
    """The window `code` belongs to if it is the member's code for the current window or the one just before it.

    None for any other code. The window number tells one use of a code from a later window's same six digits.
    """
    window = int(at.timestamp()) // period_seconds
    for candidate in (window, window - 1):
        if hmac.compare_digest(_code_for_window(member.card_secret, candidate), code):
            return candidate
    return None
