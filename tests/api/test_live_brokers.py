"""The brokers of live updates: in process, and Redis pub/sub with one subscription per process."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis

from api.live import LocalBroker, RedisBroker
from loyalty.live import Change, MemberNotice
from tests.conftest import REDIS_URL
from tests.pg_proxy import PgProxy

POINTS = frozenset({Change.POINTS})
TIER = frozenset({Change.TIER})


async def test_the_local_broker_routes_by_member_and_merges_what_waits() -> None:
    broker = LocalBroker()
    anna, anna_again, bo = await broker.subscribe(1), await broker.subscribe(1), await broker.subscribe(2)

    # when two notices for member 1 arrive before anyone reads
    await broker.publish([MemberNotice(1, POINTS), MemberNotice(1, TIER)])

    # then both of member 1's subscriptions read them as one, and member 2's nothing
    assert await anna.next() == POINTS | TIER
    assert await anna_again.next() == POINTS | TIER
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(bo.next(), 0.05)

    # and a closed subscription is forgotten (closing twice is harmless)
    anna.close()
    anna.close()
    anna_again.close()
    bo.close()
    assert broker.subscribers == 0


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _subscriptions(client: aioredis.Redis, channel: str) -> int:
    counts = await client.pubsub_numsub(channel)
    return int(counts[0][1])


async def test_redis_carries_notices_across_brokers_with_one_subscription_per_process(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # given a publishing broker (the worker) and a serving one (an API process) on a channel of this test's own
    channel = f"klubb-test:{uuid.uuid4()}"
    worker, api = RedisBroker(REDIS_URL, channel=channel), RedisBroker(REDIS_URL, channel=channel)
    try:
        # when three sockets of two members subscribe on the API process
        anna, anna_again, bo = await api.subscribe(1), await api.subscribe(1), await api.subscribe(2)

        # then Redis holds one subscription for all of them
        assert await _subscriptions(redis_client, channel) == 1

        # when the worker publishes a notice for member 1, and someone writes garbage on the channel
        with caplog.at_level(logging.WARNING, logger="klubb.live"):
            await redis_client.publish(channel, b"not a notice")
            await worker.publish([MemberNotice(1, POINTS | TIER)])

            # then member 1's sockets receive it, member 2's nothing, and the garbage is one warning
            assert await asyncio.wait_for(anna.next(), 5) == POINTS | TIER
            assert await asyncio.wait_for(anna_again.next(), 5) == POINTS | TIER
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bo.next(), 0.2)
        assert [r.getMessage() for r in caplog.records if r.name == "klubb.live"] == [
            f"live updates: ignored a message on {channel} that is not a notice"
        ]

        # when every socket is gone, the subscription ends within its poll (1 s)
        for subscription in (anna, anna_again, bo):
            subscription.close()
        for _ in range(40):
            if await _subscriptions(redis_client, channel) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _subscriptions(redis_client, channel) == 0

        # and a new socket subscribes again
        again = await api.subscribe(2)
        assert await _subscriptions(redis_client, channel) == 1
        await worker.publish([MemberNotice(2, TIER)])
        assert await asyncio.wait_for(again.next(), 5) == TIER
        again.close()
    finally:
        await api.aclose()
        await worker.aclose()


async def test_publishing_to_an_unreachable_redis_raises_for_the_consumer_to_log() -> None:
    # given a broker whose Redis does not answer (a closed local port)
    broker = RedisBroker("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(redis.ConnectionError):  # worker.live.LiveConsumer logs it and drops the notices
            await broker.publish([MemberNotice(1, POINTS)])
    finally:
        await broker.aclose()


async def test_the_subscription_comes_back_after_a_redis_outage(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # given an API process's broker reaching Redis through a proxy the test can cut, with one socket subscribed
    proxy = PgProxy(("127.0.0.1", 6379))
    await proxy.start()
    channel = f"klubb-test:{uuid.uuid4()}"
    api = RedisBroker(f"redis://127.0.0.1:{proxy.port}/0", channel=channel, retry_seconds=0.1)
    worker = RedisBroker(REDIS_URL, channel=channel)
    try:
        anna = await api.subscribe(1)
        assert await _subscriptions(redis_client, channel) == 1

        # when Redis becomes unreachable for the API process, and then reachable again
        with caplog.at_level(logging.WARNING, logger="klubb.live"):
            await proxy.cut()
            for _ in range(50):
                if await _subscriptions(redis_client, channel) == 0:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
            await proxy.restore()
            for _ in range(50):
                if await _subscriptions(redis_client, channel) == 1:
                    break
                await asyncio.sleep(0.1)

        # then it subscribed again by itself (each failed attempt one warning), and the socket receives again
        assert await _subscriptions(redis_client, channel) == 1
        warnings = [r.getMessage() for r in caplog.records if r.name == "klubb.live"]
        assert warnings
        assert all(w.startswith("live updates: Redis subscription lost") for w in warnings), warnings
        await worker.publish([MemberNotice(1, POINTS)])
        assert await asyncio.wait_for(anna.next(), 5) == POINTS
        anna.close()
    finally:
        await api.aclose()
        await worker.aclose()
        await proxy.cut()
