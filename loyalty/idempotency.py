"""Idempotent operations: the first answer for a (scope, key) is stored and replayed, as the same type.

The record is inserted first, in the same transaction as the effect, so a unique-constraint collision
serializes concurrent duplicates: the loser waits for the winner's commit and then replays its answer. A retry
finds the record the same way (its insert collides; nothing is read before it, so a first call costs no extra
statement).
Failed operations roll back with their record, so a retry after a failure runs again.

Answers are typed (a dataclass, usually): pydantic turns them into JSON for the record and back, datetimes,
`Decimal`s, enums and nested dataclasses included. The first call answers through the same round trip as a replay,
so every answer to a key is equal to every other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.checks import check_code
from loyalty.errors import DuplicateIdempotencyKey
from loyalty.models import IdempotencyRecord

MAX_KEY_LENGTH = 128

Result = TypeVar("Result")


class _KeyTaken(Exception):
    pass


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


# Building an adapter inspects the type: once per type and process.
_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(result_type: type[Result]) -> TypeAdapter[Result]:
    adapter = _adapters.get(result_type)
    if adapter is None:
        adapter = _adapters[result_type] = TypeAdapter(result_type)
    return adapter


async def idempotent(
    scope: str,
    key: str,
    request: dict[str, Any],
    result_type: type[Result],
    action: Callable[[BaseDBAsyncClient], Awaitable[Result]],
    *,
    field: str = "idempotency_key",
) -> Result:
    """Run `action` in a transaction once per (scope, key) and answer with its result; later calls replay it.

    `request` is the JSON document of what was asked (hashed: a retry must ask the same); `action` returns a
    `result_type`, which is stored as JSON in the same transaction and rebuilt as a `result_type` for every answer.
    Raises `DuplicateIdempotencyKey` when the key was used with a different `request`, and `InvalidInput` for a key
    that is empty or longer than `MAX_KEY_LENGTH`; an error in `action` rolls back its effects and the record.
    `field` is the domain name of the input that carries the key (`receipt_id` for a purchase), which both errors
    name, so the API points at the input the caller must change.
    """
    check_code(key, field, MAX_KEY_LENGTH, label="an idempotency key")
    adapter = _adapter(result_type)
    digest = request_hash(request)
    # No read first: the first call (the common case) inserts at once, and a replay finds the record through the
    # insert's collision with it (its transaction, which wrote nothing, rolls back).
    try:
        async with in_transaction() as conn:
            try:
                record = await IdempotencyRecord.create(
                    scope=scope, key=key, request_hash=digest, created_at=clock.now(), using_db=conn
                )
            except IntegrityError as exc:
                raise _KeyTaken from exc
            response = adapter.dump_python(await action(conn), mode="json")
            record.response = response
            await record.save(using_db=conn, update_fields=["response"])
        return adapter.validate_python(response)
    except _KeyTaken:
        existing = await IdempotencyRecord.get(scope=scope, key=key)
    if existing.request_hash != digest:
        # Named after the input that carries the key: "this receipt id was already used with a different request".
        name = "idempotency key" if field == "idempotency_key" else field.replace("_", " ")
        raise DuplicateIdempotencyKey(f"this {name} was already used with a different request", field=field)
    assert existing.response is not None  # written in the same transaction as the record
    return adapter.validate_python(existing.response)
