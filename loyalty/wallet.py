"""The member card in a wallet (Apple Wallet, Google Wallet): passes, the devices they are on, and what they show.

The domain keeps the state both platforms share; building, signing and sending is the `wallet` package's job.

- `ensure_pass(member_id, platform, auth_token=…)`: the member's pass of a platform (created on first use, with a
  random serial and the hash of its web-service token).
- `spend_link(link_id, member_id, at)`: a download link is good once.
- `authenticate_pass(serial, token)`: the pass an `ApplePass <token>` header opens, compared in constant time; a
  wrong token and an unknown serial answer alike (None).
- `register_device` / `unregister_device`: the PassKit web service's registrations. The first device makes the pass
  installed (event `wallet.added`); removing the last one makes it removed (`wallet.removed`).
  `set_installed` is the same for a platform without registrations (Google's save callback).
  Adding and removing are engagement events the program can reward once per member (`EngagementRule` with event
  type `wallet.added` / `wallet.removed`; `loyalty.engagement`): no rule, no reward.
- `pass_content(member, program, at)`: what a pass shows (name, points, tier and progress, points expiring soon);
  `refresh_passes(conn, member_ids, at)` moves the update tag of every pass whose content changed (the updates
  consumer calls it on points, tier and profile events) and returns them.
- `refresh_aged_passes(conn, member_ids, at)`: the same when only time passed (the `refresh-wallet-passes` job, for
  `in_wallet_with_points_expiring(until)`): both platforms' passes whose content changed, Apple's devices owed a push
  (`request_pushes`), Google's objects due (`request_google_syncs`).
- `serials_updated_since(device, since)`: Apple's "which of my passes changed since tag X".
- `card_in_wallet(member_id)` / `cards_in_wallet(ids)`: what the staff lookup shows ("card in wallet").
- `wallet_design()` / `apply_wallet_design(section)`: how the program's passes look (colours, texts, barcode format,
  languages), seeded from the program TOML's `[wallet]` section.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from loyalty import clock, events
from loyalty.activity import points_expiring_soon
from loyalty.actors import SYSTEM
from loyalty.checks import check_text
from loyalty.engagement import UnknownEventType, record_engagement
from loyalty.errors import DomainError, InvalidInput
from loyalty.models import (
    EngagementEvent,
    GoogleWalletObject,
    LotStatus,
    Member,
    PointsLot,
    Program,
    WalletBarcode,
    WalletDesign,
    WalletLinkUse,
    WalletPass,
    WalletPlatform,
    WalletPush,
    WalletRegistration,
)
from loyalty.program import load_program
from loyalty.tiers import qualifying_value, tier_progress

log = logging.getLogger("klubb.wallet")

MIN_TOKEN_LENGTH = 16  # Apple requires at least 16 characters
MAX_TOKEN_LENGTH = 128
MAX_DEVICE_ID = 128  # WalletRegistration.device_library_id
MAX_PUSH_TOKEN = 200  # WalletRegistration.push_token / WalletPush.push_token
MAX_SERIAL = 64  # WalletPass.serial_number
ADDED_ENGAGEMENT = "wallet_added"
REMOVED_ENGAGEMENT = "wallet_removed"
# The events after which a pass may show something else (points, tier, name, expiring points).
CONTENT_EVENTS = frozenset(
    {
        events.MEMBER_UPDATED,
        events.POINTS_EARNED,
        events.POINTS_MATURED,
        events.POINTS_REDEEMED,
        events.POINTS_REDEMPTION_CANCELLED,
        events.POINTS_EXPIRED,
        events.POINTS_ADJUSTED,
        events.POINTS_REFUNDED,
        events.TIER_CHANGED,
    }
)


class InvalidRegistration(InvalidInput):
    code = "INVALID_REGISTRATION"


@dataclass(frozen=True)
class PassContent:
    """What a member's pass shows, as of `at`."""

    member_id: int
    member_number: str
    display_name: str
    points_available: int
    points_pending: int
    tier_name: str
    next_tier_name: str | None
    remaining_to_next: int | None
    progress: float  # 0..1 towards the next tier
    expiring_points: int  # available points expiring within the program's warning window
    expiring_at: datetime | None  # the soonest of those expiries

    def digest(self) -> str:
        """A fingerprint of everything shown: equal digests, equal passes."""
        shown = (
            self.member_number,
            self.display_name,
            self.points_available,
            self.points_pending,
            self.tier_name,
            self.next_tier_name,
            self.remaining_to_next,
            round(self.progress, 4),
            self.expiring_points,
            self.expiring_at.isoformat() if self.expiring_at else None,
        )
        return hashlib.sha256(repr(shown).encode()).hexdigest()


@dataclass(frozen=True)
class CardInWallet:
    apple: bool
    google: bool

    @property
    def any(self) -> bool:
        return self.apple or self.google


def token_hash(token: str) -> str:
    """How a pass's web-service token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_serial() -> str:
    return secrets.token_hex(16)


def next_update_tag(previous: int, at: datetime) -> int:
    """A pass's next update tag: microseconds of `at`, always above the previous tag."""
    return max(previous + 1, int(at.timestamp() * 1_000_000))


async def pass_content(
    member: Member, program: Program, at: datetime, conn: BaseDBAsyncClient | None = None
) -> PassContent:
    """What `member`'s pass shows at `at` (their cached balances, tier progress, expiring points)."""
    value = await qualifying_value(member.id, program, at, conn)
    progress = tier_progress(member, program, value, at)
    expiring = (await points_expiring_soon([member.id], at + timedelta(days=program.expiring_soon_days)))[member.id]
    return PassContent(
        member_id=member.id,
        member_number=member.member_number,
        display_name=member.display_name,
        points_available=member.points_available,
        points_pending=member.points_pending,
        tier_name=progress.current.name,
        next_tier_name=progress.next.name if progress.next else None,
        remaining_to_next=progress.remaining_to_next,
        progress=progress.progress,
        expiring_points=sum(amount for _, amount in expiring),
        expiring_at=expiring[0][0] if expiring else None,
    )


async def ensure_pass(
    member_id: int, platform: WalletPlatform, *, auth_token: str | Callable[[str], str] = ""
) -> WalletPass:
    """The member's pass on `platform`, created on first use; its stored token hash follows `auth_token` (a token,
    or a function of the pass's serial giving it).

    Raises `InvalidRegistration` for an Apple token outside 16 to 128 characters (nothing written).
    """

    def token_of(serial: str) -> str:
        token = auth_token(serial) if callable(auth_token) else auth_token
        if platform is WalletPlatform.APPLE and not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidRegistration("a pass token has 16 to 128 characters", field="auth_token")
        return token

    existing = await WalletPass.get_or_none(member_id=member_id, platform=platform)
    if existing is None:
        now = clock.now()
        serial = new_serial()
        token = token_of(serial)
        try:
            existing = await WalletPass.create(
                member_id=member_id,
                platform=platform,
                serial_number=serial,
                auth_token_hash=token_hash(token) if token else "",
                update_tag=next_update_tag(0, now),
                last_updated=now,
                created_at=now,
            )
        except IntegrityError:  # created concurrently
            existing = await WalletPass.get(member_id=member_id, platform=platform)
    token = token_of(existing.serial_number)
    wanted = token_hash(token) if token else ""
    if existing.auth_token_hash != wanted:
        existing.auth_token_hash = wanted
        await existing.save(update_fields=["auth_token_hash"])
    return existing


async def spend_link(link_id: str, member_id: int, at: datetime) -> bool:
    """Mark a single-use download link spent; False if it was spent before (a replay)."""
    try:
        await WalletLinkUse.create(link_id=link_id, member_id=member_id, used_at=at)
    except IntegrityError:
        return False
    return True


_DUMMY_HASH = token_hash("no pass has this token")


async def authenticate_pass(
    serial_number: str, token: str, platform: WalletPlatform = WalletPlatform.APPLE
) -> WalletPass | None:
    """The pass `serial_number` if `token` is its web-service token, else None (unknown serial alike)."""
    candidate = None
    if 0 < len(serial_number) <= MAX_SERIAL and serial_number.isascii() and serial_number.isprintable():
        candidate = await WalletPass.get_or_none(serial_number=serial_number, platform=platform)
    stored = candidate.auth_token_hash if candidate is not None and candidate.auth_token_hash else _DUMMY_HASH
    matches = hmac.compare_digest(stored, token_hash(token))  # compared whether or not the serial exists
    return candidate if candidate is not None and matches and stored != _DUMMY_HASH else None


def _check_device_id(device_library_id: str) -> str:
    if (
        not 0 < len(device_library_id) <= MAX_DEVICE_ID
        or not device_library_id.isascii()
        or not device_library_id.isprintable()
        or "/" in device_library_id
    ):
        raise InvalidRegistration("a device library identifier has 1 to 128 printable ASCII characters", field="device")
    return device_library_id


def _check_push_token(push_token: object) -> str:
    if (
        not isinstance(push_token, str)
        or not 0 < len(push_token) <= MAX_PUSH_TOKEN
        or any(c not in "0123456789abcdefABCDEF" for c in push_token)
    ):
        raise InvalidRegistration("a push token is 1 to 200 hexadecimal digits", field="push_token")
    return push_token.lower()


async def _set_installed(conn: BaseDBAsyncClient, wallet_pass: WalletPass, installed: bool, at: datetime) -> str | None:
    """Record an install or a removal if it changes the pass's state; the engagement event type to reward, if so."""
    changed = (
        await WalletPass.filter(id=wallet_pass.id, installed=not installed)
        .using_db(conn)
        .update(installed=installed, **({"installed_at": at} if installed else {"removed_at": at}))
    )
    if not changed:
        return None
    wallet_pass.installed = installed
    event = events.WALLET_ADDED if installed else events.WALLET_REMOVED
    await events.emit(
        conn,
        event,
        member_id=wallet_pass.member_id,
        payload={"platform": wallet_pass.platform.value, "serial_number": wallet_pass.serial_number},
    )
    return ADDED_ENGAGEMENT if installed else REMOVED_ENGAGEMENT


async def _reward_once(member_id: int, event_type: str, at: datetime) -> None:
    """The program's engagement reward for this wallet event, once per member (none without an active rule)."""
    external_id = f"member:{member_id}"
    if await EngagementEvent.exists(event_type=event_type, external_id=external_id):
        return
    try:
        await record_engagement(SYSTEM, member_id, event_type=event_type, external_id=external_id, occurred_at=at)
    except UnknownEventType:
        return  # the program does not reward it
    except DomainError as error:  # a concurrent first install was rewarded; a limit of the rule was reached
        log.info("wallet reward %s for member %s not given: %s", event_type, member_id, error.code)


async def register_device(wallet_pass: WalletPass, device_library_id: str, push_token: object) -> bool:
    """Register a device for updates of `wallet_pass`; True if it was new (Apple: 201), False if known (200).

    A known registration takes the new push token. Raises `InvalidRegistration` for a malformed device id or push
    token (nothing written).
    """
    device = _check_device_id(device_library_id)
    token = _check_push_token(push_token)
    now = clock.now()
    async with in_transaction() as conn:
        existing = (
            await WalletRegistration.filter(wallet_pass_id=wallet_pass.id, device_library_id=device)
            .using_db(conn)
            .first()
        )
        if existing is not None:
            if existing.push_token != token:
                existing.push_token = token
                existing.updated_at = now
                await existing.save(using_db=conn, update_fields=["push_token", "updated_at"])
            created = False
        else:
            await WalletRegistration.create(
                wallet_pass_id=wallet_pass.id,
                device_library_id=device,
                push_token=token,
                created_at=now,
                updated_at=now,
                using_db=conn,
            )
            created = True
        reward = await _set_installed(conn, wallet_pass, True, now)
    if reward:
        await _reward_once(wallet_pass.member_id, reward, now)
    return created


async def unregister_device(wallet_pass: WalletPass, device_library_id: str) -> bool:
    """Forget a device's registration for `wallet_pass`; False if there was none. The last one makes it removed."""
    device = _check_device_id(device_library_id)
    now = clock.now()
    async with in_transaction() as conn:
        deleted = (
            await WalletRegistration.filter(wallet_pass_id=wallet_pass.id, device_library_id=device)
            .using_db(conn)
            .delete()
        )
        reward = None
        if deleted and not await WalletRegistration.filter(wallet_pass_id=wallet_pass.id).using_db(conn).exists():
            reward = await _set_installed(conn, wallet_pass, False, now)
    if reward:
        await _reward_once(wallet_pass.member_id, reward, now)
    return bool(deleted)


async def set_installed(wallet_pass: WalletPass, installed: bool) -> bool:
    """Record that the member added (or removed) the pass, for a platform without registrations; True if changed."""
    now = clock.now()
    async with in_transaction() as conn:
        reward = await _set_installed(conn, wallet_pass, installed, now)
    if reward:
        await _reward_once(wallet_pass.member_id, reward, now)
    return reward is not None


async def forget_push_token(push_token: str) -> int:
    """APNs said the token is no longer valid (410): delete every registration with it; how many there were."""
    registrations = await WalletRegistration.filter(push_token=push_token).values_list("wallet_pass_id", flat=True)
    deleted = await WalletRegistration.filter(push_token=push_token).delete()
    for pass_id in set(registrations):
        if not await WalletRegistration.filter(wallet_pass_id=pass_id).exists():
            wallet_pass = await WalletPass.get_or_none(id=pass_id)
            if wallet_pass is not None:
                await set_installed(wallet_pass, False)
    return deleted


async def serials_updated_since(
    device_library_id: str, since: int | None, platform: WalletPlatform = WalletPlatform.APPLE
) -> tuple[list[str], int] | None:
    """The serials of the device's passes updated after tag `since` (every one without it) and the latest tag;
    None when there are none (Apple: 204). Raises `InvalidRegistration` for a malformed device id."""
    device = _check_device_id(device_library_id)
    pass_ids = await WalletRegistration.filter(device_library_id=device).values_list("wallet_pass_id", flat=True)
    if not pass_ids:
        return None
    query = WalletPass.filter(id__in=list(pass_ids), platform=platform)
    if since is not None:
        query = query.filter(update_tag__gt=since)
    rows = await query.order_by("serial_number").values_list("serial_number", "update_tag")
    if not rows:
        return None
    return [str(serial) for serial, _ in rows], max(int(tag) for _, tag in rows)


async def refresh_passes(
    conn: BaseDBAsyncClient, member_ids: Sequence[int], at: datetime, *, platform: WalletPlatform
) -> list[WalletPass]:
    """Inside `conn`: move the update tag of every `platform` pass of `member_ids` whose content changed; those
    passes. Each platform's consumer refreshes its own passes (so one does not hide a change from the other).

    Passes of members that no longer exist are left alone. Safe to repeat: an unchanged content moves nothing.
    """
    passes = await WalletPass.filter(member_id__in=list(member_ids), platform=platform).using_db(conn).order_by("id")
    if not passes:
        return []
    program = await load_program(conn)
    members = {m.id: m for m in await Member.filter(id__in=[p.member_id for p in passes]).using_db(conn)}
    digests: dict[int, str] = {}
    changed: list[WalletPass] = []
    for wallet_pass in passes:
        member = members.get(wallet_pass.member_id)
        if member is None:
            continue
        if member.id not in digests:
            digests[member.id] = (await pass_content(member, program, at, conn)).digest()
        digest = digests[member.id]
        if digest == wallet_pass.content_digest:
            continue
        tag = next_update_tag(wallet_pass.update_tag, at)
        # Conditional on the digest read: of two refreshes at once (two consumers, two job runs) one moves the pass.
        if not await (
            WalletPass.filter(id=wallet_pass.id, content_digest=wallet_pass.content_digest)
            .using_db(conn)
            .update(update_tag=tag, last_updated=at, content_digest=digest)
        ):
            continue
        wallet_pass.update_tag, wallet_pass.last_updated, wallet_pass.content_digest = tag, at, digest
        changed.append(wallet_pass)
    return changed


async def request_pushes(conn: BaseDBAsyncClient, pass_ids: Sequence[int], at: datetime) -> int:
    """Inside `conn`: owe one more push to every device registered for `pass_ids` (coalesced per push token)."""
    tokens = sorted(
        set(
            await WalletRegistration.filter(wallet_pass_id__in=list(pass_ids))
            .using_db(conn)
            .values_list("push_token", flat=True)
        )
    )
    if not tokens:
        return 0
    # Rows first (a concurrent fan-out may insert the same token: ignored), then one conditional increment.
    await WalletPush.bulk_create(
        [WalletPush(push_token=t, wanted=0, sent=0, next_attempt_at=at, created_at=at) for t in tokens],
        ignore_conflicts=True,
        using_db=conn,
    )
    await (
        WalletPush.filter(push_token__in=tokens)
        .using_db(conn)
        .update(wanted=F("wanted") + 1, next_attempt_at=at, attempts=0)
    )
    return len(tokens)


async def request_google_syncs(conn: BaseDBAsyncClient, member_ids: Sequence[int], at: datetime) -> int:
    """Inside `conn`: owe one more sync to the Google Wallet objects of `member_ids` (due now); how many there are.

    Members without an object cost nothing. The Google consumer (`wallet.google.sync`) PATCHes what changed.
    """
    if not member_ids:
        return 0
    return await (
        GoogleWalletObject.filter(member_id__in=sorted(set(member_ids)))
        .using_db(conn)
        .update(wanted=F("wanted") + 1, next_attempt_at=at, attempts=0)
    )


def in_wallet_with_points_expiring(until: datetime) -> Q:
    """Members with a card in a wallet (an installed pass, either platform) and available points expiring by
    `until`: those whose pass the clock alone can change (points entering the expiring-soon window)."""
    lots = PointsLot.filter(status=LotStatus.AVAILABLE, remaining__gt=0, expires_at__lte=until).values("member_id")
    passes = WalletPass.filter(installed=True).values("member_id")
    return Q(id__in=Subquery(lots)) & Q(id__in=Subquery(passes))


async def refresh_aged_passes(conn: BaseDBAsyncClient, member_ids: Sequence[int], at: datetime) -> list[WalletPass]:
    """Inside `conn`: time passed, no event: the passes of `member_ids` (both platforms) whose content is now
    different (points entered the expiring-soon window). Apple's get a new update tag and their devices a push owed;
    Google's objects become due for a sync. Safe to repeat: an unchanged content (its digest) moves nothing."""
    apple = await refresh_passes(conn, member_ids, at, platform=WalletPlatform.APPLE)
    await request_pushes(conn, [p.id for p in apple], at)
    google = await refresh_passes(conn, member_ids, at, platform=WalletPlatform.GOOGLE)
    await request_google_syncs(conn, [p.member_id for p in google], at)
    return apple + google


async def cards_in_wallet(member_ids: Sequence[int]) -> dict[int, CardInWallet]:
    """Per member: whether their card is in Apple Wallet, in Google Wallet (one query for any number of members)."""
    rows = await WalletPass.filter(member_id__in=list(member_ids), installed=True).values_list("member_id", "platform")
    installed: dict[int, set[str]] = {}
    for member_id, platform in rows:
        installed.setdefault(int(member_id), set()).add(str(platform))
    return {
        member_id: CardInWallet(
            apple=WalletPlatform.APPLE.value in installed.get(member_id, set()),
            google=WalletPlatform.GOOGLE.value in installed.get(member_id, set()),
        )
        for member_id in member_ids
    }


async def card_in_wallet(member_id: int) -> CardInWallet:
    """Whether the member's card is in a wallet, per platform (the staff lookup's "card in wallet")."""
    return (await cards_in_wallet([member_id]))[member_id]


DESIGN_ID = 1
_DESIGN_TEXTS = {"organization_name": 100, "description": 200, "logo_text": 100}
_DESIGN_COLORS = ("background_color", "foreground_color", "label_color")
MAX_TERMS = 4000
SUPPORTED_LANGUAGES = frozenset({"en", "sv"})  # the languages wallet/ ships texts for


async def wallet_design(conn: BaseDBAsyncClient | None = None) -> WalletDesign:
    """The program's pass design (the defaults when none was configured)."""
    design = await WalletDesign.get_or_none(id=DESIGN_ID, using_db=conn)
    return design if design is not None else WalletDesign(id=DESIGN_ID)


def _check_color(value: object, field: str) -> str:
    # Apple takes CSS-style `rgb(r, g, b)`; Google a `#rrggbb`: both are derived from this one.
    parts = (
        value[4:-1].split(",") if isinstance(value, str) and value.startswith("rgb(") and value.endswith(")") else []
    )
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        raise InvalidInput(f"wallet config: `{field}` must be rgb(r, g, b) with 0-255 each", field=field)
    return "rgb({}, {}, {})".format(*(int(p) for p in parts))


async def apply_wallet_design(section: dict[str, Any]) -> WalletDesign:
    """Create or replace the pass design from the program TOML's `[wallet]` section (keys left out: defaults)."""
    values: dict[str, Any] = {}
    for key, limit in _DESIGN_TEXTS.items():
        if key in section:
            values[key] = check_text(section[key], key, limit) if section[key] else ""
    for key in _DESIGN_COLORS:
        if key in section:
            values[key] = _check_color(section[key], key)
    if "barcode_format" in section:
        try:
            values["barcode_format"] = WalletBarcode(section["barcode_format"])
        except ValueError:
            raise InvalidInput(
                "wallet config: `barcode_format` is one of qr, pdf417, aztec, code128", field="barcode_format"
            ) from None
    if "terms" in section:
        values["terms"] = check_text(section["terms"], "terms", MAX_TERMS, multiline=True) if section["terms"] else ""
    if "languages" in section:
        languages = section["languages"]
        if (
            not isinstance(languages, list)
            or not languages
            or any(lang not in SUPPORTED_LANGUAGES for lang in languages)
            or "en" not in languages
        ):
            raise InvalidInput(
                "wallet config: `languages` lists supported language codes, English among them", field="languages"
            )
        values["languages"] = list(dict.fromkeys(languages))
    await WalletDesign.update_or_create(id=DESIGN_ID, defaults=values)
    return await wallet_design()
