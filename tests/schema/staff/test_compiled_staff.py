"""The till's reference operations (`schema/staff/operations/`) compiled on the staff schema: the same API.

Every document runs through strawberry and through its compiled plan with the same context, for generated members
(hypothesis histories, as the member schema's differential test builds them) and for each kind of caller — a
cashier of the member's store and of another, a manager of every store, an integration's API key, nobody — with
lookups that find the member, another member and nobody, previews in a store the caller may and may not act in, for
a member that does not exist or an id of another type, and bad variables: the JSON must be byte-identical, errors
included, on the development and production (masked) schemas and on both engines.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from strawberry import relay
from strawberry.http import process_result

from bench.run import LOOKUP_QUERY
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member, luhn_check_digit
from loyalty.models import Member, StaffRole
from loyalty.program import apply_program_config, forget_cached_program
from schema.compiled import CompiledDocuments
from schema.staff.context import StaffContext
from schema.staff.schema import OPERATIONS_DIR, build_staff_schema
from tests.conftest import POSTGRES_URL, START, TEST_PROGRAM, _truncate_all
from tests.loyalty import purchase_helpers
from tests.schema.conftest import SQLCounter
from tests.schema.test_compiled_differential import EXAMPLES, History, _run, histories

DOCUMENTS = {path.name.removesuffix(".graphql"): path.read_text() for path in sorted(OPERATIONS_DIR.glob("*.graphql"))}
SCHEMAS = {production: build_staff_schema(production=production) for production in (False, True)}
COMPILED = {production: CompiledDocuments(schema, OPERATIONS_DIR) for production, schema in SCHEMAS.items()}
ACTORS: dict[str, Actor | None] = {
    "cashier S1": Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass", session_id="t1"),
    "cashier S2": Actor(kind="staff", id=2, role=StaffRole.CASHIER, store_codes=("S2",), name="Cleo", session_id="t2"),
    "manager": Actor(kind="staff", id=3, role=StaffRole.MANAGER, name="Max", session_id="t3"),
    "api key S1": Actor(kind="api_key", id=4, role=StaffRole.CASHIER, store_codes=("S1",), name="POS 1"),
    "nobody": None,
}
UNKNOWN_NUMBER = "123456789" + luhn_check_digit("123456789")


def test_every_reference_operation_is_compiled() -> None:
    for compiled in COMPILED.values():
        assert sorted(operation.name or "" for operation in compiled.operations.values()) == sorted(DOCUMENTS)
        assert compiled.not_compiled == {}


def test_the_bench_sends_the_tills_lookup() -> None:
    # The bench's lookup scenario measures the compiled path: its document is one of the reference operations.
    assert DOCUMENTS["Lookup"] == LOOKUP_QUERY


def _context(actor: Actor | None, clock: FrozenClock) -> StaffContext:
    return StaffContext(request=None, response=None, actor=actor, now=clock.now())


async def both(production: bool, name: str, variables: Any, actor: Actor | None, clock: FrozenClock) -> bytes:
    """The response of both paths for one request; fails unless they are byte-identical."""
    query = DOCUMENTS[name]
    operation = COMPILED[production].get(query, None, variables)
    assert operation is not None
    compiled = orjson.dumps(process_result(await operation.execute(_context(actor, clock), variables)))
    reference = orjson.dumps(
        process_result(
            await SCHEMAS[production].execute(query, variable_values=variables, context_value=_context(actor, clock))
        )
    )
    assert compiled == reference, (name, variables, actor, production)
    return compiled


def preview(member: str, clock: FrozenClock, store: str = "S1", **changes: Any) -> dict[str, Any]:
    return {
        "input": {
            "member": member,
            "storeCode": store,
            "receiptId": "R-preview",
            "occurredAt": clock.now().isoformat(),
            "currency": "EUR",
            "total": 3_000,
            "lines": [
                {"sku": "LATTE", "category": "coffee", "quantity": 2, "amount": 1_000},
                {"sku": "CAKE", "amount": 2_000},
                {"sku": "X", "amount": 500, "voided": True},
            ],
            **changes,
        }
    }


def requests(member: Member, other: Member, clock: FrozenClock) -> list[tuple[str, Any]]:
    """What the till sends, and what it should not."""
    member_id = relay.to_base64("Member", member.id)
    lookups = [
        member.member_number,
        f" {member.member_number} ",
        other.member_number,
        member.email,
        UNKNOWN_NUMBER,
        UNKNOWN_NUMBER + "123456",  # a card barcode of nobody
        "",
        "+49 170 0000000",
    ]
    return [
        ("StaffMe", None),
        *((name, {"query": text}) for name in ("Lookup", "MemberSummary") for text in lookups),
        ("Lookup", {"query": 3}),  # bad: not a String
        ("Lookup", {}),  # bad: $query is required
        ("MemberSummary", {"query": None}),  # bad: null for a non-null
        ("PurchasePreview", preview(member_id, clock)),
        ("PurchasePreview", preview(member_id, clock, store="S2")),  # only who may act in S2
        ("PurchasePreview", preview(relay.to_base64("Member", other.id + 1_000_000), clock)),  # nobody
        ("PurchasePreview", preview(relay.to_base64("Offer", member.id), clock)),  # another type's id
        ("PurchasePreview", preview(member_id, clock, total=2**31)),  # bad: beyond Int
        ("PurchasePreview", preview(member_id, clock, total="30")),  # bad: wrong type
        ("PurchasePreview", preview(member_id, clock, currency="USD", total=2_999)),  # refused by the rules
    ]


async def compare_everything(member: Member, other: Member, clock: FrozenClock) -> None:
    for production in (False, True):
        for actor in ACTORS.values():
            for name, variables in requests(member, other, clock):
                await both(production, name, variables, actor, clock)


async def _example(database_url: str, clock: FrozenClock, steps: list[tuple[str, int, int]]) -> None:
    await _truncate_all(database_url)
    forget_cached_program()
    clock.set(START - timedelta(days=420))
    await apply_program_config(TEST_PROGRAM)
    await purchase_helpers.stamp_card()
    member, _ = await enroll_member("uid-staff", email="staff-diff@example.com", display_name="Diff")
    other, _ = await enroll_member("uid-other", email="other@example.com", display_name="Other")
    history = History(member, clock)
    for name, size, days in steps:
        clock.advance(timedelta(days=days))
        await history.apply(name, size)
    clock.set(max(clock.now(), START))
    await compare_everything(member, other, clock)


async def test_both_paths_answer_the_till_byte_identically(db: str, clock: FrozenClock) -> None:
    # Given members generated by hypothesis (fewer than the member schema's: each example sends ~250 requests)
    loop = asyncio.get_running_loop()
    examples = max(2, EXAMPLES // 5) if db != POSTGRES_URL else 2

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=histories)
    def check(steps: list[tuple[str, int, int]]) -> None:
        # When every reference operation runs through both paths for every caller, then the same bytes
        _run(loop, _example(db, clock, steps))

    await asyncio.to_thread(check)


async def test_what_the_compiled_till_sees(anna: Member, clock: FrozenClock) -> None:
    # Given a member with a purchase, and another member
    await History(anna, clock).apply("buy", 120)
    other, _ = await enroll_member("uid-other", email="other@example.com", display_name="Other")
    cashier, nobody = ACTORS["cashier S1"], ACTORS["nobody"]

    async def answer(name: str, variables: Any, actor: Actor | None) -> Any:
        return orjson.loads(await both(True, name, variables, actor, clock))

    # Then a lookup finds the member by number and by email, the other member as themselves, nobody as null
    found = await answer("Lookup", {"query": anna.member_number}, cashier)
    assert found["data"]["memberLookup"]["memberNumber"] == anna.member_number
    assert found["data"]["memberLookup"]["points"] == {"available": 0, "pending": 120}
    by_email = await answer("MemberSummary", {"query": anna.email}, cashier)
    assert by_email["data"]["memberLookup"]["id"] == relay.to_base64("Member", anna.id)
    assert (await answer("Lookup", {"query": other.member_number}, cashier))["data"]["memberLookup"]["name"] == "Other"
    assert await answer("Lookup", {"query": UNKNOWN_NUMBER}, cashier) == {"data": {"memberLookup": None}}
    # and the caller's role and store are checked on the compiled path too
    refused = await answer("Lookup", {"query": anna.member_number}, nobody)
    assert [error["extensions"]["code"] for error in refused["errors"]] == ["UNAUTHENTICATED"]
    other_store = await answer("PurchasePreview", preview(relay.to_base64("Member", anna.id), clock, "S2"), cashier)
    assert [error["extensions"]["code"] for error in other_store["errors"]] == ["FORBIDDEN"]
    missing = await answer("PurchasePreview", preview(relay.to_base64("Offer", anna.id), clock), cashier)
    assert missing["data"]["purchasePreview"]["userErrors"][0]["code"] == "MEMBER_NOT_FOUND"
    assert await answer("StaffMe", None, cashier) == {
        "data": {"staffMe": {"kind": "staff", "role": "cashier", "name": "Cass", "storeCodes": ["S1"]}}
    }


# The statements each reference operation costs (the same on both paths, the same for a short and a long history).
# Lookup: the member with their qualifying value, the running offers with the member's use of them, usable
# vouchers with what they are for, stamp cards with progress (one statement each: rows); MemberSummary: and the
# points expiring soon; PurchasePreview: the program and tiers (not the request's cached program), the member, the
# day's purchases (limits), campaigns, bonus rules.
BUDGETS = {"Lookup": 4, "MemberSummary": 5, "PurchasePreview": 6, "StaffMe": 0}


async def test_each_reference_operation_costs_what_strawberry_does_whatever_the_history(
    anna: Member, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    history = History(anna, clock)
    variables = {
        "Lookup": {"query": anna.member_number},
        "MemberSummary": {"query": anna.member_number},
        "PurchasePreview": preview(relay.to_base64("Member", anna.id), clock),
        "StaffMe": None,
    }
    manager = ACTORS["manager"]
    counts: dict[str, list[int]] = {name: [] for name in DOCUMENTS}
    for steps in (["adjust", "reward", "offer", "buy"], ["buy", "big_buy", "adjust", "reward", "offer"] * 4):
        # Given a member's history, with a voucher, an offer and purchases, then four times as much (settled and
        # caches warm: each screen loaded once)
        for step in steps:
            clock.advance(timedelta(hours=1))  # the vouchers and offers stay valid
            await history.apply(step, 121)
        for name, values in variables.items():
            await both(False, name, values, manager, clock)
            operation = COMPILED[False].get(DOCUMENTS[name], None, values)
            assert operation is not None
            # When the operation runs compiled, then through strawberry
            sql_counter.statements.clear()
            await operation.execute(_context(manager, clock), values)
            compiled = list(sql_counter.statements)
            sql_counter.statements.clear()
            await SCHEMAS[False].execute(DOCUMENTS[name], values, context_value=_context(manager, clock))
            # Then both send the same statements
            assert compiled == sql_counter.statements, name
            counts[name].append(len(compiled))
    # as many as the budget, however long the history
    assert counts == {name: [budget, budget] for name, budget in BUDGETS.items()}
