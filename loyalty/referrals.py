"""Referrals: each member's code, a referee attaching one, two-sided bonuses and the abuse checks.

Codes. Every member has one short code (`Member.referral_code`, given on first use by `code_of`): eight characters
from an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B), so a code read aloud or typed from a photo
is the code. `normalize_code` is forgiving of what people type (case, spaces, dashes); anything that cannot be a
code is None, and a lookup of it reveals nothing.

The policy is one row (`ReferralPolicy`, `[referrals]` of the program file, `apply_referral_config`); before one is
configured referrals earn nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from loyalty import clock
from loyalty.checks import MAX_POINTS, is_whole
from loyalty.errors import InvalidInput, MemberNotFound
from loyalty.models import Member, ReferralPolicy

CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"  # 25 symbols, no look-alikes: 25**8 ≈ 1.5e11 codes
CODE_LENGTH = 8
_TYPED_SEPARATORS = str.maketrans("", "", " -_.")
MAX_URL = 500  # the policy's URL columns


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: object) -> str | None:
    """The code `text` spells (upper case; spaces, dashes, underscores and dots ignored), or None if it spells none."""
    if not isinstance(text, str) or len(text) > 4 * CODE_LENGTH:
        return None
    code = text.translate(_TYPED_SEPARATORS).upper()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code


async def code_of(member_id: int) -> str:
    """The member's referral code, given now if it has none yet (concurrent first uses agree on one)."""
    for _ in range(5):
        rows = await Member.filter(id=member_id).values_list("referral_code", flat=True)
        if not rows:
            raise MemberNotFound("no such member", field="member_id")
        if rows[0] is not None:
            return str(rows[0])
        try:
            await Member.filter(id=member_id, referral_code__isnull=True).update(referral_code=new_code())
        except IntegrityError:  # another member holds that code (one in 1e11): draw again
            continue
    raise RuntimeError("could not allocate a unique referral code")


async def referrer_by_code(code: str | None, conn: BaseDBAsyncClient | None = None) -> Member | None:
    """The member whose code `code` is (already normalized), or None."""
    if code is None:
        return None
    return await Member.get_or_none(referral_code=code, using_db=conn)


async def current_policy(conn: BaseDBAsyncClient | None = None) -> ReferralPolicy | None:
    """The program's referral policy, or None before one is configured."""
    return await ReferralPolicy.all().using_db(conn).order_by("id").first()


_WHOLE_SETTINGS = {  # key: (low, high, nullable)
    "referee_points": (0, MAX_POINTS, False),
    "referrer_points": (0, MAX_POINTS, False),
    "min_spend": (0, 10**12, False),
    "apply_days": (0, 3650, False),
    "referrer_cap_per_month": (0, 10**6, True),
    "referrer_cap_lifetime": (0, 10**6, True),
    "device_max_referees": (1, 10**6, False),
    "device_window_hours": (1, 24 * 3650, False),
}
_URL_SETTINGS = ("app_store_url", "play_store_url", "open_app_url")


def _check_setting(key: str, value: Any) -> Any:
    if key in _URL_SETTINGS:
        if not isinstance(value, str) or len(value) > MAX_URL or not value.isprintable():
            raise InvalidInput(f"referrals config: {key} must be a URL of at most {MAX_URL} characters", field=key)
        if value and not value.startswith(("https://", "http://")):
            raise InvalidInput(f"referrals config: {key} must start with https:// or http://", field=key)
        return value
    if key == "enabled":
        if not isinstance(value, bool):
            raise InvalidInput("referrals config: enabled must be true or false", field=key)
        return value
    low, high, nullable = _WHOLE_SETTINGS[key]
    if nullable and value is None:
        return None
    if not is_whole(value, low, high):
        raise InvalidInput(f"referrals config: {key} must be a whole number from {low} to {high}", field=key)
    return value


async def apply_referral_config(section: dict[str, Any]) -> ReferralPolicy | None:
    """Write `[referrals]` of the program file as the referral policy (keys not given keep their value; an empty
    section changes nothing). Unknown keys are refused, so a typo is not silently ignored."""
    if not section:
        return await current_policy()
    known = {"enabled", *_WHOLE_SETTINGS, *_URL_SETTINGS}
    unknown = sorted(set(section) - known)
    if unknown:
        raise InvalidInput(f"referrals config: unknown setting {unknown[0]!r}", field=unknown[0])
    values = {key: _check_setting(key, value) for key, value in section.items()}
    policy = await current_policy()
    if policy is None:
        return await ReferralPolicy.create(**values, updated_at=clock.now())
    for key, value in values.items():
        setattr(policy, key, value)
    policy.updated_at = clock.now()
    await policy.save()
    return policy
