"""The member's devices: the app's push registration tokens, one row per token.

A token belongs to one member at a time. Registering a token another member holds moves it: the other member's row is
deleted and a new one made (never the same row reassigned, so pushes owed to the other member's device, whose
`PushDelivery.device_id` the delete sets to NULL, cannot reach the new owner through it). A member has at most
`MAX_DEVICES` devices; registering one more forgets the one seen least recently. Tokens unused for
`DEVICE_RETENTION` (the `prune-stale-devices` job) or reported unregistered by FCM (`delete_tokens`, the sender's)
are deleted.

Every registration refreshes `last_seen_at`, as a successful send does (the sender's doing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.errors import InvalidInput, MemberNotFound, NotFound
from loyalty.models import Device, DevicePlatform, Member

MAX_TOKEN = 512  # the column; FCM registration tokens are about 160 characters, APNs device tokens 64
MIN_TOKEN = 32  # shorter is no token any push service issues
MAX_APP_VERSION = 32  # the column
MAX_LOCALE = 16  # the column
MAX_DEVICES = 10  # per member: a bound on one member's fan-out
# Tokens unused this long are deleted (FCM: stale after 270 days); `[push] device_retention_days` changes it.
DEVICE_RETENTION_DAYS = 270
DEVICE_RETENTION = timedelta(days=DEVICE_RETENTION_DAYS)
DELETE_BATCH = 500  # tokens per DELETE (bounded IN lists)

# FCM tokens are base64url with ':' separators; APNs tokens hex; Web Push endpoints' tokens the same alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_:.\-]+")
# "1.4", "2.10.3", "3.0.0-beta.2", "4.1.0+build.7"
_APP_VERSION = re.compile(r"[0-9]{1,5}(\.[0-9]{1,5}){0,3}([-+][0-9A-Za-z.\-]{1,20})?")
# BCP 47's common shapes: "sv", "sv-SE", "zh-Hant-TW", "es-419"; "_" as Android writes it.
_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}")


class InvalidToken(InvalidInput):
    code = "INVALID_TOKEN"


class InvalidPlatform(InvalidInput):
    code = "INVALID_PLATFORM"


class InvalidAppVersion(InvalidInput):
    code = "INVALID_APP_VERSION"


class InvalidLocale(InvalidInput):
    code = "INVALID_LOCALE"


class DeviceNotFound(NotFound):
    """No such token — also for another member's token, which must look exactly like a missing one."""

    code = "DEVICE_NOT_FOUND"


def check_token(token: object) -> str:
    """A push token: `MIN_TOKEN` to `MAX_TOKEN` characters of the tokens' alphabet (no NUL, space or other
    character a push service never issues). Returns it."""
    if not isinstance(token, str) or not MIN_TOKEN <= len(token) <= MAX_TOKEN or not _TOKEN.fullmatch(token):
        raise InvalidToken(
            f"token must be {MIN_TOKEN} to {MAX_TOKEN} letters, digits or - _ : . characters", field="token"
        )
    return token


def _check_platform(platform: object) -> DevicePlatform:
    if isinstance(platform, DevicePlatform):
        return platform
    if isinstance(platform, str) and platform in DevicePlatform.__members__.values():
        return DevicePlatform(platform)
    raise InvalidPlatform(f"platform must be one of {', '.join(p.value for p in DevicePlatform)}", field="platform")


def _check_app_version(app_version: object) -> str:
    if (
        not isinstance(app_version, str)
        or len(app_version) > MAX_APP_VERSION
        or not _APP_VERSION.fullmatch(app_version)
    ):
        raise InvalidAppVersion(
            f"app version must be a version number such as 2.10.3 (at most {MAX_APP_VERSION} characters)",
            field="app_version",
        )
    return app_version


def _check_locale(locale: object) -> str:
    """A locale tag such as sv-SE; returned with "-" separators (Android's sv_SE too)."""
    if not isinstance(locale, str) or len(locale) > MAX_LOCALE or not _LOCALE.fullmatch(locale):
        raise InvalidLocale(
            f"locale must be a language tag such as sv or sv-SE (at most {MAX_LOCALE} characters)", field="locale"
        )
    return locale.replace("_", "-")


def _postgres(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"


def _numbered(text: str, postgres: bool) -> str:
    if not postgres:
        return text
    parts = text.split("?")
    return parts[0] + "".join(f"${number}{part}" for number, part in enumerate(parts[1:], start=1))


# The token leaves any other member (a new row is made for this one, see the module's docstring).
_MOVE = 'DELETE FROM "device" WHERE "token" = ? AND "member_id" <> ?'
# Insert, or refresh this member's row. A concurrent registration of the same token by another member may still win
# the race to the row between the DELETE and here: then the row is this member's, its history restarted.
_UPSERT = (
    'INSERT INTO "device" ("member_id", "token", "platform", "app_version", "locale", "created_at", "last_seen_at")'
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    ' ON CONFLICT ("token") DO UPDATE SET "platform" = EXCLUDED."platform",'
    ' "app_version" = EXCLUDED."app_version", "locale" = EXCLUDED."locale",'
    ' "last_seen_at" = EXCLUDED."last_seen_at",'
    ' "created_at" = CASE WHEN "device"."member_id" = EXCLUDED."member_id" THEN "device"."created_at"'
    ' ELSE EXCLUDED."created_at" END, "member_id" = EXCLUDED."member_id"'
)
# Beyond `MAX_DEVICES`, the member's devices seen least recently go.
_TRIM = (
    'DELETE FROM "device" WHERE "member_id" = ? AND "id" NOT IN (SELECT "id" FROM "device" WHERE "member_id" = ?'
    ' ORDER BY "last_seen_at" DESC, "id" DESC LIMIT ?)'
)


async def register_device(
    member_id: int, token: str, platform: DevicePlatform | str, app_version: str, locale: str
) -> Device:
    """Register (or refresh) the member's device with push `token`; returns its row.

    Upsert on the token: the member's own token is refreshed (platform, app version, locale, `last_seen_at`); a
    token another member holds moves to this member. Errors: `InvalidToken`, `InvalidPlatform`, `InvalidAppVersion`,
    `InvalidLocale` (checked before anything is read), `MemberNotFound`.
    """
    token = check_token(token)
    checked_platform = _check_platform(platform)
    app_version = _check_app_version(app_version)
    locale = _check_locale(locale)
    now = clock.now()
    async with in_transaction() as conn:
        if not await Member.filter(id=member_id).using_db(conn).exists():
            raise MemberNotFound("no such member", field="member_id")
        postgres = _postgres(conn)
        await conn.execute_query(_numbered(_MOVE, postgres), [token, member_id])
        await conn.execute_query(
            _numbered(_UPSERT, postgres),
            [member_id, token, checked_platform.value, app_version, locale, now, now],
        )
        await conn.execute_query(_numbered(_TRIM, postgres), [member_id, member_id, MAX_DEVICES])
        return await Device.filter(token=token).using_db(conn).get()


async def unregister_device(member_id: int, token: str) -> None:
    """Forget the member's device with push `token` (signing out of the app).

    Errors: `InvalidToken`; `DeviceNotFound` for a token the member does not hold (another member's among them).
    """
    token = check_token(token)
    deleted = await Device.filter(member_id=member_id, token=token).delete()
    if not deleted:
        raise DeviceNotFound("no such device", field="token")


async def delete_tokens(tokens: Sequence[str], conn: BaseDBAsyncClient | None = None) -> int:
    """Delete the devices of `tokens` (FCM answered UNREGISTERED, SENDER_ID_MISMATCH or invalid for them), whoever
    holds them; returns how many rows went. Unknown tokens are ignored."""
    unique = sorted(set(tokens))
    deleted = 0
    for start in range(0, len(unique), DELETE_BATCH):
        batch = unique[start : start + DELETE_BATCH]
        deleted += await Device.filter(token__in=batch).using_db(conn).delete()
    return deleted


async def mark_seen(conn: BaseDBAsyncClient | None, device_ids: Sequence[int], at: datetime) -> None:
    """FCM accepted a push for these devices at `at`: they are in use (the sender's; keeps them from going stale)."""
    if device_ids:
        await Device.filter(id__in=list(device_ids), last_seen_at__lt=at).using_db(conn).update(last_seen_at=at)


def stale_before(now: datetime, retention: timedelta = DEVICE_RETENTION) -> datetime:
    """Devices last seen before this instant are stale."""
    return now - retention


async def delete_stale(conn: BaseDBAsyncClient, device_ids: Sequence[int], cutoff: datetime) -> int:
    """Delete those of `device_ids` still last seen before `cutoff` (one refreshed meanwhile stays); returns how
    many."""
    if not device_ids:
        return 0
    return await Device.filter(id__in=list(device_ids), last_seen_at__lt=cutoff).using_db(conn).delete()
