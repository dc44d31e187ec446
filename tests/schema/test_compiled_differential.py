"""The compiled path is the same API: every trusted document, through both paths, on generated members.

Hypothesis builds a member's history through the real services under the frozen clock (purchases small and large,
so every tier; refunds; adjustments; redemptions; rewards bought, cancelled, used and expired as vouchers; offers
running, ended and to activate; a stamp card; points that expire or will soon), then every document of
`mobile-client-mock/operations/` runs through strawberry and through its compiled plan with the same context: the
JSON must be byte-identical (keys in the same order too), errors included, for the member, for a signed-out caller
and for a member that no longer exists, with good and bad variables, on the development and production schemas
(masked errors). A document added to the directory is covered the day it appears: a query must compile.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import orjson
import pytest
import strawberry
from graphql import OperationType, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.http import process_result

from loyalty import inbox, jobs, offers, rewards, vouchers
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError
from loyalty.members import enroll_member
from loyalty.models import (
    EntryKind,
    Member,
    MessagePurpose,
    MessageStatus,
    Offer,
    OfferBenefit,
    PushMessage,
    Reward,
    RewardKind,
    Voucher,
    VoucherStatus,
)
from loyalty.program import apply_program_config, forget_cached_program
from schema.compiled import CompiledDocuments
from schema.context import Context
from schema.member_schema import build_member_schema
from schema.trusted_documents import OPERATIONS_DIR
from tests.conftest import POSTGRES_URL, START, TEST_PROGRAM, _truncate_all
from tests.loyalty import ledger_helpers, purchase_helpers

T = TypeVar("T")
DOCUMENTS = {path.name: path.read_text() for path in sorted(OPERATIONS_DIR.glob("*.graphql"))}
SCHEMAS = {production: build_member_schema(production=production) for production in (False, True)}
COMPILED = {production: CompiledDocuments(schema, OPERATIONS_DIR) for production, schema in SCHEMAS.items()}
QUERIES = [
    name
    for name, text in DOCUMENTS.items()
    if any(getattr(d, "operation", None) == OperationType.QUERY for d in parse(text).definitions)
]
EXAMPLES = int(os.environ.get("KLUBB_DIFFERENTIAL_EXAMPLES", "30"))

# What a history is made of: (step, size, days the clock moves on before it).
STEPS = (
    "buy",
    "big_buy",
    "refund",
    "adjust",
    "redeem_points",
    "reward",
    "cancel_voucher",
    "use_voucher",
    "offer",
    "activate_offer",
    "expire",
    "message",
    "read_message",
)
step = st.tuples(st.sampled_from(STEPS), st.integers(1, 400), st.integers(0, 45))
histories = st.lists(step, max_size=40)
# Variables the app sends, and ones it should not: other lists' cursors, junk, wrong types, unknown names.
after = st.one_of(
    st.none(),
    st.sampled_from(["", "junk", "YWN0aXZpdHk6MQ==", "dm91Y2hlcjox", "cmV3YXJkOjE=", "b2ZmZXI6MTox", "%%%"]),
    st.text(max_size=12),
    st.integers(-3, 3),
)
status = st.one_of(st.none(), st.sampled_from([s.name for s in VoucherStatus] + ["BOGUS", "redeemed"]), st.just(3))
variable_sets = st.lists(
    st.fixed_dictionaries({}, optional={"after": after, "status": status, "unknown": st.integers()}),
    min_size=1,
    max_size=3,
)


def test_every_query_document_is_compiled() -> None:
    # Every trusted query has a plan; only mutations (they write, and are not hot) and subscriptions (one plan per
    # socket, not per request) run through strawberry.
    for compiled in COMPILED.values():
        assert sorted(operation.name or "" for operation in compiled.operations.values()) == [
            name.removesuffix(".graphql") for name in QUERIES
        ]
        assert sorted(compiled.not_compiled) == sorted(set(DOCUMENTS) - set(QUERIES))
        assert {reason for reason in compiled.not_compiled.values()} <= {
            "OperationType.MUTATION",
            "OperationType.SUBSCRIPTION",
        }, compiled.not_compiled


@dataclass
class History:
    """Builds one member's past through the services, the clock moving forward as it goes."""

    member: Member
    clock: FrozenClock
    receipts: int = 0
    keys: int = 0

    def key(self) -> str:
        self.keys += 1
        return f"k{self.keys}"

    async def apply(self, name: str, size: int) -> None:
        member_id = self.member.id
        try:
            if name in ("buy", "big_buy"):
                self.receipts += 1
                total = size * (2_500 if name == "big_buy" else 100)
                await ledger_helpers.purchase(member_id, f"R{self.receipts}", total, self.clock.now())
            elif name == "refund" and self.receipts:
                await ledger_helpers.refund_purchase(
                    store_code="S1", receipt_id=f"R{self.receipts}", refund_id=self.key(), amount=size * 10
                )
            elif name == "adjust":
                await ledger_helpers.credit_points(
                    member_id, size, kind=EntryKind.ADJUSTMENT, idempotency_key=self.key()
                )
            elif name == "redeem_points":
                await ledger_helpers.redeem_points(member_id, size, idempotency_key=self.key())
            elif name == "reward":
                kind = [RewardKind.FREE_PRODUCT, RewardKind.DONATION, RewardKind.AMOUNT_OFF][size % 3]
                reward = await Reward.create(
                    name=f"Reward {size}",
                    kind=kind,
                    points_cost=size % 150,
                    value=size * 10,
                    cause="Trees" if kind == RewardKind.DONATION else None,
                    voucher_valid_days=1 + size % 40,
                    stock=None if size % 4 else 1 + size % 3,
                )
                await rewards.redeem_reward(member_id, reward.id, idempotency_key=self.key())
            elif name in ("cancel_voucher", "use_voucher"):
                voucher = await Voucher.filter(member_id=member_id).order_by("-id").first()
                if voucher is not None and name == "cancel_voucher":
                    await vouchers.cancel_voucher(member_id, voucher.id)
                elif voucher is not None and voucher.status == VoucherStatus.ACTIVE:
                    await Voucher.filter(id=voucher.id).update(
                        status=VoucherStatus.REDEEMED, redeemed_at=self.clock.now()
                    )
            elif name == "offer":
                benefit = list(OfferBenefit)[size % len(OfferBenefit)]
                await Offer.create(
                    name=f"Offer {size}",
                    benefit=benefit,
                    value=size,
                    sku="SKU1" if benefit == OfferBenefit.FREE_ITEM else None,
                    valid_from=self.clock.now() - timedelta(days=size % 10),
                    valid_until=self.clock.now() + timedelta(days=size % 60),
                    requires_activation=size % 2 == 0,
                    per_member_limit=1 + size % 3,
                    min_spend=size * 100 if size % 5 == 0 else None,
                    priority=size % 7,
                )
            elif name == "activate_offer":
                offer = await Offer.filter(requires_activation=True).order_by("-id").first()
                if offer is not None:
                    await offers.activate_offer(member_id, offer.id)
            elif name == "expire":
                await jobs.expire_points()
            elif name == "message":
                await self.message(size)
            elif name == "read_message":
                await inbox.mark_read(member_id, [m.id for m in await PushMessage.filter(member_id=member_id)][-1:])
        except DomainError:
            pass  # a refused step (not enough points, out of stock, ended offer...) is part of a history too

    async def message(self, size: int) -> None:
        """A message sent to the member (as the sender releases one), some about an offer and ending with it, some
        already expired, some at the same instant as the one before."""
        previous = await PushMessage.filter(member_id=self.member.id).order_by("-id").first()
        tie = previous is not None and previous.sent_at is not None and size % 4 == 0
        sent_at = previous.sent_at if previous is not None and tie else self.clock.now()
        target = ["", f"offer:{size}", f"reward:{size}", f"voucher:{size}"][size % 4]
        await PushMessage.create(
            member_id=self.member.id,
            occasion=f"test:{self.key()}",
            purpose=MessagePurpose.MARKETING if size % 2 else MessagePurpose.TRANSACTIONAL,
            title=f"Message {size}",
            body=f"About {target or 'you'}",
            target=target,
            status=MessageStatus.SENT if size % 7 else MessageStatus.SUPPRESSED,
            due_at=self.clock.now(),
            created_at=self.clock.now(),
            sent_at=sent_at if size % 7 else None,
            expires_at=self.clock.now() + timedelta(days=size % 50 - 10) if size % 3 == 0 else None,
        )


def _context(member_id: int | None, clock: FrozenClock) -> Context:
    return Context(request=None, response=None, member_id=member_id, sessions=cast(Any, None), now=clock.now())


async def _both(production: bool, query: str, variables: Any, member_id: int | None, clock: FrozenClock) -> bytes:
    """The response of both paths for one request; fails unless they are byte-identical."""
    schema: strawberry.Schema = SCHEMAS[production]
    operation = COMPILED[production].get(query, None, variables)
    assert operation is not None
    compiled = orjson.dumps(process_result(await operation.execute(_context(member_id, clock), variables)))
    reference = orjson.dumps(
        process_result(await schema.execute(query, variable_values=variables, context_value=_context(member_id, clock)))
    )
    assert compiled == reference, (query.splitlines()[1], variables, member_id, production)
    return compiled


async def _compare_everything(member_id: int, variable_sets: list[dict[str, Any]], clock: FrozenClock) -> None:
    for production in (False, True):
        for text in DOCUMENTS.values():
            if COMPILED[production].get(text, None, {}) is None:
                continue  # a mutation: strawberry only
            for caller in (member_id, None, member_id + 1_000_000):  # the member, signed out, deleted
                first = orjson.loads(await _both(production, text, {}, caller, clock))
                cursor = _end_cursor(first)
                if cursor is not None:  # the next page, as the app asks for it
                    await _both(production, text, {"after": cursor}, caller, clock)
            for variables in variable_sets:
                await _both(production, text, variables, member_id, clock)


def _end_cursor(response: Any) -> str | None:
    data = response.get("data") or {}
    me = data.get("me") or {}
    for connection in [*(v for v in me.values() if isinstance(v, dict)), data.get("rewards") or {}]:
        info = connection.get("pageInfo") if isinstance(connection, dict) else None
        if info and info.get("hasNextPage"):
            return cast(str, info["endCursor"])
    return None


async def _example(
    database_url: str, clock: FrozenClock, steps: list[tuple[str, int, int]], variable_sets: list[dict[str, Any]]
) -> None:
    await _truncate_all(database_url)
    forget_cached_program()
    clock.set(START - timedelta(days=420))
    await apply_program_config(TEST_PROGRAM)
    await purchase_helpers.stamp_card()
    member, _ = await enroll_member("uid-diff", email="diff@example.com", display_name="Diff")
    history = History(member, clock)
    for name, size, days in steps:
        clock.advance(timedelta(days=days))
        await history.apply(name, size)
    clock.set(max(clock.now(), START))
    await _compare_everything(member.id, variable_sets, clock)


def _run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=300)


async def test_both_paths_answer_byte_identically_on_generated_members(db: str, clock: FrozenClock) -> None:
    # Given members generated by hypothesis (fewer examples on PostgreSQL: the engine's own run, not the search)
    loop = asyncio.get_running_loop()
    examples = EXAMPLES if db != POSTGRES_URL else max(3, EXAMPLES // 5)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=histories, variable_sets=variable_sets)
    def check(steps: list[tuple[str, int, int]], variable_sets: list[dict[str, Any]]) -> None:
        # When every trusted query runs through both paths, then the answers are the same bytes
        _run(loop, _example(db, clock, steps, variable_sets))

    await asyncio.to_thread(check)


@pytest.mark.parametrize("name", QUERIES)
async def test_a_member_with_a_long_history_answers_the_same(db: str, clock: FrozenClock, name: str) -> None:
    # Given a member whose first purchase, 360 days ago, expires within the warning window, then 60 more steps
    # (three pages of activity), vouchers bought, offers running
    clock.set(START - timedelta(days=360))
    await apply_program_config(TEST_PROGRAM)
    member, _ = await enroll_member("uid-long", email="long@example.com", display_name="Long")
    history = History(member, clock)
    await history.apply("big_buy", 400)  # 10,000 points: what is spent later leaves most of them
    for index in range(60):
        clock.advance(timedelta(days=3))
        await history.apply(["buy", "big_buy", "reward", "offer", "redeem_points"][index % 5], 7 * index + 1)
    for size in range(1, 60):  # three pages of the inbox, some expired, some suppressed
        await history.apply("message", size)
    clock.set(START)
    # When its screens load page after page, then both paths agree on every page
    pages = []
    for production in (False, True):
        variables: dict[str, Any] = {}
        for _page in range(5):
            response = orjson.loads(await _both(production, DOCUMENTS[name], variables, member.id, clock))
            pages.append(response)
            cursor = _end_cursor(response)
            if cursor is None:
                break
            variables = {"after": cursor}
    # (and what they agree on is what this test is for: points expiring soon, a tier above the first, more pages)
    assert all("errors" not in page for page in pages), pages
    if name == "Home.graphql":
        me = pages[0]["data"]["me"]
        assert me["points"]["expiringSoon"] != []
        assert me["tier"]["current"]["name"] != "Member"
    if name == "ActivityPage.graphql":
        assert len(pages) >= 2 * 3  # three pages or more on each schema
