"""The drain loop: dispatch outbox events to the consumers, then let them deliver what is due, until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import httpx

from loyalty.db import database_unavailable
from worker.config import WorkerConfig
from worker.consumers import Consumer
from worker.dispatch import dispatch_pending
from worker.live import LiveConsumer, Publisher
from worker.schedule import Schedule, running
from worker.wakeup import outbox_wakeups
from worker.webhooks import WebhookConsumer

log = logging.getLogger("klubb.worker")


def make_client() -> httpx.AsyncClient:
    """The HTTP client for deliveries: no redirects (a 3xx is a failure), no proxies from the environment."""
    return httpx.AsyncClient(follow_redirects=False, trust_env=False)


def outbox_consumers(config: WorkerConfig, client: httpx.AsyncClient, live: Publisher | None = None) -> list[Consumer]:
    """The consumers `worker` itself provides (live updates when given their broker, webhooks); the composition
    root adds those of other packages. Live updates come first: `drain_once` runs the consumers' deliveries in
    order, and a notice should not wait behind a slow webhook."""
    return [*([LiveConsumer(live)] if live is not None else []), WebhookConsumer(config, client)]


async def drain_once(consumers: Sequence[Consumer], *, stop: asyncio.Event | None = None) -> int:
    """Dispatch new events to every consumer, then let each attempt what is due; returns the attempts made.

    Stops between batches once `stop` is set.
    """
    await dispatch_pending(consumers)
    attempts = 0
    for consumer in consumers:
        if stop is not None and stop.is_set():
            break
        attempts += await consumer.deliver_due(stop)
    return attempts


async def run_forever(
    consumers: Sequence[Consumer],
    stop: asyncio.Event,
    poll_seconds: float = 1.0,
    *,
    grace_seconds: float,
    jobs: Schedule | None = None,
    wake: asyncio.Event | None = None,
) -> None:
    """Drain until `stop` is set, polling every `poll_seconds` when idle; errors are logged and retried. Runs the
    periodic `jobs` alongside (`worker.schedule`).

    `wake` (`worker.wakeup`: set when PostgreSQL notifies a commit of outbox events) ends an idle wait early. It is
    cleared before each drain, so a commit during a drain is drained right after it. After a failed drain the full
    `poll_seconds` are waited anyway: a drain that fails should not be retried at the pace of the commits.

    When `stop` is set mid-drain, in-flight attempts get `grace_seconds` to finish and record; after that they are
    abandoned and their leases expire, so another worker delivers them again.
    """
    async with running(jobs, stop):
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # before the drain reads: what commits from now on wakes the next idle wait
            drain = asyncio.create_task(drain_once(consumers, stop=stop))
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({drain, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not drain.done():
                    # Stop requested mid-drain: let in-flight attempts finish and record, within the grace period.
                    await asyncio.wait({drain}, timeout=grace_seconds)
                    if not drain.done():
                        drain.cancel()
                        await asyncio.wait({drain})
            finally:
                stopped.cancel()
                if not drain.done():  # we are being cancelled ourselves
                    drain.cancel()
            if drain.cancelled():
                break
            failed = False
            try:
                busy = drain.result() > 0
            except Exception as exc:
                failed = True
                if database_unavailable(exc):  # an outage, not a bug: one line per poll until it is back
                    log.warning(
                        "outbox drain failed: the database is unavailable; retrying in %.1f s (%s: %s)",
                        poll_seconds,
                        type(exc).__name__,
                        exc,
                    )
                else:
                    log.exception("outbox drain failed; retrying in %.1f s", poll_seconds)
                busy = False
            if not busy:
                # Idle (or failed): wait for the next poll, waking at once on stop (or a notified commit).
                await _idle(stop, None if failed else wake, poll_seconds)


async def _idle(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` or `wake` is set."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return
    waits = {asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


async def run_embedded(
    config: WorkerConfig,
    stop: asyncio.Event,
    *,
    extra_consumers: Sequence[Consumer] = (),
    jobs: Schedule | None = None,
    live: Publisher | None = None,
) -> None:
    """The in-process drainer for the API lifespan (embedded default): never dies, stops promptly on `stop`.

    The ORM must already be initialized by the lifespan.
    """
    log.info("embedded outbox worker started")
    async with outbox_wakeups(config.listen_url) as listener:
        wake = listener.wake if listener is not None else None
        while not stop.is_set():
            try:
                async with make_client() as client:
                    consumers = [*outbox_consumers(config, client, live), *extra_consumers]
                    grace = min(config.webhook_timeout_seconds, 5.0)
                    await run_forever(consumers, stop, grace_seconds=grace, jobs=jobs, wake=wake)
            except Exception:
                # run_forever already survives drain errors; this covers e.g. failing to build the HTTP client.
                log.exception("embedded outbox worker crashed; restarting in 1 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
    log.info("embedded outbox worker stopped")
