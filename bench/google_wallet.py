"""Google Wallet in one process (not a timed test): save links signed per second, rotating codes checked per second,
and object syncs per second through the real client and consumer against the in-process fake.

    .venv/bin/python -m bench.google_wallet [--members 200] [--links 500]

A fresh SQLite database in a temporary directory (migrated, a two-tier program, `--members` enrolled, each with a
Google object the fake holds); one earn per member, dispatched, then `GoogleWalletSync.deliver_due` drains it twice:
with the client's real rate cap (20 requests/s: the sync rate must sit at the cap) and with the cap lifted (what
the consumer itself can do). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
import time
from datetime import UTC, datetime

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.routing import Mount

from loyalty import card, clock, purchases
from loyalty.actors import Actor
from loyalty.db import connect, disconnect, migrate
from loyalty.earning import LineInput
from loyalty.members import enroll_member
from loyalty.models import GoogleWalletObject, Member, StaffRole
from loyalty.program import apply_program_config, load_program
from loyalty.wallet import PassContent
from wallet.google import objects, save_link
from wallet.google.client import GoogleWalletClient, RateLimiter
from wallet.google.config import FAKE_PREFIX, GoogleWalletConfig, ServiceAccount
from wallet.google.fake import FakeGoogleWallet
from wallet.google.sync import GoogleWalletSync, card_content, content_digest
from worker.dispatch import dispatch_pending

BASE = "http://google.bench" + FAKE_PREFIX
PROGRAM = {
    "program": {"name": "Bench Club", "currency": "EUR", "earn_rate": 1, "pending_days": 14, "expiry_days": 365},
    "tiers": [
        {"name": "Member", "threshold": 0, "multiplier": 1, "benefits": []},
        {"name": "Silver", "threshold": 500, "multiplier": 1.25, "benefits": []},
    ],
}
TILL = Actor(kind="api_key", id=1, role=StaffRole.CASHIER, name="Bench till")


def _config() -> GoogleWalletConfig:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    document = {"client_email": "bench@klubb.example", "private_key": pem.decode(), "token_uri": f"{BASE}/token"}
    return GoogleWalletConfig(
        issuer_id="3388000000000000001",
        account=ServiceAccount.from_json(json.dumps(document)),
        api_base=f"{BASE}/walletobjects/v1",
        save_base=f"{BASE}/save/",
        origins=("https://klubb.example.com",),
    )


def links_per_second(config: GoogleWalletConfig, count: int) -> float:
    now = datetime.now(UTC)
    shown = PassContent(9, "1000000009", "Anna Andersson", 1234, 56, "Silver", "Gold", 766, 0.62, 30, now)
    content = objects.CardContent(shown, "AB" * 20, 60)
    started = time.perf_counter()
    for _ in range(count):
        url = save_link.inline_save_url(config, objects.loyalty_object(config, content), now)
        assert url is not None
    return count / (time.perf_counter() - started)


def codes_per_second(count: int) -> float:
    member = Member(member_number="1000000009", card_secret="ab" * 20)
    now = datetime.now(UTC)
    code = card.card_code(member, now, 60).code
    started = time.perf_counter()
    for _ in range(count):
        assert card.card_code_window(member, code, now, 60) is not None
    return count / (time.perf_counter() - started)


async def syncs_per_second(config: GoogleWalletConfig, members: int, rate: float) -> tuple[float, int]:
    """Earn once per member, dispatch, drain: (objects synced per second, PATCH requests the fake received)."""
    fake = FakeGoogleWallet(public_key_pem=config.account.public_key_pem())
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount(FAKE_PREFIX, fake.app())]))
    client = GoogleWalletClient(config, transport=transport, limiter=RateLimiter(rate))
    program = await load_program()
    now = clock.now()
    for row in await GoogleWalletObject.all():
        member = await Member.get(id=row.member_id)
        resource = objects.loyalty_object(config, await card_content(member, program, now))
        fake.objects[row.object_id] = resource
    await GoogleWalletObject.all().update(inserted=True)
    for number, member in enumerate(await Member.all().order_by("id")):
        total = 1_000 + number
        request = purchases.PurchaseRequest(
            member_id=member.id,
            store_code="S1",
            receipt_id=f"bench-{rate}-{number}",
            occurred_at=now,
            currency=program.currency,
            total=total,
            lines=(LineInput(sku="ITEM", category="", quantity=1, amount=total),),
        )
        await purchases.record_purchase(TILL, request)
    sync = GoogleWalletSync(config, client, batch_size=50)
    await dispatch_pending([sync])
    started = time.perf_counter()
    done = await sync.deliver_due(None)
    elapsed = time.perf_counter() - started
    await client.aclose()
    assert done == members, (done, members)
    return done / elapsed, sum(1 for r in fake.requests if r.method == "PATCH")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--links", type=int, default=500)
    args = parser.parse_args()
    config = _config()
    print(f"save links (inline object, RS256 2048): {links_per_second(config, args.links):,.0f} per second")
    print(f"rotating codes checked (3 windows):     {codes_per_second(20_000):,.0f} per second")
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite://{directory}/bench.sqlite3"
        await migrate(url)
        await disconnect()
        await connect(url)
        try:
            await apply_program_config(PROGRAM)
            now = clock.now()
            for n in range(args.members):
                member, _ = await enroll_member(f"bench-{n}", display_name=f"Member {n}")
                await GoogleWalletObject.create(
                    member_id=member.id,
                    object_id=config.object_id(objects.object_suffix(member.member_number)),
                    content_digest=content_digest(await card_content(member, await load_program(), now)),
                    next_attempt_at=now,
                    created_at=now,
                )
            for rate in (config.requests_per_second, 100_000.0):
                per_second, patches = await syncs_per_second(dataclasses.replace(config), args.members, rate)
                cap = "the real 20/s cap" if rate == config.requests_per_second else "the cap lifted"
                print(f"objects synced, {cap}: {per_second:,.1f} per second ({patches} PATCHes)")
        finally:
            await disconnect()


if __name__ == "__main__":
    asyncio.run(main())
