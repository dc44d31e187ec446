"""Idempotent operations: the first answer for a (scope, key) is stored and replayed.

The record is inserted first, in the same transaction as the effect, so a unique-constraint collision
serializes concurrent duplicates: the loser waits for the winner's commit and then replays its answer.
Failed operations roll back with their record, so a retry after a failure runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.errors import DuplicateIdempotencyKey, InvalidInput
from loyalty.models import IdempotencyRecord

MAX_KEY_LENGTH = 128


class _KeyTaken(Exception):
    pass


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def run_idempotent(
    scope: str,
    key: str,
    request: dict[str, Any],
    action: Callable[[BaseDBAsyncClient], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run `action` in a transaction once per (scope, key); later calls replay its JSON answer.

    Raises `DuplicateIdempotencyKey` when the key was used with a different `request`.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotency key must be 1 to {MAX_KEY_LENGTH} characters", field="idempotency_key")
    digest = request_hash(request)
    existing = await IdempotencyRecord.get_or_none(scope=scope, key=key)
    if existing is None:
        try:
            async with in_transaction() as conn:
                try:
                    record = await IdempotencyRecord.create(
                        scope=scope, key=key, request_hash=digest, created_at=clock.now(), using_db=conn
                    )
                except IntegrityError as exc:
                    raise _KeyTaken from exc
                response = await action(conn)
                record.response = response
                await record.save(using_db=conn, update_fields=["response"])
                return response
        except _KeyTaken:
            existing = await IdempotencyRecord.get(scope=scope, key=key)
    if existing.request_hash != digest:
        raise DuplicateIdempotencyKey(
            "this idempotency key was already used with a different request", field="idempotency_key"
        )
    assert existing.response is not None  # written in the same transaction as the record
    return existing.response
