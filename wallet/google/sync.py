"""Keeping Google Wallet objects current: an outbox consumer (`worker.consumers.Consumer`).

- `fan_out`: on the events after which a card may show something else (points, tier, profile), inside the dispatch
  transaction, every such member's `GoogleWalletObject` owes one more sync (`wanted += 1`: a burst of changes
  gives one PATCH). Members without an object (never asked for a save link) cost nothing.
- `deliver_due`: leases due objects (conditional UPDATE, SKIP LOCKED on PostgreSQL), builds each card from the
  member's current state and PATCHes it when what it shows changed; a 404 means Google does not have it (a link
  never saved): nothing to update, unless we had inserted it, then it is inserted again. The balance or the tier
  changing asks Google to notify the holder, at most `notifications_per_day` times per pass per 24 hours (Google's
  limit is 3); beyond that the update is silent. Failures (429/5xx after the client's own retries, refusals) back
  off: 30 s, 1 min, … capped at 1 h.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from loyalty import card, clock
from loyalty.db import database_unavailable
from loyalty.leases import backoff, lease_due
from loyalty.models import GoogleWalletObject, Member, OutboxEvent, Program
from loyalty.program import load_program
from loyalty.wallet import CONTENT_EVENTS, pass_content, request_google_syncs, wallet_design
from wallet.google import objects
from wallet.google.client import GoogleWalletClient, GoogleWalletRejected, GoogleWalletUnavailable
from wallet.google.config import GoogleWalletConfig

log = logging.getLogger("klubb.wallet.google")

NOTIFY_WINDOW = timedelta(hours=24)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


async def card_content(
    member: Member, program: Program, at: datetime, conn: BaseDBAsyncClient | None = None
) -> objects.CardContent:
    """What the member's card shows at `at`: the pass content Apple's pass shows too, and the rotating code."""
    return objects.CardContent(
        await pass_content(member, program, at, conn), card.totp_key_base16(member), program.card_code_seconds
    )


async def class_look(program: Program) -> objects.ClassLook:
    design = await wallet_design()
    return objects.ClassLook.of(program.name, design.organization_name, design.background_color)


async def ensure_class(config: GoogleWalletConfig, client: GoogleWalletClient, program: Program) -> None:
    """The programme's class at Google (inserted once per client; the look read only until then)."""
    if not client.class_ready:
        await client.ensure_class(objects.loyalty_class(config, await class_look(program)))


def content_digest(content: objects.CardContent) -> str:
    return _digest(objects.mutable_fields(content))


def notable_digest(content: objects.CardContent) -> str:
    return _digest(content.notable())


async def ensure_object(config: GoogleWalletConfig, member: Member, at: datetime) -> GoogleWalletObject:
    """The member's object row (created on first use: nothing is sent to Google yet)."""
    object_id = config.object_id(objects.object_suffix(member.member_number))
    row, _ = await GoogleWalletObject.get_or_create(
        member_id=member.id, defaults={"object_id": object_id, "next_attempt_at": at, "created_at": at}
    )
    return row


async def request_sync(conn: BaseDBAsyncClient, member_ids: Sequence[int], at: datetime) -> int:
    """Inside `conn`: owe one more sync to the objects of `member_ids`; how many objects there are."""
    return await request_google_syncs(conn, member_ids, at)


def _due(now: datetime) -> Q:
    return Q(synced__lt=F("wanted"), next_attempt_at__lte=now)


@dataclass(frozen=True)
class Claim:
    row: GoogleWalletObject
    lease: datetime  # the fencing token when recording
    wanted: int  # the syncs owed when claimed: a fan-out meanwhile leaves the object due again


async def claim_due(limit: int, lease_seconds: float) -> list[Claim]:
    """Lease up to `limit` due objects (`loyalty.leases`: never one leased elsewhere)."""
    async with in_transaction() as conn:
        lease, rows = await lease_due(GoogleWalletObject, _due, limit, lease_seconds, conn)
    return [Claim(row, lease, row.wanted) for row in rows]


@dataclass(frozen=True)
class SyncResult:
    object_id: str
    patched: bool  # a PATCH (or re-insert) reached Google
    notified: bool
    error: str = ""


@dataclass(frozen=True)
class GoogleWalletSync:
    """Google Wallet object sync as an outbox consumer."""

    config: GoogleWalletConfig
    client: GoogleWalletClient
    batch_size: int = 20
    lease_seconds: float = 120.0  # above the client's worst case of retries for one request
    name: str = "google-wallet"

    async def fan_out(self, conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
        member_ids = [e.member_id for e in events if e.type in CONTENT_EVENTS and e.member_id is not None]
        await request_sync(conn, member_ids, now)

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        attempts = 0
        while stop is None or not stop.is_set():
            claims = await claim_due(self.batch_size, self.lease_seconds)
            if not claims:
                break
            program = await load_program()
            results = await asyncio.gather(*(self.sync(c, program) for c in claims), return_exceptions=True)
            for claim, result in zip(claims, results, strict=True):
                if isinstance(result, Exception):
                    if database_unavailable(result):
                        log.warning("Google Wallet sync %s not recorded: the database is unavailable", claim.row.id)
                    else:
                        log.error("Google Wallet sync %s crashed", claim.row.object_id, exc_info=result)
                elif isinstance(result, BaseException):
                    raise result
            attempts += len(claims)
        return attempts

    async def sync(self, claim: Claim, program: Program) -> SyncResult:
        """One claimed object: PATCH what changed (or nothing), record the outcome, release the lease."""
        row = claim.row
        now = clock.now()
        member = await Member.get_or_none(id=row.member_id)
        if member is None:  # deleted meanwhile (the row goes with it)
            return SyncResult(row.object_id, patched=False, notified=False)
        content = await card_content(member, program, now)
        digest, notable = content_digest(content), notable_digest(content)
        changes: dict[str, Any] = {}
        patched = notified = False
        try:
            if digest != row.content_digest:
                notify, window_start, count = self._notification(row, notable, now)
                await ensure_class(self.config, self.client, program)
                found = await self.client.patch_object(row.object_id, objects.object_patch(content, notify=notify))
                if not found and row.inserted:
                    found = await self.client.insert_object(objects.loyalty_object(self.config, content)) or True
                    notify = False
                patched = found
                if found:
                    notified = notify
                    changes.update(inserted=True, content_digest=digest, notable_digest=notable)
                    if notify:
                        changes.update(notify_window_start=window_start, notify_count=count)
        except (GoogleWalletUnavailable, GoogleWalletRejected) as error:
            status = error.status
            attempts = row.attempts + 1
            await self._record(
                claim,
                attempts=attempts,
                next_attempt_at=now + backoff(attempts),
                last_status_code=status,
                last_error=str(error)[:500],
            )
            log.info("Google Wallet sync of %s failed (%s); retrying in %s", row.object_id, error, backoff(attempts))
            return SyncResult(row.object_id, patched=False, notified=False, error=str(error))
        await self._record(
            claim,
            synced=claim.wanted,
            attempts=0,
            last_status_code=200 if patched else None,
            last_error="",
            synced_at=now,
            **changes,
        )
        return SyncResult(row.object_id, patched=patched, notified=notified)

    def _notification(self, row: GoogleWalletObject, notable: str, now: datetime) -> tuple[bool, datetime | None, int]:
        """Whether this update notifies the holder, and the window's start and count if it does."""
        if not row.inserted or notable == row.notable_digest:
            return False, row.notify_window_start, row.notify_count
        start, count = row.notify_window_start, row.notify_count
        if start is None or now - start >= NOTIFY_WINDOW:
            start, count = now, 0
        if count >= self.config.notifications_per_day:
            return False, row.notify_window_start, row.notify_count
        return True, start, count + 1

    async def _record(self, claim: Claim, **changes: Any) -> None:
        updated = await GoogleWalletObject.filter(id=claim.row.id, locked_until=claim.lease).update(
            locked_until=None, **changes
        )
        if updated != 1:
            log.warning("Google Wallet sync %s: lease lost before recording", claim.row.object_id)
