"""Referrals: each member's code, a referee attaching one, two-sided bonuses and the abuse checks.

Codes. Every member has one short code (`Member.referral_code`, given on first use by `code_of`): eight characters
from an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B), so a code read aloud or typed from a photo
is the code. `normalize_code` is forgiving of what people type (case, spaces, dashes); anything that cannot be a
code is None, and a lookup of it reveals nothing.

The policy is one row (`ReferralPolicy`, `[referrals]` of the program file, `apply_referral_config`); before one is
configured referrals earn nothing.

Life of a referral (`Referral`, one per referee ever: a unique index):
- `apply_referral` (the app's `referralApply`, or `sessionCreate` with a code at sign-up: `check_code` first, so a
  bad code refuses the sign-in before anything is written) within `apply_days` of the referee's enrolment (exactly
  N days still counts) → APPLIED, or FLAGGED when an abuse check matched (`referral.applied`, `referral.flagged`).
- The abuse checks (`Referral.flags`: `{check, detail}` in words a manager can judge): the same person by
  `email_key` (SELF_REFERRAL_EMAIL), phone (SELF_REFERRAL_PHONE), app installation (SELF_REFERRAL_DEVICE: a device
  hash of the referee's among the referrer's sessions'), payment card (SELF_REFERRAL_CARD, at conversion: the
  qualifying purchase's fingerprint on a purchase of the referrer's); a ring (RING: the referrer was referred,
  through up to `RING_DEPTH` referrals, by the referee); one device behind more than `device_max_referees`
  referrals within `device_window_hours` (DEVICE_VELOCITY); a returning member (RETURNING_MEMBER: an older account
  with the same email key or phone).
- `convert_in_purchase` (inside `purchases._earn`, the referee locked): the referee's first purchase with total ≥
  `min_spend` converts an APPLIED referral → CONVERTED, both bonuses credited as pending REFERRAL_BONUS lots that
  mature with that purchase's points (`available_at`); the referrer is locked by id after the referee. Over the
  referrer's cap (`referrer_cap_per_month`, the program's calendar month; `referrer_cap_lifetime`; both count
  converted and rewarded referrals that paid the referrer) the referral still converts, the referrer's bonus is 0
  and a REFERRER_CAP note says why. A FLAGGED referral only remembers the purchase (for the review).
- `cancel_in_refund` (inside `purchases._refund`): a refund inside the return window that takes the purchase's net
  below `min_spend` voids both pending bonuses (`ledger.void_pending_credit`) → CANCELLED; after the window nothing
  is taken back.
- `reward_due` (the `reward-referrals` job) → REWARDED once `available_at` passed (the lots mature by settling).
- `review_referral` (managers): APPROVE → APPLIED, or CONVERTED at once if the qualifying purchase was made
  (bonuses pending until its window ends, or available if it has); REJECT → REJECTED. Audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from loyalty import clock, events, ledger
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import MAX_POINTS, check_text, is_whole
from loyalty.contacts import phone_key
from loyalty.errors import DomainError, InvalidInput, MemberNotFound, NotFound
from loyalty.models import (
    EntryKind,
    Member,
    Program,
    Purchase,
    Referral,
    ReferralPolicy,
    ReferralStatus,
    RefreshToken,
    StaffRole,
)
from loyalty.program import current_configuration

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


# --- refusals ---------------------------------------------------------------------------------------


class ReferralsOff(DomainError):
    """The program has no referral policy, or it is switched off."""

    code = "REFERRALS_OFF"


class ReferralCodeUnknown(DomainError):
    """No member has this code (or the text cannot be a code): nothing about members is revealed."""

    code = "CODE_UNKNOWN"


class OwnReferralCode(DomainError):
    code = "OWN_CODE"


class AlreadyReferred(DomainError):
    """The member attached a code before (once per member, ever)."""

    code = "ALREADY_REFERRED"


class ReferralWindowClosed(DomainError):
    """More than `apply_days` have passed since the member enrolled."""

    code = "WINDOW_CLOSED"


class ReferralNotFound(NotFound):
    code = "REFERRAL_NOT_FOUND"


class ReferralNotFlagged(DomainError):
    """Only a FLAGGED referral can be reviewed (another manager may just have reviewed it)."""

    code = "NOT_FLAGGED"


# --- hashing what identifies a device or a card --------------------------------------------------------

MAX_CODE_TEXT = 64  # what a person may type around a code (spaces, dashes); longer is not a code
MAX_DEVICE_ID = 200
MAX_FINGERPRINT = 200
MAX_NOTE = 200  # `Referral.review_note`
RING_DEPTH = 5  # referrals followed up from the referrer looking for the referee (A→B→…→A)


def _check_identifier(value: object, field: str, max_length: int, label: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length or not value.isprintable() or not value.strip():
        raise InvalidInput(f"{label} is 1 to {max_length} printable characters", field=field)
    return value


def device_hash(device_id: str | None, key: bytes, field: str = "device_id") -> str | None:
    """The stored form of an app installation's id: HMAC-SHA-256 under the deployment's `key` (the id itself is never
    stored). None for None; `InvalidInput` for an empty, over-long or unprintable id."""
    if device_id is None:
        return None
    value = _check_identifier(device_id, field, MAX_DEVICE_ID, "a device id")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprint_hash(fingerprint: str | None, field: str = "payment_fingerprint") -> str | None:
    """The stored form of a payment card's fingerprint as the till sends it (SHA-256, domain-separated), or None."""
    if fingerprint is None:
        return None
    value = _check_identifier(fingerprint, field, MAX_FINGERPRINT, "a payment fingerprint")
    return hashlib.sha256(b"klubb payment fingerprint\0" + value.encode("utf-8")).hexdigest()


# --- applying a code --------------------------------------------------------------------------------


def _code_of_text(text: object, field: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_CODE_TEXT or not text.isprintable():
        raise InvalidInput(f"a referral code is at most {MAX_CODE_TEXT} printable characters", field=field)
    code = normalize_code(text)
    if code is None:
        raise ReferralCodeUnknown("no member has this referral code", field=field)
    return code


async def check_code(text: object, *, field: str = "code") -> Member:
    """The referrer whose code `text` spells, checked before a sign-up writes anything (`sessionCreate` with a code).

    Raises `InvalidInput`, `ReferralsOff`, `ReferralCodeUnknown`.
    """
    _, _, referrer = await _referrer_of_text(text, field)
    return referrer


async def _referrer_of_text(text: object, field: str) -> tuple[str, ReferralPolicy, Member]:
    """(the code `text` spells, the policy, the member whose code it is) while referrals are on (`InvalidInput`,
    `ReferralsOff`, `ReferralCodeUnknown`)."""
    code = _code_of_text(text, field)
    policy = await current_policy()
    if policy is None or not policy.enabled:
        raise ReferralsOff("the program has no referral scheme at the moment", field=field)
    referrer = await referrer_by_code(code)
    if referrer is None:
        raise ReferralCodeUnknown("no member has this referral code", field=field)
    return code, policy, referrer


def _flag(check: str, detail: str) -> dict[str, str]:
    return {"check": check, "detail": detail}


async def _apply_flags(
    conn: BaseDBAsyncClient,
    policy: ReferralPolicy,
    referrer: Member,
    referee: Member,
    device: str | None,
    now: datetime,
) -> list[dict[str, str]]:
    """The abuse checks at apply time, in words a manager can judge."""
    flags: list[dict[str, str]] = []
    if referee.email_key is not None and referee.email_key == referrer.email_key:
        flags.append(_flag("SELF_REFERRAL_EMAIL", f"both accounts' emails reach the mailbox {referee.email_key}"))
    phone = phone_key(referee.phone)
    if phone is not None and phone == phone_key(referrer.phone):
        flags.append(_flag("SELF_REFERRAL_PHONE", f"both accounts have the phone number {phone}"))
    referee_devices: set[str] = {
        str(value)
        for value in await RefreshToken.filter(member_id=referee.id, device_hash__isnull=False)
        .using_db(conn)
        .values_list("device_hash", flat=True)
    }
    if device is not None:
        referee_devices.add(device)
    if referee_devices and (
        await RefreshToken.filter(member_id=referrer.id, device_hash__in=sorted(referee_devices))
        .using_db(conn)
        .exists()
    ):
        flags.append(_flag("SELF_REFERRAL_DEVICE", "the friend uses the app on a device the referrer signed in on"))
    upstream = referrer.id
    for hops in range(1, RING_DEPTH + 1):
        found: list[Any] = list(
            await Referral.filter(referee_id=upstream).using_db(conn).values_list("referrer_id", flat=True)
        )
        if not found:
            break
        upstream = int(found[0])
        if upstream == referee.id:
            chain = "directly" if hops == 1 else f"through {hops - 1} other member(s)"
            flags.append(_flag("RING", f"the friend referred the referrer {chain}: a referral ring"))
            break
    if device is not None:
        since = now - timedelta(hours=policy.device_window_hours)
        recent = await Referral.filter(device_hash=device, applied_at__gte=since).using_db(conn).count()
        if recent + 1 > policy.device_max_referees:
            flags.append(
                _flag(
                    "DEVICE_VELOCITY",
                    f"{recent + 1} referrals from this device within {policy.device_window_hours} hours"
                    f" (more than {policy.device_max_referees})",
                )
            )
    same_person = Q()
    if referee.email_key is not None:
        same_person |= Q(email_key=referee.email_key)
    if referee.phone:
        same_person |= Q(phone__in=sorted({referee.phone, phone or referee.phone}))
    if same_person.children and (
        await Member.filter(same_person, created_at__lt=referee.created_at)
        .exclude(id__in=[referee.id, referrer.id])
        .using_db(conn)
        .exists()
    ):
        flags.append(_flag("RETURNING_MEMBER", "an older account has the friend's email or phone: a returning member"))
    return flags


async def apply_referral(
    referee_id: int, code_text: object, *, device: str | None = None, field: str = "code"
) -> Referral:
    """Attach a referral code to a member (the referee): once, within `apply_days` of enrolment (exactly N days
    still counts). `device`: the app installation's hash (`device_hash`), if the app sent one.

    The abuse checks run at once: a match makes the referral FLAGGED (`referral.flagged`: it earns nothing until a
    manager approves it), else APPLIED. Emits `referral.applied`.

    Raises `InvalidInput` (the code's text), `ReferralsOff`, `ReferralCodeUnknown`, `OwnReferralCode`,
    `AlreadyReferred`, `ReferralWindowClosed`, `MemberNotFound`; nothing is written then.
    """
    code, policy, referrer = await _referrer_of_text(code_text, field)
    if referrer.id == referee_id:
        raise OwnReferralCode("this is your own referral code", field=field)
    now = clock.now()
    try:
        async with in_transaction() as conn:
            referee = await ledger.lock_member(conn, referee_id)
            if await Referral.filter(referee_id=referee_id).using_db(conn).exists():
                raise AlreadyReferred("you have already used a referral code", field=field)
            if now > referee.created_at + timedelta(days=policy.apply_days):
                raise ReferralWindowClosed(
                    f"a referral code can be used within {policy.apply_days} days of joining", field=field
                )
            flags = await _apply_flags(conn, policy, referrer, referee, device, now)
            status = ReferralStatus.FLAGGED if flags else ReferralStatus.APPLIED
            referral = await Referral.create(
                referrer_id=referrer.id,
                referee_id=referee_id,
                code=code,
                status=status,
                flags=flags,
                device_hash=device,
                applied_at=now,
                updated_at=now,
                using_db=conn,
            )
            payload = {"referral_id": referral.id, "referrer_id": referrer.id, "status": status.value}
            await events.emit(conn, events.REFERRAL_APPLIED, member_id=referee_id, payload=payload)
            if flags:
                checks = [flag["check"] for flag in flags]
                await events.emit(
                    conn, events.REFERRAL_FLAGGED, member_id=referee_id, payload={**payload, "checks": checks}
                )
            return referral
    except IntegrityError as error:  # a concurrent apply of the same referee won
        raise AlreadyReferred("you have already used a referral code", field=field) from error


# --- converting, cancelling, rewarding ----------------------------------------------------------------


def month_window(program: Program, at: datetime) -> tuple[datetime, datetime]:
    """The calendar month containing `at` in the program's timezone, as a UTC [start, end) pair (DST-correct)."""
    zone = ZoneInfo(program.timezone)
    local = at.astimezone(zone)
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    end = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


_PAID = (ReferralStatus.CONVERTED, ReferralStatus.REWARDED)


async def _cap_reached(
    conn: BaseDBAsyncClient, program: Program, policy: ReferralPolicy, referrer_id: int, now: datetime
) -> str | None:
    """Why the referrer's bonus is 0 now (a cap reached), or None. Counts the converted and rewarded referrals that
    paid the referrer a bonus; called with the referrer locked, so concurrent conversions count each other."""
    paid = Referral.filter(referrer_id=referrer_id, status__in=_PAID, referrer_entry_id__isnull=False).using_db(conn)
    if policy.referrer_cap_lifetime is not None and await paid.count() >= policy.referrer_cap_lifetime:
        return f"the referrer reached the lifetime cap of {policy.referrer_cap_lifetime} rewarded referrals"
    if policy.referrer_cap_per_month is not None:
        start, end = month_window(program, now)
        if await paid.filter(converted_at__gte=start, converted_at__lt=end).count() >= policy.referrer_cap_per_month:
            return f"the referrer reached the cap of {policy.referrer_cap_per_month} rewarded referrals this month"
    return None


async def _convert(
    conn: BaseDBAsyncClient,
    program: Program,
    policy: ReferralPolicy,
    referral: Referral,
    referee: Member,
    purchase_id: int,
    available_at: datetime,
    now: datetime,
    outbox: events.Outbox | None,
) -> None:
    """CONVERTED: both bonuses credited pending until `available_at` (the referee locked; the referral row locked;
    the referrer locked here, after both)."""
    referrer = await ledger.lock_member(conn, referral.referrer_id)
    capped = await _cap_reached(conn, program, policy, referrer.id, now)
    referee_entry = referrer_entry = None
    if policy.referee_points:
        referee_entry = await ledger.credit_pending(
            conn,
            referee,
            program,
            policy.referee_points,
            kind=EntryKind.REFERRAL_BONUS,
            available_at=available_at,
            description="Welcome bonus: joined with a friend's code",
        )
    referrer_points = 0 if capped else policy.referrer_points
    if referrer_points:
        referrer_entry = await ledger.credit_pending(
            conn,
            referrer,
            program,
            referrer_points,
            kind=EntryKind.REFERRAL_BONUS,
            available_at=available_at,
            description="Referral bonus: a friend joined with your code",
        )
    flags = [*referral.flags, *([_flag("REFERRER_CAP", capped)] if capped else [])]
    await (
        Referral.filter(id=referral.id)
        .using_db(conn)
        .update(
            status=ReferralStatus.CONVERTED,
            flags=flags,
            purchase_id=purchase_id,
            converted_at=now,
            available_at=available_at,
            referee_points=policy.referee_points,
            referrer_points=referrer_points,
            referee_entry_id=referee_entry.id if referee_entry else None,
            referrer_entry_id=referrer_entry.id if referrer_entry else None,
            updated_at=now,
        )
    )
    payload = {
        "referral_id": referral.id,
        "referee_id": referee.id,
        "referee_points": policy.referee_points,
        "referrer_points": referrer_points,
        "available_at": available_at.astimezone(UTC).isoformat(),
        "capped": capped is not None,
    }
    if outbox is not None:
        outbox.add(events.REFERRAL_CONVERTED, member_id=referrer.id, payload=payload)
    else:
        await events.emit(conn, events.REFERRAL_CONVERTED, member_id=referrer.id, payload=payload)


async def convert_in_purchase(
    conn: BaseDBAsyncClient,
    program: Program,
    policy: ReferralPolicy | None,
    referee: Member,
    purchase: Purchase,
    available_at: datetime,
    referral_id: int,
    outbox: events.Outbox,
) -> None:
    """A purchase of a referee with an open referral (`referral_id`, read with the purchase's member totals):
    at least `min_spend` converts an APPLIED referral (`_convert`); a FLAGGED one, or one whose card fingerprint
    is the referrer's (SELF_REFERRAL_CARD: then FLAGGED, `referral.flagged`), only remembers the purchase and its
    window for the review. Below `min_spend`, or with referrals off, nothing happens."""
    if policy is None or not policy.enabled or purchase.total < policy.min_spend:
        return
    referral = await Referral.filter(id=referral_id).using_db(conn).select_for_update().first()
    if referral is None or referral.purchase_id is not None:
        return
    if referral.status not in (ReferralStatus.APPLIED, ReferralStatus.FLAGGED):
        return
    now = clock.now()
    flags = list(referral.flags)
    card = purchase.payment_fingerprint
    card_matches = card is not None and (
        await Purchase.filter(member_id=referral.referrer_id, payment_fingerprint=card).using_db(conn).exists()
    )
    if card_matches:
        flags.append(_flag("SELF_REFERRAL_CARD", "the friend's qualifying purchase was paid with the referrer's card"))
    if card_matches or referral.status == ReferralStatus.FLAGGED:
        await (
            Referral.filter(id=referral.id)
            .using_db(conn)
            .update(
                status=ReferralStatus.FLAGGED,
                flags=flags,
                purchase_id=purchase.id,
                available_at=available_at,
                updated_at=now,
            )
        )
        if referral.status == ReferralStatus.APPLIED:
            outbox.add(
                events.REFERRAL_FLAGGED,
                member_id=referee.id,
                payload={
                    "referral_id": referral.id,
                    "referrer_id": referral.referrer_id,
                    "checks": ["SELF_REFERRAL_CARD"],
                },
            )
        return
    await _convert(conn, program, policy, referral, referee, purchase.id, available_at, now, outbox)


async def cancel_in_refund(
    conn: BaseDBAsyncClient,
    policy: ReferralPolicy | None,
    referee: Member,
    purchase: Purchase,
    refunded_total: int,
    referral_id: int,
) -> bool:
    """A refund of a referral's qualifying purchase (`referral_id`, read with the purchase), the referee locked:
    inside the return window (before `available_at`) and taking the net below `min_spend`, both pending bonuses are
    voided and the referral is CANCELLED (`referral.cancelled`). After the window nothing is taken back. Returns
    whether it cancelled."""
    min_spend = policy.min_spend if policy is not None else 0
    if purchase.total - refunded_total >= min_spend:
        return False
    referral = await Referral.filter(id=referral_id).using_db(conn).select_for_update().first()
    now = clock.now()
    if referral is None or referral.status != ReferralStatus.CONVERTED:
        return False
    if referral.available_at is None or now >= referral.available_at:
        return False
    referrer = await ledger.lock_member(conn, referral.referrer_id)
    reason = f"Referral cancelled: the qualifying purchase was returned (receipt {purchase.receipt_id})"
    if referral.referee_entry_id is not None:
        await ledger.void_pending_credit(conn, referee, referral.referee_entry_id, description=reason)
    if referral.referrer_entry_id is not None:
        await ledger.void_pending_credit(conn, referrer, referral.referrer_entry_id, description=reason)
    await (
        Referral.filter(id=referral.id)
        .using_db(conn)
        .update(status=ReferralStatus.CANCELLED, cancelled_at=now, updated_at=now)
    )
    await events.emit(
        conn,
        events.REFERRAL_CANCELLED,
        member_id=referrer.id,
        payload={"referral_id": referral.id, "referee_id": referee.id, "purchase_id": purchase.id},
    )
    return True


async def reward_referral(referral_id: int, at: datetime) -> bool:
    """CONVERTED → REWARDED once `available_at` passed (`referral.rewarded`); False if it was not (any more) due.
    The bonus lots mature by the ledger's settling, not here."""
    async with in_transaction() as conn:
        updated = (
            await Referral.filter(id=referral_id, status=ReferralStatus.CONVERTED, available_at__lte=at)
            .using_db(conn)
            .update(status=ReferralStatus.REWARDED, rewarded_at=at, updated_at=at)
        )
        if not updated:
            return False
        referral = await Referral.get(id=referral_id, using_db=conn)
        await events.emit(
            conn,
            events.REFERRAL_REWARDED,
            member_id=referral.referrer_id,
            payload={
                "referral_id": referral.id,
                "referee_id": referral.referee_id,
                "referee_points": referral.referee_points,
                "referrer_points": referral.referrer_points,
            },
        )
        return True


# --- the staff review ---------------------------------------------------------------------------------


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


async def review_referral(actor: Actor, referral_id: int, decision: str, note: str = "") -> Referral:
    """A manager's decision on a FLAGGED referral: APPROVE → APPLIED (or CONVERTED at once when its qualifying
    purchase was made and still meets `min_spend`: bonuses pending until that purchase's window ends, available if
    it has), REJECT → REJECTED (`referral.rejected`). The flags stay; audited. Of two managers reviewing at once one
    decides, the other gets `ReferralNotFlagged`.

    Raises `Forbidden` (below manager), `InvalidInput` (decision, note), `ReferralNotFound`, `ReferralNotFlagged`.
    """
    actor.require(StaffRole.MANAGER)
    if decision not in (ReviewDecision.APPROVE, ReviewDecision.REJECT):
        raise InvalidInput("decide approve or reject", field="decision")
    note = check_text(note, "note", MAX_NOTE, required=False).strip()
    found = await Referral.get_or_none(id=referral_id)
    if found is None:
        raise ReferralNotFound("no such referral", field="referral")
    now = clock.now()
    async with in_transaction() as conn:
        referee = await ledger.lock_member(conn, found.referee_id)  # the lock order: referee, referral, referrer
        referral = await Referral.filter(id=referral_id).using_db(conn).select_for_update().first()
        assert referral is not None
        if referral.status != ReferralStatus.FLAGGED:
            raise ReferralNotFlagged(
                f"this referral is {referral.status.value}, not waiting for a review", field="referral"
            )
        await (
            Referral.filter(id=referral_id)
            .using_db(conn)
            .update(
                reviewed_by_id=actor.id if actor.kind == "staff" else None,
                reviewed_at=now,
                review_note=note,
                updated_at=now,
            )
        )
        if decision == ReviewDecision.REJECT:
            status = ReferralStatus.REJECTED
            await Referral.filter(id=referral_id).using_db(conn).update(status=status)
            await events.emit(
                conn,
                events.REFERRAL_REJECTED,
                member_id=referee.id,
                payload={"referral_id": referral_id, "referrer_id": referral.referrer_id},
            )
        else:
            status = await _approve(conn, referral, referee, now)
        await record_audit(
            actor,
            "referral.review",
            conn=conn,
            member_id=referee.id,
            target=f"referral:{referral_id}",
            before={"status": ReferralStatus.FLAGGED.value},
            after={"status": status.value, "decision": decision},
            reason=note,
        )
    return await Referral.get(id=referral_id)


async def _approve(conn: BaseDBAsyncClient, referral: Referral, referee: Member, now: datetime) -> ReferralStatus:
    configuration = await current_configuration(conn)
    policy = configuration.referral_policy
    purchase = await Purchase.get_or_none(id=referral.purchase_id, using_db=conn) if referral.purchase_id else None
    qualifies = (
        purchase is not None
        and policy is not None
        and policy.enabled
        and purchase.total - purchase.refunded_total >= policy.min_spend
        and referral.available_at is not None
    )
    if not qualifies:
        await Referral.filter(id=referral.id).using_db(conn).update(status=ReferralStatus.APPLIED, purchase_id=None)
        return ReferralStatus.APPLIED
    assert purchase is not None
    assert policy is not None
    assert referral.available_at is not None
    await ledger.settle_if_due(conn, referee)
    await _convert(
        conn, configuration.program, policy, referral, referee, purchase.id, referral.available_at, now, None
    )
    return ReferralStatus.CONVERTED


@dataclass(frozen=True)
class ReferralPage:
    referrals: list[Referral]
    has_next: bool


async def review_queue(status: ReferralStatus | None, limit: int, after_id: int | None = None) -> ReferralPage:
    """Referrals oldest first (keyset on id), of one status if given: the managers' review queue is FLAGGED."""
    query = Referral.all()
    if status is not None:
        query = query.filter(status=status)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = list(await query.order_by("id").limit(limit + 1))
    return ReferralPage(rows[:limit], len(rows) > limit)


# --- what the referrer sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralSummary:
    code: str
    invited: int  # referrals naming the member, whatever became of them
    converted: int  # converted or rewarded
    points_earned: int  # the referrer's bonuses of those (pending ones included)


async def referral_summary(member_id: int) -> ReferralSummary:
    """The member's code and how their referrals went (the code, then one aggregate statement)."""
    code = await code_of(member_id)
    rows = (
        await Referral.filter(referrer_id=member_id)
        .annotate(
            invited=Count("id"),
            converted=Count("id", _filter=Q(status__in=_PAID)),
            earned=Sum("referrer_points", _filter=Q(status__in=_PAID)),
        )
        .values("invited", "converted", "earned")
    )
    row = rows[0] if rows else {}
    return ReferralSummary(
        code=code,
        invited=int(row.get("invited") or 0),
        converted=int(row.get("converted") or 0),
        points_earned=int(row.get("earned") or 0),
    )
