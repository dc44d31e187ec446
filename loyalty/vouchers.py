"""Vouchers: single-use codes a member gets for a reward, an offer or a completed stamp card.

Codes are 16 characters of Crockford base32 drawn from `secrets`: 32^16 = 2^80 = 1.2e24 possible codes. The issue
asks for a code space of at least 1e9 times the vouchers issued, so that one guess hits *some* live voucher with
probability at most 1e-9: 2^80 / 1e9 = 1.2e15 vouchers keeps that true (a million vouchers a day for three million
years). Guessing is throttled at the checkout on top of that (`redeem_voucher`). Two issued codes colliding is as
unlikely (birthday bound after 1e9 vouchers: 1e18 / 2^81 = 4e-7) and would only fail that one issuing
transaction on the unique constraint, writing nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from loyalty import clock, events, sql, throttle
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import check_idempotency_key, check_store_code
from loyalty.donations import count_donation
from loyalty.errors import DomainError, InvalidInput, NotFound
from loyalty.idempotency import idempotent
from loyalty.ledger import locked_member, reverse_debit
from loyalty.models import LedgerEntry, Offer, Reward, StaffRole, StampCard, Voucher, VoucherStatus
from loyalty.rows import AnyVoucher, VoucherPageRow

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 16
DEFAULT_VALID_DAYS = 30  # vouchers that do not come from a reward (offers, stamp cards)
# The till tells a scanned voucher from a scanned member card by this prefix (QR alphanumeric-mode safe).
BARCODE_PREFIX = "V:"
BARCODE_FORMAT = "QR_CODE"
# Typed codes are forgiving: Crockford's look-alikes map to the digit they resemble.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Guessing codes at the checkout: after this many wrong codes per subject within the window, refuse.
THROTTLE_SCOPE = "voucher_code"
THROTTLE_LIMIT = 5
THROTTLE_WINDOW = timedelta(minutes=15)


class VoucherNotFound(NotFound):
    """No such voucher — also for another member's voucher, which must look exactly like a missing one."""

    code = "VOUCHER_NOT_FOUND"


class InvalidCode(DomainError):
    """Unknown code, or a code of another member than the one at the till."""

    code = "INVALID_CODE"


class AlreadyRedeemed(DomainError):
    code = "ALREADY_REDEEMED"


class AlreadyCancelled(DomainError):
    code = "ALREADY_CANCELLED"


class VoucherExpired(DomainError):
    code = "VOUCHER_EXPIRED"


class NotCancellable(DomainError):
    """Only vouchers bought with points can be cancelled (offer and stamp-card vouchers have nothing to give back)."""

    code = "NOT_CANCELLABLE"


def new_code() -> str:
    """A fresh random voucher code (80 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def barcode_value(code: str) -> str:
    """What the voucher's barcode encodes; `normalize_code` turns it (or the typed code) back into the code."""
    return f"{BARCODE_PREFIX}{code}"


def display_code(code: str) -> str:
    """The code grouped for people to read and type: `ABCD-EFGH-JKMN-PQRS`."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalize_code(raw: str) -> str:
    """The canonical code for a scanned barcode value or a typed code (any case, with dashes or spaces)."""
    value = raw.strip().upper()
    if value.startswith(BARCODE_PREFIX):
        value = value[len(BARCODE_PREFIX) :]
    return value.replace("-", "").replace(" ", "").translate(_ALIASES)


async def issue_voucher(
    conn: BaseDBAsyncClient,
    member_id: int,
    *,
    reward: Reward | None = None,
    offer: Offer | None = None,
    stamp_card: StampCard | None = None,
    points_cost: int = 0,
    entry: LedgerEntry | None = None,
    outbox: events.Outbox | None = None,
) -> Voucher:
    """Issue an ACTIVE voucher to a member inside the caller's transaction `conn`; emits `voucher.issued` (into
    `outbox` when given, which the caller flushes).

    It expires `reward.voucher_valid_days` days from now (`DEFAULT_VALID_DAYS` without a reward). `entry` is
    the redemption that paid `points_cost` points for it, so cancelling can give exactly those points back.
    The caller holds whatever lock its own rules need (the member row for a points redemption).
    """
    now = clock.now()
    valid_days = reward.voucher_valid_days if reward is not None else DEFAULT_VALID_DAYS
    voucher = await Voucher.create(
        member_id=member_id,
        code=new_code(),
        status=VoucherStatus.ACTIVE,
        reward=reward,
        offer=offer,
        stamp_card=stamp_card,
        ledger_entry=entry,
        points_cost=points_cost,
        issued_at=now,
        expires_at=now + timedelta(days=valid_days),
        using_db=conn,
    )
    # The code stays out of events: webhooks and logs must not carry something that can be redeemed.
    payload = {
        "voucher_id": voucher.id,
        "reward_id": reward.id if reward is not None else None,
        "offer_id": offer.id if offer is not None else None,
        "stamp_card_id": stamp_card.id if stamp_card is not None else None,
        "points_cost": points_cost,
        "expires_at": voucher.expires_at.isoformat(),
    }
    if outbox is not None:
        outbox.add(events.VOUCHER_ISSUED, member_id=member_id, payload=payload)
    else:
        await events.emit(conn, events.VOUCHER_ISSUED, member_id=member_id, payload=payload)
    return voucher


def effective_status(voucher: AnyVoucher, at: datetime) -> VoucherStatus:
    """The status as of `at`: an ACTIVE voucher past `expires_at` is EXPIRED even before the job has marked it."""
    if voucher.status == VoucherStatus.ACTIVE and voucher.expires_at <= at:
        return VoucherStatus.EXPIRED
    return voucher.status


async def mark_expired(conn: BaseDBAsyncClient, voucher_ids: list[int], at: datetime) -> int:
    """Persist EXPIRED for those of `voucher_ids` still ACTIVE and due; emits `voucher.expired`; returns how many.

    Expired vouchers give no points back: the points were spent when the voucher was issued. The job
    `loyalty.jobs.expire_vouchers` runs this for every due voucher; a redemption attempt does it for its own.
    """
    expired = 0
    for voucher_id, member_id in await Voucher.filter(id__in=voucher_ids).using_db(conn).values_list("id", "member_id"):
        # Row by row and conditional, so two jobs running at once emit each event once.
        if (
            await Voucher.filter(id=voucher_id, status=VoucherStatus.ACTIVE, expires_at__lte=at)
            .using_db(conn)
            .update(status=VoucherStatus.EXPIRED)
        ):
            await events.emit(conn, events.VOUCHER_EXPIRED, member_id=member_id, payload={"voucher_id": voucher_id})
            expired += 1
    return expired


# --- the member's vouchers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherKey:
    """A position in `voucher_page`: after voucher `id` among the usable ones (phase 0) or the others (1)."""

    phase: int
    id: int


async def member_vouchers(
    member_id: int,
    *,
    at: datetime,
    limit: int,
    after: VoucherKey | None = None,
    status: VoucherStatus | None = None,
) -> list[VoucherPageRow]:
    """A page of the member's vouchers in `voucher_page` order (without the positions)."""
    return [voucher for _, voucher in await voucher_page(member_id, at=at, limit=limit, after=after, status=status)]


# The member's list in one statement: the usable part (ACTIVE and not expired, soonest expiry first) and/or the
# others (newest first), each limited to the page, as rows with their part; `voucher_page` cuts the page.
_PAGE_COLUMNS = sql.columns(VoucherPageRow, "v", until="phase")
_USABLE = (
    f'SELECT {_PAGE_COLUMNS}, 0 AS "phase" FROM "voucher" AS "v"'  # noqa: S608 - names from the row type
    ' WHERE "v"."member_id" = ? AND "v"."status" = ? AND "v"."expires_at" > ?'
)
_AFTER_USABLE = ' AND ("v"."expires_at" > ? OR ("v"."expires_at" = ? AND "v"."id" > ?))'
_OTHERS = (
    f'SELECT {_PAGE_COLUMNS}, 1 AS "phase" FROM "voucher" AS "v"'  # noqa: S608 - names from the row type
    ' WHERE "v"."member_id" = ? AND NOT ("v"."status" = ? AND "v"."expires_at" > ?)'
)
_EXPIRED_ONES = ' AND "v"."status" IN (?, ?)'
_WITH_STATUS = ' AND "v"."status" = ?'
_BEFORE = ' AND "v"."id" < ?'
_USABLE_ORDER = ' ORDER BY "v"."expires_at", "v"."id" LIMIT ?'
_OTHERS_ORDER = ' ORDER BY "v"."id" DESC LIMIT ?'


def _page(name: str, usable: str | None, others: str | None) -> sql.Rows[VoucherPageRow]:
    parts = []
    if usable is not None:
        parts.append("SELECT * FROM (" + _USABLE + usable + _USABLE_ORDER + ') AS "u"')  # noqa: S608 - fixed fragments
    if others is not None:
        parts.append("SELECT * FROM (" + _OTHERS + others + _OTHERS_ORDER + ') AS "o"')  # noqa: S608 - fixed fragments
    union = " UNION ALL ".join(part for part in parts if part)
    order = (
        ' ORDER BY "phase", CASE WHEN "phase" = 0 THEN "expires_at" END, CASE WHEN "phase" = 0 THEN "id" ELSE -"id" END'
    )
    return sql.rows(name, Voucher, VoucherPageRow, f'SELECT * FROM ({union}) AS "page"{order}')  # noqa: S608


_PAGES = {
    # (status filter, which part the cursor is in): the statement
    ("all", None): _page("vouchers.page", "", ""),
    ("all", 0): _page("vouchers.page_after_usable", _AFTER_USABLE, ""),
    ("all", 1): _page("vouchers.page_after_others", None, _BEFORE),
    ("usable", None): _page("vouchers.usable", "", None),
    ("usable", 0): _page("vouchers.usable_after", _AFTER_USABLE, None),
    ("expired", None): _page("vouchers.expired", None, _EXPIRED_ONES),
    ("expired", 1): _page("vouchers.expired_before", None, _EXPIRED_ONES + _BEFORE),
    ("status", None): _page("vouchers.with_status", None, _WITH_STATUS),
    ("status", 1): _page("vouchers.with_status_before", None, _WITH_STATUS + _BEFORE),
}


async def voucher_page(
    member_id: int,
    *,
    at: datetime,
    limit: int,
    after: VoucherKey | None = None,
    status: VoucherStatus | None = None,
) -> list[tuple[VoucherKey, VoucherPageRow]]:
    """A page of the member's vouchers as of `at`, each with its position: usable ones first, soonest expiry first;
    then the others, newest first.

    With `status`, only vouchers of that effective status (EXPIRED includes ACTIVE vouchers past their expiry).
    Raises InvalidInput for a position that is not one of the member's vouchers. One statement (rows); a page after
    a usable voucher reads that voucher's stored expiry first (keyset on (expires_at, id): exact on every database).
    """
    kind = {None: "all", VoucherStatus.ACTIVE: "usable", VoucherStatus.EXPIRED: "expired"}.get(status, "status")
    phase = after.phase if after is not None else None
    if phase == 0 and kind in ("expired", "status"):
        phase = None  # those lists have no usable part: a usable position starts them from the top
    if phase == 1 and kind == "usable":
        return []  # past the usable part of a list of usable vouchers
    live = [VoucherStatus.ACTIVE.value, at]
    params: list[Any] = []
    if kind in ("all", "usable") and phase != 1:  # the statement has a usable part
        params += [member_id, *live]
        if phase == 0:
            assert after is not None
            expiry = await Voucher.filter(id=after.id, member_id=member_id).values_list("expires_at", flat=True)
            if not expiry:
                raise InvalidInput("`after` is not a cursor from this list", field="after")
            params += [expiry[0], expiry[0], after.id]
        params.append(limit)
    if kind != "usable":
        params += [member_id, *live]
        if kind == "expired":
            params += [VoucherStatus.ACTIVE.value, VoucherStatus.EXPIRED.value]
        elif kind == "status":
            assert status is not None
            params.append(status.value)
        if phase == 1:
            assert after is not None
            params.append(after.id)
        params.append(limit)
    rows = await sql.fetch_rows(_PAGES[(kind, phase)], params)
    return [(VoucherKey(row.phase, row.id), row) for row in rows[:limit]]


async def get_member_voucher(member_id: int, voucher_id: int) -> Voucher:
    """The member's own voucher; another member's id raises `VoucherNotFound` like a missing one."""
    voucher = await Voucher.get_or_none(id=voucher_id, member_id=member_id)
    if voucher is None:
        raise VoucherNotFound("no such voucher", field="voucher_id")
    return voucher


# --- cancelling ---------------------------------------------------------------------------------------


def _refusal(voucher: Voucher, at: datetime, field: str) -> DomainError:
    """Why a voucher that is not ACTIVE-and-unexpired cannot be used."""
    status = effective_status(voucher, at)
    if status == VoucherStatus.REDEEMED:
        return AlreadyRedeemed("this voucher has already been redeemed", field=field)
    if status == VoucherStatus.CANCELLED:
        return AlreadyCancelled("this voucher was cancelled", field=field)
    return VoucherExpired(f"this voucher expired at {voucher.expires_at.isoformat()}", field=field)


async def cancel_voucher(member_id: int, voucher_id: int) -> Voucher:
    """Cancel the member's unused, unexpired voucher: exactly the points it took go back to the lots they came
    from, and the reward's stock gets its unit back.

    Raises VoucherNotFound (also for another member's voucher), AlreadyRedeemed, AlreadyCancelled,
    VoucherExpired or NotCancellable; then nothing was written.
    """
    at = clock.now()
    async with locked_member(member_id) as (conn, member):
        voucher = await Voucher.get_or_none(id=voucher_id, member_id=member_id, using_db=conn)
        if voucher is None:
            raise VoucherNotFound("no such voucher", field="voucher_id")
        if voucher.ledger_entry_id is None:
            raise NotCancellable("only vouchers bought with points can be cancelled", field="voucher_id")
        # Conditional: a till may be redeeming this voucher right now; exactly one of the two wins.
        cancelled = (
            await Voucher.filter(id=voucher.id, status=VoucherStatus.ACTIVE, expires_at__gt=at)
            .using_db(conn)
            .update(status=VoucherStatus.CANCELLED, cancelled_at=at)
        )
        if cancelled != 1:
            raise _refusal(await Voucher.get(id=voucher.id, using_db=conn), at, "voucher_id")
        await reverse_debit(conn, member, voucher.ledger_entry_id)
        if voucher.reward_id is not None:
            await Reward.filter(id=voucher.reward_id).using_db(conn).update(stock=F("stock") + 1)  # NULL stays NULL
        await events.emit(
            conn,
            events.VOUCHER_CANCELLED,
            member_id=member_id,
            payload={"voucher_id": voucher.id, "points_returned": voucher.points_cost},
        )
    voucher.status, voucher.cancelled_at = VoucherStatus.CANCELLED, at
    return voucher


# --- redeeming at the checkout ------------------------------------------------------------------------


def _throttle_subjects(actor: Actor, member_id: int | None) -> list[str]:
    """Who a code counts against: the staff session or API key, and the member when the till names one (so that
    guesses from many tills at one member are bounded too)."""
    return [actor.attempt_subject, *([f"member:{member_id}"] if member_id is not None else [])]


async def redeem_voucher(actor: Actor, *, code: str, store_code: str, member_id: int | None = None) -> Voucher:
    """Redeem a voucher at a till: single-use, even under concurrent redemptions. Audited.

    `code` is the typed code or the scanned barcode value. With `member_id`, a voucher of another member is
    refused like an unknown code. Guessing is throttled per subject (`_throttle_subjects`): each attempt is
    counted before the code is looked up, and forgiven if the code is one of a voucher (of that member); after
    `THROTTLE_LIMIT` wrong codes within `THROTTLE_WINDOW` every attempt is refused with TooManyAttempts, even a
    right code, however many arrive at once.

    Raises Forbidden (the actor needs the cashier role in `store_code`; checked before any attempt is counted),
    InvalidInput (store code), TooManyAttempts, InvalidCode, AlreadyRedeemed, AlreadyCancelled or VoucherExpired.
    """
    actor.require(StaffRole.CASHIER, store_code)
    check_store_code(store_code)
    claims = await throttle.claim(THROTTLE_SCOPE, _throttle_subjects(actor, member_id), THROTTLE_LIMIT, THROTTLE_WINDOW)
    normalized = normalize_code(code)
    # Only a code we could have issued reaches the database (a NUL among 16 characters would be a database error).
    issuable = len(normalized) == CODE_LENGTH and normalized.isascii() and normalized.isalnum()
    voucher = await Voucher.get_or_none(code=normalized) if issuable else None
    if voucher is None or (member_id is not None and voucher.member_id != member_id):
        raise InvalidCode("no voucher with this code", field="code")  # the claimed attempt stays counted
    # A code of a real voucher is no guess (even if it was used or has expired): it does not count.
    await throttle.release(claims)
    at = clock.now()
    async with in_transaction() as conn:
        if await _mark_redeemed(conn, actor, voucher, store_code, at):
            return voucher
        refusal = await _refusal_now(conn, voucher.id, at, "code")
    raise refusal


async def _mark_redeemed(
    conn: BaseDBAsyncClient, actor: Actor, voucher: Voucher, store_code: str, at: datetime
) -> bool:
    """Move `voucher` from ACTIVE to REDEEMED if it still is and has not expired (event and audit too); True if
    this call did. The single-use guarantee: only one UPDATE can move the row from ACTIVE; the row count says who
    won."""
    redeemed = (
        await Voucher.filter(id=voucher.id, status=VoucherStatus.ACTIVE, expires_at__gt=at)
        .using_db(conn)
        .update(status=VoucherStatus.REDEEMED, redeemed_at=at, redeemed_store=store_code)
    )
    if redeemed != 1:
        return False
    if voucher.reward_id is not None:  # a stamp card's or offer's voucher may be for a donation reward
        await count_donation(conn, voucher.reward_id)
    await events.emit(
        conn,
        events.VOUCHER_REDEEMED,
        member_id=voucher.member_id,
        payload={"voucher_id": voucher.id, "store_code": store_code, "reward_id": voucher.reward_id},
    )
    await record_audit(
        actor,
        "voucher.redeem",
        conn=conn,
        store_code=store_code,
        member_id=voucher.member_id,
        target=f"voucher:{voucher.id}",
        before={"status": VoucherStatus.ACTIVE.value},
        after={"status": VoucherStatus.REDEEMED.value},
    )
    voucher.status, voucher.redeemed_at, voucher.redeemed_store = VoucherStatus.REDEEMED, at, store_code
    return True


async def _refusal_now(conn: BaseDBAsyncClient, voucher_id: int, at: datetime, field: str) -> DomainError:
    """Why a voucher could not be redeemed at `at`; an expired one is marked so on the way."""
    current = await Voucher.get(id=voucher_id, using_db=conn)
    if effective_status(current, at) == VoucherStatus.EXPIRED:
        await mark_expired(conn, [voucher_id], at)  # lazily, so the job has less to do
    return _refusal(current, at, field)


@dataclass(frozen=True)
class VoucherRedemption:
    """A voucher redeemed from the member's list at the till (`redeem_member_voucher`)."""

    voucher_id: int
    member_id: int
    store_code: str
    redeemed_at: datetime


async def redeem_member_voucher(
    actor: Actor, *, member_id: int, voucher_id: int, store_code: str, idempotency_key: str
) -> VoucherRedemption:
    """Redeem one of the member's listed vouchers by its id (the till's one-tap button); idempotent per member and
    key, so a double tap redeems once and both taps answer alike. Audited like `redeem_voucher`.

    No code is typed, so nothing is guessed and nothing is throttled: a voucher of another member, or no voucher,
    is `VoucherNotFound`. Raises Forbidden (cashier in `store_code`), InvalidInput (store code, key),
    VoucherNotFound, AlreadyRedeemed, AlreadyCancelled or VoucherExpired.
    """
    actor.require(StaffRole.CASHIER, store_code)
    check_store_code(store_code)
    check_idempotency_key(idempotency_key)
    request = {"voucher": voucher_id, "store": store_code}

    async def action(conn: BaseDBAsyncClient) -> VoucherRedemption:
        voucher = await Voucher.get_or_none(id=voucher_id, member_id=member_id, using_db=conn)
        if voucher is None:
            raise VoucherNotFound("no such voucher", field="voucher_id")
        at = clock.now()
        if not await _mark_redeemed(conn, actor, voucher, store_code, at):
            raise await _refusal_now(conn, voucher.id, at, "voucher_id")
        return VoucherRedemption(voucher.id, member_id, store_code, at)

    return await idempotent("voucher_redeem", f"{member_id}:{idempotency_key}", request, VoucherRedemption, action)
