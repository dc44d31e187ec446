"""The compiler's GraphQL semantics, against strawberry's own execution of the same document.

A small schema built for the purpose makes every case happen on demand (a non-null field returning null, a resolver
raising in a list, errors under an already nulled parent); the member schema is then run with documents the app
does not send (aliases, fragments, @include/@skip, __typename) and through the HTTP endpoint: the fallback,
untrusted documents, bad variables and the SQL statements each operation costs.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import strawberry
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.http import process_result

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE
from api.settings import Environment, Settings
from bench.run import LOOKUP_QUERY
from loyalty.clock import FrozenClock
from loyalty.models import Member
from loyalty.staff import create_api_key
from schema.compiled import CompiledDocuments, Unsupported, compile_operation, documents
from schema.member_schema import build_member_schema
from schema.staff.schema import OPERATIONS_DIR as STAFF_OPERATIONS_DIR
from schema.trusted_documents import OPERATIONS_DIR
from tests.conftest import app_settings
from tests.schema.conftest import HOME_QUERY, GraphQLClient, SQLCounter
from tests.schema.test_compiled_differential import COMPILED, DOCUMENTS, QUERIES, SCHEMAS, History, _both, _context


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Leaf:
    n: int
    # Leaves at the edges of their scalar: beyond 32 bits, a bool where an Int is declared, an int for a String.
    big: int | None = 2**31
    small: int = -(2**31)
    truthy: int = True
    number_text: str = 12  # type: ignore[assignment]

    @strawberry.field
    def name(self) -> str:
        return None if self.n == 13 else f"leaf {self.n}"  # type: ignore[return-value] - a broken resolver

    @strawberry.field
    async def later(self) -> str | None:
        await asyncio.sleep(0)
        if self.n == 7:
            raise ValueError("seven is refused")
        return f"later {self.n}"

    @strawberry.field
    def color(self) -> Color:
        return Color.RED if self.n % 2 else Color.BLUE


@strawberry.type
class Box:
    leaves: list[Leaf]
    # Lists of leaves with items their scalar refuses: beyond 32 bits, null in a non-null position, awaitable.
    numbers: list[int | None] = strawberry.field(default_factory=lambda: [1, 2**40, 3])
    strict_numbers: list[int] = strawberry.field(default_factory=lambda: [1, None, 3])  # type: ignore[list-item]

    @strawberry.field
    async def later_numbers(self) -> list[str | None]:
        async def item(n: int) -> str:
            if n == 2:
                raise ValueError("two is refused")
            return str(n)

        return [item(1), item(2), "3"]  # type: ignore[list-item]

    @strawberry.field
    def strict_leaves(self) -> list[Leaf]:
        return self.leaves

    @strawberry.field
    async def maybe_leaves(self) -> list[Leaf | None] | None:
        return self.leaves


@strawberry.type
class ToyQuery:
    @strawberry.field
    def box(self, ns: list[int], first: int = 2) -> Box | None:
        return Box(leaves=[Leaf(n=n) for n in ns[:first]])

    @strawberry.field
    async def strict_box(self, ns: list[int]) -> Box:
        return Box(leaves=[Leaf(n=n) for n in ns])

    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError("database password is hunter2")

    @strawberry.field
    def paint(self, color: Color, times: int = 1) -> list[Color]:
        return [color] * times


STAFF_DOCUMENTS = {path.name: path.read_text() for path in sorted(STAFF_OPERATIONS_DIR.glob("*.graphql"))}
TOY = strawberry.Schema(query=ToyQuery)
TOY_MASKED = strawberry.Schema(query=ToyQuery, extensions=[MaskErrors])
TOY_DOCUMENTS = [
    # aliases, __typename, arguments with defaults, enums, named and inline fragments
    """query A { a: box(ns: [1, 2, 3]) { __typename leaves { ...L n2: n } } b: box(ns: [4], first: 1) {
       leaves { ... on Leaf { color } ... { name } } } }
       fragment L on Leaf { n name __typename }""",
    # a non-null field returning null: its nearest nullable parent (the list item? no: the list is non-null of
    # non-null, so the box) becomes null, with one error at the field's path
    "query B { box(ns: [12, 13, 14], first: 3) { leaves { n name } } other: box(ns: [1]) { leaves { n } } }",
    # a nullable list of nullable items: only the item goes null
    "query C { box(ns: [13, 1], first: 2) { maybeLeaves { name } } }",
    # a raising async resolver inside a list, nullable: null at its path, its siblings unharmed
    "query D { box(ns: [6, 7, 8], first: 3) { leaves { n later } } }",
    # non-null all the way up: data is null
    "query E { strictBox(ns: [13]) { strictLeaves { name } } }",
    "query F { boom box(ns: [1]) { leaves { n } } }",
    # two errors, the second under the position the first nulled: reported once
    "query G { box(ns: [13, 7], first: 2) { leaves { later name } } }",
    "query I { box(ns: [1]) { leaves { big small truthy numberText } } }",
    # directives, literal and from variables (the plan depends on their values)
    """query H($yes: Boolean!, $no: Boolean = false, $ns: [Int!]!, $first: Int) {
       box(ns: $ns, first: $first) { leaves { n @include(if: $yes) name @skip(if: $yes) ...F @include(if: $no)
       ... @skip(if: true) { color } } } }
       fragment F on Leaf { color later }""",
    # lists of leaves: an item refused by its scalar, awaitable items, a null item in a non-null list
    "query J { box(ns: [1]) { numbers laterNumbers } other: box(ns: [2]) { strictNumbers } }",
    # enum and Int variables, good and bad (TOY_ENUM_VARIABLES)
    "query K($color: Color!, $times: Int) { paint(color: $color, times: $times) literal: paint(color: BLUE) }",
]
TOY_ENUM_VARIABLES: list[dict[str, Any] | None] = [
    {"color": "RED", "times": 2},
    {"color": "GREEN"},  # bad: not a value of the enum
    {"color": "red"},  # bad: the Python value is not the GraphQL name
    {"color": "RED", "times": 2**31},  # bad: beyond 32 bits
    {"color": "RED", "times": "2"},  # bad: a string for an Int
    {"color": None},  # bad: null for a non-null
    {},  # bad: $color is required
]
TOY_VARIABLES: list[dict[str, Any] | None] = [
    None,
    {"yes": True, "ns": [1, 2]},
    {"yes": False, "no": True, "ns": [7, 13], "first": 2},
    {"yes": "no", "ns": [1]},  # bad: a string for a Boolean
    {"ns": [1]},  # bad: $yes is required
    {"yes": True, "ns": ["x"], "first": 1.5},  # bad: two errors
    {"yes": True, "ns": None},  # bad: null for a non-null list
    {"yes": True, "ns": [1], "unknown": 3},  # an unknown variable is ignored
]


async def _same(schema: strawberry.Schema, query: str, variables: dict[str, Any] | None) -> dict[str, Any]:
    compiled = process_result(await compile_operation(schema, query).execute(None, variables))
    reference = process_result(await schema.execute(query, variable_values=variables))
    assert orjson.dumps(compiled) == orjson.dumps(reference), (query, variables)
    return compiled


@pytest.mark.parametrize("schema", [TOY, TOY_MASKED], ids=["development", "masked"])
@pytest.mark.parametrize("query", TOY_DOCUMENTS)
async def test_the_compiled_plan_answers_exactly_as_strawberry(schema: strawberry.Schema, query: str) -> None:
    # Given a document, when it runs compiled and through strawberry with each set of variables, then the same JSON
    for variables in (TOY_ENUM_VARIABLES if "$color" in query else TOY_VARIABLES) if "$" in query else [None]:
        await _same(schema, query, variables)


async def test_null_bubbles_to_the_nearest_nullable_parent_with_the_error_path() -> None:
    # Given a non-null name that resolves to null in a non-null list of non-null leaves
    result = await _same(TOY, TOY_DOCUMENTS[1], None)
    # Then the box is null, its sibling box is not, and the one error has the field's path
    assert result == {
        "data": {"box": None, "other": {"leaves": [{"n": 1}]}},
        "errors": [
            {
                "message": "Cannot return null for non-nullable field Leaf.name.",
                "locations": [{"line": 1, "column": 56}],
                "path": ["box", "leaves", 1, "name"],
            }
        ],
    }


async def test_errors_are_masked_as_the_schema_masks_them() -> None:
    result = await _same(TOY_MASKED, TOY_DOCUMENTS[5], None)
    assert result == {
        "data": None,
        "errors": [{"message": "Unexpected error.", "locations": [{"line": 1, "column": 11}], "path": ["boom"]}],
    }


async def test_an_out_of_range_int_and_an_unknown_enum_value_are_refused_as_strawberry_refuses_them() -> None:
    query = TOY_DOCUMENTS[-1]
    assert await _same(TOY, query, {"color": "GREEN"}) == {
        "data": None,
        "errors": [
            {
                "message": "Variable '$color' has invalid value: Value 'GREEN' does not exist in 'Color' enum."
                " Did you mean the enum value 'RED'?",
                "locations": [{"line": 1, "column": 9}],
            }
        ],
    }
    result = await _same(TOY, query, {"color": "RED", "times": 2**31})
    assert result["data"] is None
    assert [error["message"] for error in result["errors"]] == [
        "Variable '$times' has invalid value: Int cannot represent non 32-bit signed integer value: 2147483648"
    ]
    assert await _same(TOY, query, {"color": "RED", "times": 2}) == {
        "data": {"paint": ["RED", "RED"], "literal": ["BLUE"]}
    }


async def test_bad_variables_give_graphql_cores_errors_and_run_nothing() -> None:
    result = await _same(TOY, TOY_DOCUMENTS[8], {"yes": "no", "ns": [1]})
    assert result == {
        "data": None,
        "errors": [
            {
                "message": "Variable '$yes' has invalid value: Boolean cannot represent a non boolean value: 'no'",
                "locations": [{"line": 1, "column": 9}],
            }
        ],
    }


def test_what_the_plan_does_not_cover_is_not_compiled() -> None:
    # Mutations, introspection, documents that do not validate, several operations: strawberry runs them
    schema = build_member_schema(production=False)
    for query in [
        DOCUMENTS["OfferActivate.graphql"],
        "{ __schema { queryType { name } } }",
        "{ me { nosuch } }",
        "query A { program { name } } query B { program { currency } }",
        "subscription S { program { name } }",
        '{ node(id: "TWVtYmVyOjE=") { id } }',  # an abstract type (the Node interface)
    ]:
        with pytest.raises(Unsupported):
            compile_operation(schema, query)
    # and a production schema refuses what production refuses, e.g. introspection even inside a trusted-looking query
    with pytest.raises(Unsupported):
        compile_operation(build_member_schema(production=True), "{ program { name } }")


class Stamp(SchemaExtension):
    """Acts on the operation: codes every error and adds a result extension, as the project's own extensions do."""

    def on_operation(self) -> Iterator[None]:
        yield
        for error in getattr(self.execution_context.result, "errors", None) or ():
            error.extensions = {**(error.extensions or {}), "code": "STAMPED"}

    def get_results(self) -> dict[str, Any]:
        return {"stamped": True}


class Executed(SchemaExtension):
    """Acts on the execution step: says so in the result's extensions."""

    def on_execute(self) -> Iterator[None]:
        yield
        self.execution_context.extensions_results["executed"] = True


class AsyncHooks(SchemaExtension):
    """Hooks of the other shapes strawberry accepts: a plain function, an async generator, a coroutine function."""

    def on_operation(self) -> None:
        self.execution_context.extensions_results["function"] = True

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        self.execution_context.extensions_results["async generator"] = True

    async def get_results(self) -> dict[str, Any]:
        return {"coroutine results": True}


class AsyncOperation(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        yield


class AwaitedExecution(SchemaExtension):
    async def on_execute(self) -> None:
        self.execution_context.extensions_results["coroutine"] = True


class Middleware(SchemaExtension):
    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        return _next(root, info, *args, **kwargs)


async def test_the_schemas_operation_hooks_act_on_the_compiled_result_too() -> None:
    schema = strawberry.Schema(query=ToyQuery, extensions=[Stamp, Executed, MaskErrors])
    for query in TOY_DOCUMENTS:
        result = await _same(schema, query, {"yes": True, "ns": [13, 7], "color": "RED"})
        assert result["extensions"] == {"stamped": True, "executed": True}


class CountedValidation(SchemaExtension):
    """Validates only: built for each validation, so once per trusted document, not per request."""

    built = 0

    def __init__(self) -> None:
        CountedValidation.built += 1

    def on_validate(self) -> Iterator[None]:
        yield


async def test_a_compiled_request_builds_only_the_extensions_that_act_on_it() -> None:
    # Given a schema with an extension that only validates and one that acts on the operation
    schema = strawberry.Schema(query=ToyQuery, extensions=[CountedValidation, Stamp])
    operation = compile_operation(schema, TOY_DOCUMENTS[0])
    built = CountedValidation.built
    # When the plan runs twice, then the validating extension was not built again, and the other acted each time
    for _ in range(2):
        assert (await operation.execute(None, None)).extensions == {"stamped": True}
    assert CountedValidation.built == built


async def test_hooks_of_every_shape_act_on_the_compiled_result_as_on_strawberrys() -> None:
    schema = strawberry.Schema(query=ToyQuery, extensions=[AsyncHooks, AwaitedExecution, Stamp])
    for query in TOY_DOCUMENTS:
        result = await _same(schema, query, {"yes": True, "ns": [1], "color": "RED"})
        assert result["extensions"] == {
            "coroutine results": True,
            "stamped": True,
            "function": True,
            "coroutine": True,
            "async generator": True,
        }
    # An async operation hook cannot run around the synchronous validation at start-up: strawberry runs that schema
    with pytest.raises(Unsupported, match="failed to complete synchronously"):
        compile_operation(strawberry.Schema(query=ToyQuery, extensions=[AsyncOperation]), TOY_DOCUMENTS[0])


def test_an_extension_that_wraps_resolvers_turns_compilation_off() -> None:
    compiled = CompiledDocuments(strawberry.Schema(query=ToyQuery, extensions=[Middleware]), OPERATIONS_DIR)
    assert compiled.operations == {}
    assert all("resolve hook" in reason for reason in compiled.not_compiled.values())


# --- The member schema ---

EXTRA_HOME = """
query HomeVariant($withTier: Boolean!, $page: Int = 2) {
  __typename
  me {
    __typename
    ident: id
    ...Names
    tier @include(if: $withTier) { current { name __typename } progress }
    points { ... on Points { available } }
    activity(first: $page) { edges { node { ...Entry } } pageInfo { hasNextPage } }
    again: activity(first: 1) { edges { cursor } }
  }
  program { name tiers { name } }
}
fragment Names on Member { displayName memberNumber }
fragment Entry on ActivityEntry { id kind points occurredAt }
"""


async def test_documents_the_app_does_not_send_compile_to_the_same_answers(
    anna: Member, clock: FrozenClock, program: Any
) -> None:
    history = History(anna, clock)
    for index in range(5):
        await history.apply("buy", 50 + index)
    for production in (False, True):
        schema = build_member_schema(production=production)
        if production:  # production refuses documents outside the trusted set: nothing to compile
            with pytest.raises(Unsupported):
                compile_operation(schema, EXTRA_HOME)
            continue
        operation = compile_operation(schema, EXTRA_HOME)
        for variables in [{"withTier": True}, {"withTier": False, "page": 3}, {"page": 1}, {"withTier": 1}]:
            for member_id in (anna.id, None):
                compiled = orjson.dumps(process_result(await operation.execute(_context(member_id, clock), variables)))
                reference = orjson.dumps(
                    process_result(
                        await schema.execute(EXTRA_HOME, variables, context_value=_context(member_id, clock))
                    )
                )
                assert compiled == reference, (variables, member_id)


# --- Through the endpoint ---


@pytest.fixture
def used_plans(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The names of the compiled operations the endpoint ran."""
    used: list[str | None] = []
    original = documents.CompiledOperation.execute

    async def spy(self: documents.CompiledOperation, context: Any, variables: Any, *args: Any) -> Any:
        used.append(self.name)
        return await original(self, context, variables, *args)

    monkeypatch.setattr(documents.CompiledOperation, "execute", spy)
    return used


async def test_the_endpoint_runs_the_plan_of_a_trusted_query_and_strawberry_for_the_rest(
    anna: Member, as_member: Any, used_plans: list[str | None]
) -> None:
    client: GraphQLClient = as_member(anna)
    home = await client.execute(HOME_QUERY)
    other = await client.execute("{ me { displayName } }")  # not a trusted document: strawberry (development)
    assert home["data"]["me"]["displayName"] == "Anna"
    assert other == {"data": {"me": {"displayName": "Anna"}}}
    assert used_plans == ["Home"]
    # A mutation, and a trusted query named otherwise than its operation, run through strawberry too
    renamed = await client.http.post(
        "/graphql",
        json={"query": HOME_QUERY, "operationName": "Other"},
        headers={"authorization": f"Bearer {client.token}"},
    )
    assert renamed.status_code == 400
    assert "Unknown operation named" in renamed.text
    assert used_plans == ["Home"]


async def _responses(
    settings: Settings, token: str, requests: list[dict[str, Any]], path: str = "/graphql"
) -> list[tuple[int, bytes]]:
    transport = httpx.ASGITransport(app=create_app(settings))
    headers = {"x-api-key": token} if path == "/staff/graphql" else {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answers = []
        for body in requests:
            response = await http.post(path, json=body, headers=headers)
            answers.append((response.status_code, response.content))
        return answers


async def test_the_endpoint_answers_the_same_with_compiled_execution_off(
    anna: Member, settings: Settings, tokens: Any, used_plans: list[str | None]
) -> None:
    # Given requests the app sends, with bad variables too, and documents that are not trusted
    token = tokens.issue(str(anna.id), MEMBER_AUDIENCE).token
    vouchers = DOCUMENTS["Vouchers.graphql"]
    requests: list[dict[str, Any]] = [
        {"query": HOME_QUERY},
        {"query": vouchers, "variables": {"status": "BOGUS"}},
        {"query": vouchers, "variables": {"status": 1, "after": 2}},
        {"query": vouchers, "variables": {"after": "not a cursor"}},
        {"query": vouchers, "variables": [1]},
        {"query": DOCUMENTS["Rewards.graphql"], "variables": {"after": None}},
        {"query": "{ me { id } }"},
        # a mutation (refused by its rules: it writes nothing) and an abstract type: through strawberry on both
        {"query": DOCUMENTS["OfferActivate.graphql"], "variables": {"offerId": "T2ZmZXI6OTk5"}},
        {"query": '{ node(id: "TWVtYmVyOjE=") { id } }'},
    ]
    # When they are sent with compiled execution on and off, then the answers are the same bytes
    compiled = await _responses(settings, token, requests)
    assert used_plans == ["Home", "Vouchers", "Vouchers", "Vouchers", "Rewards"]
    reference = await _responses(settings.model_copy(update={"compiled_execution": False}), token, requests)
    assert used_plans == ["Home", "Vouchers", "Vouchers", "Vouchers", "Rewards"]  # none more: all via strawberry
    assert compiled == reference
    assert b"BOGUS" in compiled[1][1]


async def test_the_staff_endpoint_runs_the_tills_plans_and_strawberry_for_the_rest(
    anna: Member, settings: Settings, used_plans: list[str | None]
) -> None:
    # Given an integration's key, and the till's reference lookup with good and bad variables, a lookup the till
    # does not send (one byte more than the reference: a trailing space) and a mutation
    _, key = await create_api_key("POS store 1", "cashier", "S1")
    requests: list[dict[str, Any]] = [
        {"query": LOOKUP_QUERY, "variables": {"query": anna.member_number}, "operationName": "Lookup"},
        {"query": LOOKUP_QUERY, "variables": {"query": 3}},
        {"query": LOOKUP_QUERY + " ", "variables": {"query": anna.member_number}},
        {"query": "{ staffMe { name } }"},
        {"query": STAFF_DOCUMENTS["StaffMe.graphql"]},
    ]
    # When they are sent with compiled execution on and off, then only the reference operations ran as plans,
    # and the answers are the same bytes
    compiled = await _responses(settings, key, requests, "/staff/graphql")
    assert used_plans == ["Lookup", "Lookup", "StaffMe"]
    reference = await _responses(
        settings.model_copy(update={"compiled_execution": False}), key, requests, "/staff/graphql"
    )
    assert used_plans == ["Lookup", "Lookup", "StaffMe"]
    assert compiled == reference
    assert compiled[0][0] == 200
    assert orjson.loads(compiled[0][1])["data"]["memberLookup"]["memberNumber"] == anna.member_number
    assert compiled[2] == compiled[0]


async def test_production_refuses_an_untrusted_document_before_any_plan(
    anna: Member,
    tmp_path: Path,
    db: str,
    tokens: Any,
    used_plans: list[str | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = app_settings(db, tmp_path, Environment.PRODUCTION)
    token = tokens.issue(str(anna.id), MEMBER_AUDIENCE).token
    untrusted = HOME_QUERY.replace("displayName", "displayName email")
    one_byte_more = HOME_QUERY + " "  # the same operation, spelt otherwise: not the trusted text
    [(status, body), (spaced_status, spaced), (home_status, home)] = await _responses(
        settings, token, [{"query": untrusted}, {"query": one_byte_more}, {"query": HOME_QUERY}]
    )
    assert status == spaced_status == home_status == 200
    assert b"UNTRUSTED_DOCUMENT" in body
    assert b"UNTRUSTED_DOCUMENT" in spaced
    assert b'"displayName"' in home
    assert b"errors" not in home
    assert used_plans == ["Home"]


async def test_a_document_one_byte_off_the_trusted_text_runs_through_strawberry(
    anna: Member, as_member: Any, used_plans: list[str | None]
) -> None:
    # Given (outside production) Home's text with one byte more: when both are sent, then only the trusted text ran
    # its plan, and the answers are the same
    client: GraphQLClient = as_member(anna)
    assert await client.execute(HOME_QUERY + " ") == await client.execute(HOME_QUERY)
    assert used_plans == ["Home"]


# The statements each compiled query costs, for a member with some history: the same as strawberry's (same
# loaders), and pinned so that a change to a plan or a loader that adds a query is noticed.
# (Program: none, the program is cached. Home: the member with their qualifying value, points expiring soon, the
# activity page. Vouchers: the member, the page, the rewards with the member's voucher counts. Wallet and
# GoogleWalletLink: the member. Referral: the member, its code, the one aggregate of its referrals.)
BUDGETS = {
    "ActivityPage": 2,
    "Cashback": 2,
    "Consents": 2,
    "Inbox": 3,
    "GoogleWalletLink": 1,
    "Home": 3,
    "Membership": 2,
    "Offers": 2,
    "Program": 0,
    "Referral": 3,
    "Rewards": 3,
    "Vouchers": 3,
    "Wallet": 1,
}


@pytest.mark.parametrize("name", QUERIES)
async def test_each_compiled_query_costs_what_strawberry_does(
    name: str, anna: Member, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    history = History(anna, clock)
    text = DOCUMENTS[name]
    counts = []
    steps_of_both = (
        ["buy", "big_buy", "reward", "reward", "offer", "adjust", "reward", "message", "message"],
        ["buy", "reward", "offer", "message", "message", "read_message"] * 8,
    )
    for steps in steps_of_both:
        # Given a member with purchases, vouchers and an offer, then with four times as many (settled, caches warm:
        # each screen loaded once)
        for step in steps:
            await history.apply(step, 120)
        for production in (False, True):
            await _both(production, text, {}, anna.id, clock)
            operation = COMPILED[production].get(text, None, {})
            assert operation is not None
            # When the query runs compiled, then through strawberry
            sql_counter.statements.clear()
            await operation.execute(_context(anna.id, clock), {})
            compiled = list(sql_counter.statements)
            sql_counter.statements.clear()
            await SCHEMAS[production].execute(text, {}, context_value=_context(anna.id, clock))
            # Then both send the same statements
            assert compiled == sql_counter.statements
            counts.append(len(compiled))
    # as many as its budget, however long the history
    assert counts == [BUDGETS[name.removesuffix(".graphql")]] * 4
