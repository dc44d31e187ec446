"""loyalty.devices and the prune-stale-devices job: one row per token, moved never shared, bounded per member,
deleted when stale or reported unregistered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from loyalty import devices, jobs
from loyalty.automations import apply_push_config
from loyalty.clock import FrozenClock
from loyalty.devices import InvalidPlatform, InvalidToken, register_device
from loyalty.errors import InvalidInput, MemberNotFound
from loyalty.models import (
    Device,
    DevicePlatform,
    MessagePurpose,
    MessageStatus,
    Program,
    PushDelivery,
    PushMessage,
    PushPolicy,
)
from tests.loyalty.ledger_helpers import new_member


def _token(n: int) -> str:
    return f"token-{n:04d}-" + "a" * 40


async def _tokens(member_id: int) -> list[str]:
    return sorted(await Device.filter(member_id=member_id).values_list("token", flat=True))


async def test_a_member_keeps_at_most_ten_devices_the_least_recently_seen_goes(
    program: Program, clock: FrozenClock
) -> None:
    # given a member with ten devices, the first one seen again last
    member = await new_member("uid-many")
    for n in range(10):
        await register_device(member.id, _token(n), DevicePlatform.ANDROID, "1.0", "en")
        clock.advance(timedelta(minutes=1))
    await register_device(member.id, _token(0), DevicePlatform.ANDROID, "1.0", "en")
    clock.advance(timedelta(minutes=1))

    # when an eleventh registers
    await register_device(member.id, _token(10), DevicePlatform.IOS, "1.0", "en")

    # then the device seen least recently (the second) is forgotten
    assert await _tokens(member.id) == sorted(_token(n) for n in range(11) if n != 1)


async def test_a_moved_token_leaves_the_other_members_pending_pushes_without_a_device(
    program: Program, clock: FrozenClock
) -> None:
    # given a push owed to Anna's device
    anna, bo = await new_member("uid-anna-d"), await new_member("uid-bo-d")
    device = await register_device(anna.id, _token(1), DevicePlatform.IOS, "1.0", "en")
    message = await PushMessage.create(
        member_id=anna.id,
        occasion="welcome",
        purpose=MessagePurpose.TRANSACTIONAL,
        title="Hi",
        body="Welcome",
        status=MessageStatus.SENT,
        due_at=clock.now(),
        created_at=clock.now(),
        sent_at=clock.now(),
    )
    delivery = await PushDelivery.create(
        message_id=message.id,
        device_id=device.id,
        token=device.token,
        next_attempt_at=clock.now(),
        created_at=clock.now(),
    )

    # when Bo registers that token
    moved = await register_device(bo.id, _token(1), DevicePlatform.IOS, "1.0", "en")

    # then it is a new row of Bo's; Anna's owed push no longer points at any device
    assert (moved.member_id, moved.id != device.id) == (bo.id, True)
    assert (await PushDelivery.get(id=delivery.id)).device_id is None
    assert await _tokens(anna.id) == []


@pytest.mark.parametrize(
    "token",
    ["a" * 31, "a" * 513, "a" * 40 + "\x00", "a" * 40 + "\ud800", "a" * 40 + "/", "a" * 40 + "\u00a0", 12345],
)
async def test_a_malformed_token_is_refused_before_the_database(program: Program, token: object) -> None:
    member = await new_member("uid-bad-token")

    with pytest.raises(InvalidToken):
        await register_device(member.id, token, DevicePlatform.IOS, "1.0", "en")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        await devices.unregister_device(member.id, token)  # type: ignore[arg-type]
    assert await Device.all().count() == 0


async def test_a_platform_is_one_of_the_enums_values(program: Program) -> None:
    member = await new_member("uid-platform")

    android = await register_device(member.id, _token(1), "android", "1.0", "en")
    with pytest.raises(InvalidPlatform, match="platform must be one of ios, android, web"):
        await register_device(member.id, _token(2), "ANDROID", "1.0", "en")

    assert (android.platform, await _tokens(member.id)) == (DevicePlatform.ANDROID, [_token(1)])


async def test_registering_for_a_missing_member_is_member_not_found(program: Program) -> None:
    with pytest.raises(MemberNotFound):
        await register_device(10**9, _token(1), DevicePlatform.IOS, "1.0", "en")
    assert await Device.all().count() == 0


async def test_tokens_fcm_reported_unregistered_are_deleted_whoever_holds_them(program: Program) -> None:
    # given devices of two members
    anna, bo = await new_member("uid-fcm-a"), await new_member("uid-fcm-b")
    for n in range(3):
        await register_device(anna.id, _token(n), DevicePlatform.ANDROID, "1.0", "en")
    await register_device(bo.id, _token(9), DevicePlatform.IOS, "1.0", "en")

    # when the sender reports one of each, a duplicate and a token nobody has
    deleted = await devices.delete_tokens([_token(1), _token(9), _token(1), _token(77)])

    # then those two are gone
    assert (deleted, await _tokens(anna.id), await _tokens(bo.id)) == (2, [_token(0), _token(2)], [])
    assert await devices.delete_tokens([]) == 0


async def test_the_job_prunes_devices_unused_for_270_days_once(program: Program, clock: FrozenClock) -> None:
    # given a device seen 270 days ago to the microsecond, one a microsecond later, one refreshed today
    member = await new_member("uid-stale")
    start = clock.now()
    await register_device(member.id, _token(1), DevicePlatform.IOS, "1.0", "en")
    clock.advance(timedelta(microseconds=1))
    await register_device(member.id, _token(2), DevicePlatform.IOS, "1.0", "en")
    await register_device(member.id, _token(3), DevicePlatform.IOS, "1.0", "en")
    clock.set(start + timedelta(days=270, microseconds=1))
    await register_device(member.id, _token(3), DevicePlatform.IOS, "1.0", "en")

    # when the job runs twice
    first, second = await jobs.prune_stale_devices(batch_size=1), await jobs.prune_stale_devices()

    # then only the one unused for more than 270 days went, once
    assert (first, second, await _tokens(member.id)) == (1, 0, [_token(2), _token(3)])
    assert "prune-stale-devices" in [job.name for job in jobs.JOBS]


async def test_a_device_a_push_reached_is_not_stale(program: Program, clock: FrozenClock) -> None:
    # given a device registered 269 days ago, then reached by a push
    member = await new_member("uid-seen")
    device = await register_device(member.id, _token(1), DevicePlatform.IOS, "1.0", "en")
    other = await register_device(member.id, _token(2), DevicePlatform.IOS, "1.0", "en")
    clock.advance(timedelta(days=269))
    await devices.mark_seen(None, [device.id], clock.now())
    await devices.mark_seen(None, [], clock.now())

    # when the job runs two days later
    clock.advance(timedelta(days=2))
    pruned = await jobs.prune_stale_devices()

    # then only the device no push reached went
    assert (pruned, await _tokens(member.id), other.token) == (1, [_token(1)], _token(2))


@pytest.mark.postgres_only
async def test_concurrent_registrations_of_one_token_leave_one_device(program: Program) -> None:
    # given five members signing in on one phone at once (and the first of them twice)
    members = [await new_member(f"uid-race-{n}") for n in range(5)]

    # when all register its token concurrently
    registered = await asyncio.gather(
        *(register_device(m.id, _token(1), DevicePlatform.IOS, "1.0", "en") for m in [*members, members[0]])
    )

    # then no registration failed and the token is one device, held by one of them
    rows = await Device.all().values_list("token", "member_id")
    assert len(registered) == 6
    assert [token for token, _ in rows] == [_token(1)]
    assert rows[0][1] in {m.id for m in members}


async def test_the_retention_is_the_programs(program: Program, clock: FrozenClock) -> None:
    # given a program that keeps devices 60 days, and devices last seen 60 days and 59 days ago
    await apply_push_config({"device_retention_days": 60})
    member = await new_member("uid-retention")
    await register_device(member.id, _token(1), DevicePlatform.IOS, "1.0", "en")
    clock.advance(timedelta(days=1))
    await register_device(member.id, _token(2), DevicePlatform.IOS, "1.0", "en")

    # when the job runs 60 days after the first registration
    clock.advance(timedelta(days=59))
    pruned = await jobs.prune_stale_devices()

    # then only the device unseen for longer than 60 days went (exactly 60 days is not yet stale)
    assert (pruned, await _tokens(member.id)) == (0, [_token(1), _token(2)])
    clock.advance(timedelta(seconds=1))
    assert (await jobs.prune_stale_devices(), await _tokens(member.id)) == (1, [_token(2)])


@pytest.mark.parametrize("days", [29, 3651, "90", 1.5, True])
async def test_a_retention_out_of_range_is_refused(program: Program, days: object) -> None:
    # when the program file names a retention below a month, above ten years, or not a whole number
    with pytest.raises(InvalidInput) as refused:
        await apply_push_config({"device_retention_days": days})

    # then it is refused, naming the key, and nothing is written
    assert (refused.value.field, str(refused.value)) == (
        "device_retention_days",
        "push config: `device_retention_days` must be 30 to 3650",
    )
    assert await PushPolicy.all().count() == 0
