"""The typed idempotent-operation helper: one effect per key, the same typed answer; reused keys refused."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

import pytest
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, DuplicateIdempotencyKey, InvalidInput
from loyalty.idempotency import MAX_KEY_LENGTH, idempotent, request_hash
from loyalty.models import AuditLog, IdempotencyRecord

STOCKHOLM_WINTER = timezone(timedelta(hours=1))


class Kind(StrEnum):
    GIFT = "gift"
    REFUND = "refund"


@dataclass(frozen=True)
class Line:
    sku: str
    share: Decimal


@dataclass(frozen=True)
class Answer:
    effect_id: int
    kind: Kind
    at: datetime
    local_at: datetime
    rate: Decimal
    lines: list[Line] = field(default_factory=list)
    expires_at: datetime | None = None


class Refused(DomainError):
    code = "REFUSED"


async def _effect(conn: BaseDBAsyncClient, now: datetime) -> int:
    """Something the action writes in its transaction, to see whether it stayed."""
    return (await AuditLog.create(actor_type="test", actor_id=0, action="test", created_at=now, using_db=conn)).id


def _answer(effect_id: int, now: datetime) -> Answer:
    return Answer(
        effect_id=effect_id,
        kind=Kind.GIFT,
        at=now,
        local_at=now.astimezone(STOCKHOLM_WINTER),
        rate=Decimal("1.250"),
        lines=[Line("A", Decimal("0.5")), Line("B", Decimal("12345678901234567890.01"))],
    )


async def test_a_replay_answers_the_same_typed_result_as_the_first_call(db: str, clock: FrozenClock) -> None:
    # given a first call
    runs = 0

    async def action(conn: BaseDBAsyncClient) -> Answer:
        nonlocal runs
        runs += 1
        return _answer(await _effect(conn, clock.now()), clock.now())

    first = await idempotent("test", "k1", {"amount": 1}, Answer, action)

    # when it is retried later
    clock.advance(timedelta(hours=1))
    again = await idempotent("test", "k1", {"amount": 1}, Answer, action)

    # then the retry replays the first answer: equal, with datetimes, Decimals, enums and nested dataclasses as such
    assert runs == 1
    assert again == first == _answer(first.effect_id, clock.now() - timedelta(hours=1))
    assert (type(again.at), type(again.rate), type(again.kind), type(again.lines[0])) == (datetime, Decimal, Kind, Line)
    assert (again.at.utcoffset(), again.local_at.utcoffset()) == (timedelta(0), timedelta(hours=1))
    assert str(again.lines[1].share) == "12345678901234567890.01"
    assert await AuditLog.all().count() == 1
    record = await IdempotencyRecord.get(scope="test", key="k1")
    assert record.response == {
        "effect_id": first.effect_id,
        "kind": "gift",
        "at": "2026-03-02T12:00:00Z",
        "local_at": "2026-03-02T13:00:00+01:00",
        "rate": "1.250",
        "lines": [{"sku": "A", "share": "0.5"}, {"sku": "B", "share": "12345678901234567890.01"}],
        "expires_at": None,
    }


async def test_the_same_key_with_another_request_is_refused_and_runs_nothing(db: str, clock: FrozenClock) -> None:
    # given
    runs = 0

    async def action(conn: BaseDBAsyncClient) -> Answer:
        nonlocal runs
        runs += 1
        return _answer(await _effect(conn, clock.now()), clock.now())

    await idempotent("test", "k1", {"amount": 1}, Answer, action)

    # when / then
    with pytest.raises(DuplicateIdempotencyKey) as refused:
        await idempotent("test", "k1", {"amount": 2}, Answer, action)
    assert (refused.value.code, refused.value.field) == ("IDEMPOTENCY_KEY_REUSED", "idempotency_key")
    assert runs == 1
    assert (await AuditLog.all().count(), await IdempotencyRecord.all().count()) == (1, 1)


async def test_a_reused_key_names_the_input_that_carries_it(db: str, clock: FrozenClock) -> None:
    # given a key that is a receipt id (purchases: unique per store)
    async def action(conn: BaseDBAsyncClient) -> Answer:
        return _answer(await _effect(conn, clock.now()), clock.now())

    await idempotent("test", "S1:R1", {"amount": 1}, Answer, action, field="receipt_id")

    # when / then
    with pytest.raises(DuplicateIdempotencyKey) as refused:
        await idempotent("test", "S1:R1", {"amount": 2}, Answer, action, field="receipt_id")
    assert (refused.value.field, refused.value.message) == (
        "receipt_id",
        "this receipt id was already used with a different request",
    )
    with pytest.raises(InvalidInput) as too_long:
        await idempotent("test", "k" * 129, {"amount": 1}, Answer, action, field="receipt_id")
    assert too_long.value.field == "receipt_id"
    assert await IdempotencyRecord.all().count() == 1


async def test_the_same_key_in_another_scope_is_another_operation(db: str, clock: FrozenClock) -> None:
    async def action(conn: BaseDBAsyncClient) -> Answer:
        return _answer(await _effect(conn, clock.now()), clock.now())

    first = await idempotent("test", "k1", {"amount": 1}, Answer, action)
    other = await idempotent("other", "k1", {"amount": 2}, Answer, action)

    assert other.effect_id != first.effect_id
    assert await AuditLog.all().count() == 2


async def test_a_failed_action_rolls_back_with_its_record_so_a_retry_runs_again(db: str, clock: FrozenClock) -> None:
    # given an action that writes and then is refused
    refuse = True

    async def action(conn: BaseDBAsyncClient) -> Answer:
        effect_id = await _effect(conn, clock.now())
        if refuse:
            raise Refused("not now")
        return _answer(effect_id, clock.now())

    with pytest.raises(Refused):
        await idempotent("test", "k1", {"amount": 1}, Answer, action)
    assert (await AuditLog.all().count(), await IdempotencyRecord.all().count()) == (0, 0)

    # when the same request is retried and succeeds
    refuse = False
    answer = await idempotent("test", "k1", {"amount": 1}, Answer, action)

    # then it ran, once
    assert await AuditLog.all().values_list("id", flat=True) == [answer.effect_id]
    assert await IdempotencyRecord.all().count() == 1


@pytest.mark.parametrize("key", ["", "k" * (MAX_KEY_LENGTH + 1)])
async def test_an_empty_or_over_long_key_is_refused_before_anything_runs(db: str, key: str) -> None:
    async def action(conn: BaseDBAsyncClient) -> Answer:
        raise AssertionError("must not run")

    with pytest.raises(InvalidInput) as refused:
        await idempotent("test", key, {}, Answer, action)

    assert (refused.value.code, refused.value.field) == ("INVALID", "idempotency_key")
    assert await IdempotencyRecord.all().count() == 0


async def test_a_key_of_exactly_the_maximum_length_is_accepted(db: str, clock: FrozenClock) -> None:
    async def action(conn: BaseDBAsyncClient) -> Answer:
        return _answer(await _effect(conn, clock.now()), clock.now())

    answer = await idempotent("test", "k" * MAX_KEY_LENGTH, {}, Answer, action)

    assert await IdempotencyRecord.filter(key="k" * MAX_KEY_LENGTH).count() == 1
    assert answer.at == datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.mark.postgres_only
async def test_concurrent_duplicates_on_their_own_connections_have_one_effect_and_one_answer(
    db: str, clock: FrozenClock
) -> None:
    # given 5 callers of one key, the action held open until every caller has started
    callers = 5
    started = 0
    all_started = asyncio.Event()
    runs = 0

    async def action(conn: BaseDBAsyncClient) -> Answer:
        nonlocal runs
        runs += 1
        effect_id = await _effect(conn, clock.now())
        await all_started.wait()
        await asyncio.sleep(0.2)  # the others now wait on the record's unique key
        return _answer(effect_id, clock.now())

    async def call() -> Answer:
        nonlocal started
        started += 1
        if started == callers:
            all_started.set()
        return await idempotent("test", "k1", {"amount": 1}, Answer, action)

    # when they run at once, each transaction on its own pooled connection
    answers = await asyncio.gather(*(call() for _ in range(callers)))

    # then the action ran once and every caller got its answer
    assert runs == 1
    assert answers == [answers[0]] * callers
    assert await AuditLog.all().values_list("id", flat=True) == [answers[0].effect_id]
    assert await IdempotencyRecord.all().count() == 1


async def test_an_answer_stored_as_iso_text_and_enum_values_replays_as_the_typed_result(db: str) -> None:
    # given a record written before answers were typed: ISO times with +00:00, Decimals and enums as text
    request = {"amount": 1}
    await IdempotencyRecord.create(
        scope="test",
        key="k1",
        request_hash=request_hash(request),
        response={
            "effect_id": 7,
            "kind": "refund",
            "at": "2026-03-02T12:00:00+00:00",
            "local_at": "2026-03-02T13:00:00+01:00",
            "rate": "2",
            "lines": [],
            "expires_at": None,
        },
        created_at=datetime(2026, 3, 2, 12, tzinfo=UTC),
    )

    async def action(conn: BaseDBAsyncClient) -> Answer:
        raise AssertionError("must not run")

    # when the request is retried
    answer = await idempotent("test", "k1", request, Answer, action)

    # then
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert answer == Answer(7, Kind.REFUND, at, at.astimezone(STOCKHOLM_WINTER), Decimal(2), [], None)
