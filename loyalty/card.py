"""The digital member card: a rotating one-time code for the checkout, derived from a per-member secret.

The code is an RFC 6238 TOTP: HMAC-SHA-1 over the number of `card_code_seconds` periods since the Unix epoch
(T0 = 0), RFC 4226's dynamic truncation, 6 decimal digits. The per-member secret (`Member.card_secret`, 20 random
bytes as hex) is the TOTP key. One rule serves the member app (which shows `card_code`) and the Google Wallet pass
(whose rotating barcode Google computes on the phone from the same key: `totp_key_base16`), so the till accepts
either with `card_code_window`. A screenshot of the card stops working within a window or two; the lookup
(`loyalty.lookup`) records each accepted code so that it is single-use.

Clock skew: the till accepts the code of the current window, the one before it (a code shown just before it
rotated, or a phone whose clock is behind) and the one after it (a phone whose clock is ahead), no other.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from loyalty.rows import AnyMember

CODE_DIGITS = 6
BARCODE_FORMAT = "QR_CODE"
TOTP_ALGORITHM = "SHA1"  # what Google Wallet's rotating barcodes support (TOTP_SHA1)
ACCEPTED_SKEW = (0, -1, 1)  # windows accepted around the verifier's own, in the order they are tried


@dataclass(frozen=True)
class CardCode:
    code: str  # what a cashier can type
    barcode_value: str  # what the till scans: member number + code
    expires_at: datetime


def hotp(key: bytes, counter: int, digits: int = CODE_DIGITS) -> str:
    """RFC 4226 HOTP with HMAC-SHA-1: the `digits`-digit one-time password for `counter`."""
    digest = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp_window(at: datetime, period_seconds: int) -> int:
    """RFC 6238's time step T for `at`: whole periods since the Unix epoch."""
    return int(at.timestamp()) // period_seconds


def totp_key_base16(member: AnyMember) -> str:
    """The member's TOTP key as RFC 4648 Base16 (upper-case hex), as Google Wallet's `totpDetails` takes it."""
    return member.card_secret.upper()


def _code_for_window(secret: str, window: int) -> str:
    return hotp(bytes.fromhex(secret), window)


def card_code(member: AnyMember, at: datetime, period_seconds: int) -> CardCode:
    """The member's checkout code valid at `at`."""
    window = totp_window(at, period_seconds)
    code = _code_for_window(member.card_secret, window)
    expires = datetime.fromtimestamp((window + 1) * period_seconds, UTC)
    return CardCode(code=code, barcode_value=f"{member.member_number}{code}", expires_at=expires)


def card_code_window(member: AnyMember, code: str, at: datetime, period_seconds: int) -> int | None:
    """The window `code` belongs to if it is the member's code for the window of `at` or one next to it.

    None for any other code (wrong length or characters included). The window number tells one use of a code
    from a later window's same six digits.
    """
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    window = totp_window(at, period_seconds)
    found = None
    for skew in ACCEPTED_SKEW:  # every candidate is computed: the time taken does not tell which one matched
        if hmac.compare_digest(_code_for_window(member.card_secret, window + skew), code) and found is None:
            found = window + skew
    return found
