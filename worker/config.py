"""What the outbox worker needs from the configuration, handed to it by whoever starts it.

The worker takes this small frozen config, not the service's `Settings`: `api.settings` reads the API process's
environment, and importing it here made `worker → api` while `api` starts the worker (`api → worker`): a cycle between
packages. Packages below the composition root (`worker`, and `wallet` and `push` when they come) each declare what
they need like this, and the composition roots build it from `Settings` with `Settings.worker_config()` — `api.app`
for the embedded worker, `api.cli` for `klubb worker`. A settings module shared by every package was the alternative:
each package would see every setting, and its tests would build the whole service configuration to run one loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    webhook_timeout_seconds: float  # per delivery attempt
    webhook_retry_hours: int  # how long failed deliveries are retried
    lease_seconds: float  # the claim lease asked for; see claim_lease_seconds
    # PostgreSQL URL the worker LISTENs on for new outbox events (`worker.wakeup`); None: it polls alone.
    listen_url: str | None = None

    @property
    def claim_lease_seconds(self) -> float:
        """The claim lease; it must outlive one attempt or a slow attempt could be delivered twice concurrently."""
        return max(self.lease_seconds, self.webhook_timeout_seconds + 1.0)
