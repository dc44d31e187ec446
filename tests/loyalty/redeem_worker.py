"""Helper process for the multi-process concurrency test (run as a script, not collected by pytest).

Usage: python redeem_worker.py DATABASE_URL MEMBER_ID COUNT AMOUNT KEY_PREFIX

Connects its own Tortoise pool, prints "ready", waits for a line on stdin (the start barrier), then runs COUNT
redemptions of AMOUNT points concurrently with asyncio.gather and prints one JSON line:
{"ok": n, "insufficient": n, "errors": [...]}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from loyalty.db import connect, disconnect
from loyalty.errors import InsufficientPoints
from tests.loyalty import ledger_helpers


async def _redeem(member_id: int, amount: int, key: str) -> str:
    try:
        await ledger_helpers.redeem_points(member_id, amount, idempotency_key=key)
    except InsufficientPoints:
        return "insufficient"
    except Exception as exc:  # reported to the test, which fails on any
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"


async def main(url: str, member_id: int, count: int, amount: int, prefix: str) -> None:
    await connect(url)
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        results = await asyncio.gather(*(_redeem(member_id, amount, f"{prefix}-{i}") for i in range(count)))
    finally:
        await disconnect()
    print(
        json.dumps(
            {
                "ok": results.count("ok"),
                "insufficient": results.count("insufficient"),
                "errors": [r for r in results if r.startswith("error")],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    url, member_id, count, amount, prefix = sys.argv[1:6]
    asyncio.run(main(url, int(member_id), int(count), int(amount), prefix))
