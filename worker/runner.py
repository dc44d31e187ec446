"""The drain loop: dispatch outbox events, then deliver what is due, until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from worker.config import WorkerConfig
from worker.dispatch import dispatch_pending
from worker.schedule import Schedule, running
from worker.webhooks import claim_due, deliver

log = logging.getLogger("klubb.worker")

DEFAULT_BATCH_SIZE = 20  # deliveries leased (and attempted concurrently) at a time by one worker


def make_client() -> httpx.AsyncClient:
    """The HTTP client for deliveries: no redirects (a 3xx is a failure), no proxies from the environment."""
    return httpx.AsyncClient(follow_redirects=False, trust_env=False)


async def drain_once(
    config: WorkerConfig,
    client: httpx.AsyncClient,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    stop: asyncio.Event | None = None,
) -> int:
    """Dispatch new events, then attempt every delivery due now; returns the number of attempts made.

    Deliveries are leased `batch_size` at a time and attempted concurrently. Stops between batches once `stop` is set.
    """
    await dispatch_pending()
    attempts = 0
    while stop is None or not stop.is_set():
        claims = await claim_due(batch_size, config.claim_lease_seconds)
        if not claims:
            break
        results = await asyncio.gather(
            *(
                deliver(
                    client,
                    claim,
                    timeout_seconds=config.webhook_timeout_seconds,
                    retry_hours=config.webhook_retry_hours,
                )
                for claim in claims
            ),
            return_exceptions=True,  # one failing delivery must not abandon its siblings mid-flight
        )
        for claim, result in zip(claims, results, strict=True):
            if isinstance(result, Exception):
                # Its lease expires and the delivery is retried; the attempt itself may or may not have happened.
                log.error("webhook delivery %s crashed", claim.delivery.id, exc_info=result)
            elif isinstance(result, BaseException):
                raise result
        attempts += len(claims)
    return attempts


async def run_forever(
    config: WorkerConfig,
    stop: asyncio.Event,
    poll_seconds: float = 1.0,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    grace_seconds: float | None = None,
    jobs: Schedule | None = None,
) -> None:
    """Drain until `stop` is set, polling every `poll_seconds` when idle; errors are logged and retried. Runs the
    periodic `jobs` alongside (`worker.schedule`).

    When `stop` is set mid-drain, in-flight attempts get `grace_seconds` (default: the webhook timeout) to finish and
    record; after that they are abandoned and their leases expire, so another worker delivers them again.
    """
    grace = config.webhook_timeout_seconds if grace_seconds is None else grace_seconds
    async with make_client() as client, running(jobs, stop):
        while not stop.is_set():
            drain = asyncio.create_task(drain_once(config, client, batch_size=batch_size, stop=stop))
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({drain, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not drain.done():
                    # Stop requested mid-drain: let in-flight attempts finish and record, within the grace period.
                    await asyncio.wait({drain}, timeout=grace)
                    if not drain.done():
                        drain.cancel()
                        await asyncio.wait({drain})
            finally:
                stopped.cancel()
                if not drain.done():  # we are being cancelled ourselves
                    drain.cancel()
            if drain.cancelled():
                break
            try:
                busy = drain.result() > 0
            except Exception:
                log.exception("outbox drain failed; retrying in %.1f s", poll_seconds)
                busy = False
            if not busy:
                # Idle (or failed): wait for the next poll, waking at once on stop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_seconds)


async def run_embedded(config: WorkerConfig, stop: asyncio.Event, *, jobs: Schedule | None = None) -> None:
    """The in-process drainer for the API lifespan (embedded default): never dies, stops promptly on `stop`.

    The ORM must already be initialized by the lifespan.
    """
    log.info("embedded outbox worker started")
    while not stop.is_set():
        try:
            await run_forever(config, stop, grace_seconds=min(config.webhook_timeout_seconds, 5.0), jobs=jobs)
        except Exception:
            # run_forever already survives drain errors; this covers e.g. failing to build the HTTP client.
            log.exception("embedded outbox worker crashed; restarting in 1 s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    log.info("embedded outbox worker stopped")
