"""The append-only audit log of staff actions: who, what, when, where, before and after."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.actors import Actor
from loyalty.models import AuditLog


async def record_audit(
    actor: Actor,
    action: str,
    *,
    conn: BaseDBAsyncClient | None = None,
    store_code: str | None = None,
    member_id: int | None = None,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditLog:
    """Append an audit entry, inside the caller's transaction when `conn` is given."""
    return await AuditLog.create(
        actor_type=actor.kind,
        actor_id=actor.id,
        action=action,
        store_code=store_code,
        member_id=member_id,
        target=target[:100],
        before=before,
        after=after,
        reason=reason[:200],
        created_at=clock.now(),
        using_db=conn,
    )
