"""Finding a member at the checkout: by member number, the app's rotating card code, phone or email.

A card code (the barcode value: member number + 6-digit code) is accepted within its window and once only: the
first use records a `CardCodeUse`, whose unique key refuses a second one. One answer, `None`, covers every miss
(unknown, malformed, ambiguous, expired or reused), so a lookup tells a caller nothing about why it missed.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import IntegrityError

from loyalty.card import CODE_DIGITS, card_code_window
from loyalty.checks import MAX_EMAIL
from loyalty.members import MEMBER_NUMBER_DIGITS, is_valid_member_number, member_by_contact, member_by_number
from loyalty.models import CardCodeUse, Program
from loyalty.rows import MemberRow

_PHONE_PUNCTUATION = str.maketrans("", "", " -()./")


def _normalize_phone(value: str) -> str | None:
    digits = value.translate(_PHONE_PUNCTUATION)
    body = digits.removeprefix("+")
    return digits if 6 <= len(body) <= 15 and body.isascii() and body.isdigit() else None


async def _use_card_code(member_number: str, code: str, program: Program, at: datetime) -> MemberRow | None:
    member = await member_by_number(member_number, program, at)
    if member is None:
        return None
    window = card_code_window(member, code, at, program.card_code_seconds)
    if window is None:
        return None
    # The use is recorded with its window, so a code that comes round again later is not mistaken for a reuse.
    try:
        await CardCodeUse.create(member_id=member.id, code=f"{window}{code}", used_at=at)
    except IntegrityError:
        return None
    return member


async def find_member(query: str, program: Program, at: datetime) -> MemberRow | None:
    """The one member that `query` designates at `at` (card codes rotate as `program` says), or None.

    A row (`members.member_by_number`, one statement) with the qualifying value of the tier period at `at`. Emails
    and phones are not unique: a lookup that matches two members matches none, rather than a wrong one.

    - 10 digits with a valid Luhn check digit: the member number (else a phone number);
    - 16 digits: a card barcode (member number + the rotating code), consumed on success;
    - containing `@`: the email (as stored, or lower-case);
    - otherwise a phone number (spaces, dashes, dots and brackets ignored; `+` kept).
    """
    text = query.strip()
    if not text or len(text) > MAX_EMAIL or not text.isprintable():  # nothing stored has a control character
        return None
    digits = text.isascii() and text.isdigit()  # str.isdigit() alone accepts other scripts' digits
    if digits and len(text) == MEMBER_NUMBER_DIGITS + CODE_DIGITS:
        number, code = text[:MEMBER_NUMBER_DIGITS], text[MEMBER_NUMBER_DIGITS:]
        return await _use_card_code(number, code, program, at) if is_valid_member_number(number) else None
    if digits and is_valid_member_number(text):
        member = await member_by_number(text, program, at)
        if member is not None:
            return member
        # One in ten 10-digit phone numbers passes the Luhn check: try it as a phone number too.
    if "@" in text:
        return await member_by_contact("email", sorted({text, text.lower()}), program, at)
    phone = _normalize_phone(text)
    if phone is None:
        return None
    return await member_by_contact("phone", sorted({text, phone}), program, at)
