"""Every operation of both schemas, driven with hostile input over HTTP: no unhandled error, and a refusal writes
nothing.

The operations are found by walking the schemas (every root field, and every nested field that takes arguments, with
a variable for each argument), so an operation added later is covered without touching this file. Hypothesis picks
an operation and a value for each variable: hostile strings (NUL, lone surrogates sent as JSON's `\\ud800` escape,
control characters, RTL overrides, emoji, huge), hostile ids and cursors (out of range, non-canonical, not base64,
another type's), numbers that fit no column, mixed with valid values so that the checks behind the first one run too.

The properties, per example:
- the endpoint answers 200, and every error is either a request error (validation, variable coercion: no `path`) or
  a coded one (`extensions.code`): an exception from a resolver would have a path and no code;
- if anything was refused (a top-level error or a userError), no table changed except the throttles (wrong voucher
  codes and sign-in failures are counted on purpose) and, for a replayed refresh token, the refresh tokens (its
  session is ended on purpose);
- every text stored, whatever the outcome, is clean (`loyalty.checks.is_clean_text`).

It runs on both engines; PostgreSQL is the one that matters (it refuses NUL in text and surrogates in UTF-8 where
SQLite stores them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tortoise import Tortoise, connections
from tortoise.transactions import in_transaction

from api.app import create_app
from api.auth.firebase import make_emulator_id_token
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Settings
from loyalty import vouchers
from loyalty.card import card_code
from loyalty.checks import is_clean_text
from loyalty.members import enroll_member
from loyalty.models import EngagementRule, LedgerEntry, Program, RefreshToken, Reward, RewardKind, ThrottleCounter
from loyalty.refresh_tokens import start_session
from loyalty.staff import create_staff
from schema.global_ids import ACTIVITY_ENTRY, MEMBER, OFFER, REWARD, VOUCHER
from schema.member_schema import build_member_schema
from schema.staff.schema import build_staff_schema
from schema.types.pagination import encode_cursor
from tests.conftest import START, app_settings
from tests.loyalty.ledger_helpers import give_available
from tests.loyalty.purchase_helpers import buy, line
from tests.loyalty.test_offers import new_offer

PASSWORD = "correct horse battery"
MAX_DEPTH = 4  # how deep nested fields with arguments are looked for (the schemas nest them at most 3 deep)
# Per schema: about 20 seconds each on PostgreSQL. Set KLUBB_HOSTILE_EXAMPLES higher for a longer hunt.
EXAMPLES = int(os.environ.get("KLUBB_HOSTILE_EXAMPLES", "120"))
NOT_WRITTEN_ON_PURPOSE = {ThrottleCounter._meta.db_table}
# Refusals that write on purpose: a replayed refresh token ends its session (the family is revoked).
WRITTEN_ON_REFUSAL = {"REFRESH_TOKEN_REUSED": {RefreshToken._meta.db_table}}

HOSTILE_TEXT = [
    "",
    " ",
    "\t",
    "\x00",
    "S1\x00",
    "\ud800",  # a lone surrogate: no UTF-8 encoding exists
    "a\udfffb",
    "\x1b[2J",
    "\x7f",
    "\u0085",  # NEL, a C1 control
    "line\nbreak",
    "\u202eevil",  # RIGHT-TO-LEFT OVERRIDE
    "\u200b",
    "\u2028",
    "\ufeffS1",
    "مرحبا",
    "👩\u200d👩\u200d👧",
    "\U0010ffff",
    "A" * 33,
    "A" * 65,
    "A" * 129,
    "A" * 255,
    "A" * 5000,
    "9" * 40,
    "-1",
    "0",
    "' OR 1=1 --",
    "%s%n{0}",
]
HOSTILE_INTS = [0, 1, -1, 2, 100, 2**31 - 1, -(2**31), 2**31, 2**53, 2**63, 10**25]
HOSTILE_DATETIMES = [
    START.isoformat(),
    (START - timedelta(hours=1)).isoformat(),
    (START + timedelta(days=1)).isoformat(),
    "2026-03-02T12:00:00",  # no timezone
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00+00:00",
    "2026-13-45T99:00:00Z",
    "garbage",
    "",
    "\x00",
]
HOSTILE_DATES = ["2000-01-01", "1800-01-01", "2999-01-01", "0001-01-01", "2000-02-30", "garbage", "\ud800"]


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text).decode()


def hostile_ids(type_name: str) -> list[str]:
    """Keys no row can have and strings that are no ids (the rules of `schema.global_ids`)."""
    keys = ["", "0", "01", "-1", "+1", " 1", "1 ", "1_0", "²", "\N{ARABIC-INDIC DIGIT ONE}", "1\x00"]
    keys += [str(2**31), "99999999999", str(2**63), str(10**25), "9" * 300]
    return [b64(f"{type_name}:{key}") for key in keys] + [
        b64("Program:1"),
        b64(f"{type_name}"),
        b64(b"\xff\xfe"),
        b64("Member:1\ud800"),
        "not base64!",
        "=",
        "A" * 10_000,
    ]


def hostile_cursors() -> list[str]:
    kinds = ["activity", "rewards", "offers", "vouchers", "x"]
    cursors = [encode_cursor(kind, key) for kind in kinds for key in (1, 2**31, 2**63, 10**25, -1)]
    cursors += [encode_cursor("activity", 1, 2), base64.urlsafe_b64encode(b"activity:").decode()]
    return [*cursors, base64.urlsafe_b64encode(b"activity:\xff").decode(), "%%%", "A" * 10_000]


@dataclass(frozen=True)
class Operation:
    """One GraphQL document that reaches a root field (and the nested fields with arguments below it)."""

    schema: str
    name: str
    kind: str  # query | mutation
    document: str
    variables: dict[str, GraphQLInputType]  # variable name -> its type
    arguments: dict[str, str]  # variable name -> `Type.field(argument)` / `Input.field`, to pick a value for


def _selection(type_: GraphQLNamedType, depth: int, variables: dict[str, Any], arguments: dict[str, str]) -> str:
    """`__typename`, user errors, and every field below `type_` that takes arguments (with a variable each)."""
    parts = ["__typename"]
    if not isinstance(type_, GraphQLObjectType) or depth >= MAX_DEPTH:
        return "{ __typename }"
    for name, field in type_.fields.items():
        if name == "userErrors":
            error_type = get_named_type(field.type)
            code = " code" if isinstance(error_type, GraphQLObjectType) and "code" in error_type.fields else ""
            parts.append(f"userErrors {{ __typename message field{code} }}")
            continue
        inner = _field(type_.name, name, field, depth + 1, variables, arguments)
        if inner is not None:
            parts.append(inner)
    return "{ " + " ".join(parts) + " }"


def _field(
    owner: str, name: str, field: GraphQLField, depth: int, variables: dict[str, Any], arguments: dict[str, str]
) -> str | None:
    """The field with its arguments and selection, or None when nothing below it takes arguments."""
    named = get_named_type(field.type)
    mark = len(variables)
    args = []
    for arg_name, arg in field.args.items():
        variable = f"v{len(variables)}"
        variables[variable] = arg.type
        arguments[variable] = f"{owner}.{name}({arg_name})"
        args.append(f"{arg_name}: ${variable}")
    selection = _selection(named, depth, variables, arguments) if isinstance(named, GraphQLObjectType) else ""
    has_nested_args = len(variables) > mark
    if not has_nested_args and "userErrors" not in selection and depth > 1:
        return None
    arg_text = f"({', '.join(args)})" if args else ""
    if not isinstance(named, GraphQLObjectType) and not isinstance(named, GraphQLScalarType | GraphQLEnumType):
        selection = "{ __typename }"  # an interface or union (`node`)
    return f"{name}{arg_text} {selection}".strip()


def operations(schema_name: str, schema: GraphQLSchema) -> list[Operation]:
    """Every root field of the schema as an operation with a variable for each argument, nested ones included."""
    found = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, field in root.fields.items():
            variables: dict[str, Any] = {}
            arguments: dict[str, str] = {}
            body = _field(root.name, name, field, 1, variables, arguments)
            assert body is not None
            definitions = ", ".join(f"${v}: {t}" for v, t in variables.items())
            document = f"{kind} Hostile{('(' + definitions + ')') if definitions else ''} {{ {body} }}"
            found.append(Operation(schema_name, name, kind, document, variables, arguments))
    return found


MEMBER_OPERATIONS = operations("member", build_member_schema(production=False)._schema)
STAFF_OPERATIONS = operations("staff", build_staff_schema(production=False)._schema)


HOSTILE_CHARS = [
    "\x00",
    "\ud800",
    "\udfff",
    "\x1b",
    "\x7f",
    "\u0085",
    "\n",
    "\u202e",
    "\u200b",
    "\u2028",
    "\ufeff",
    "\U0010ffff",
]
VALID_INTS = [1, 2, 5, 20, 100, 1000]


@dataclass
class Pools:
    """Valid values (of the seeded data) to mix with the hostile ones, so that checks behind the first run too.

    Each leaf of the variables is hostile one time in four: a value that fails GraphQL's own coercion (an Int beyond
    32 bits, an unknown enum value) refuses the whole operation, so if every leaf were hostile the resolvers behind
    them would rarely run.
    """

    strings: list[str]
    ids: list[str]

    def hostile_text(self) -> st.SearchStrategy[str]:
        valid, bad = st.sampled_from(self.strings), st.sampled_from(HOSTILE_CHARS)
        return st.one_of(
            st.sampled_from(HOSTILE_TEXT),
            st.builds(lambda a, b: a + b, valid, bad),  # a valid value spoilt at its end ...
            st.builds(lambda a, b: b + a, valid, bad),  # ... at its start
            st.builds(lambda a, b: a[:2] + b + a[2:], valid, bad),  # ... inside
            st.builds(lambda a, n: a * n, valid, st.sampled_from([10, 100, 1000])),  # too long
            st.text(st.one_of(bad, st.characters(exclude_categories=())), max_size=40),  # surrogates, controls
        )

    def hostile_id(self) -> st.SearchStrategy[str]:
        types = ["Member", "ActivityEntry", "Voucher", "Offer", "Reward"]
        return st.one_of(
            st.sampled_from([i for t in types for i in hostile_ids(t)]),
            st.sampled_from(hostile_cursors()),
            self.hostile_text(),
        )

    def value(self, type_: GraphQLInputType, label: str) -> st.SearchStrategy[Any]:
        if isinstance(type_, GraphQLNonNull):
            return self._value(type_.of_type, label)
        return st.one_of(st.none(), self._value(type_, label))

    def _value(self, type_: GraphQLInputType, label: str) -> st.SearchStrategy[Any]:
        if isinstance(type_, GraphQLList):
            return st.lists(self.value(type_.of_type, label), max_size=3)
        if isinstance(type_, GraphQLInputObjectType):
            fields = {n: self.value(f.type, f"{type_.name}.{n}") for n, f in type_.fields.items()}
            required = {n for n, f in type_.fields.items() if isinstance(f.type, GraphQLNonNull)}
            return st.fixed_dictionaries(
                {n: s for n, s in fields.items() if n in required},
                optional={n: s for n, s in fields.items() if n not in required},
            )
        valid, hostile = self._leaf(type_, label)
        return st.sampled_from([False, False, False, True]).flatmap(lambda bad: hostile if bad else valid)

    def _leaf(self, type_: GraphQLInputType, label: str) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
        """(valid, hostile) values of a scalar or enum."""
        if isinstance(type_, GraphQLEnumType):
            return st.sampled_from(list(type_.values)), st.sampled_from(["NOT_A_VALUE", "", "\x00"])
        assert isinstance(type_, GraphQLScalarType)
        leaves: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
            "String": (
                st.sampled_from(self.strings),
                st.one_of(self.hostile_text(), st.sampled_from(hostile_cursors())),
            ),
            "ID": (st.sampled_from(self.ids), self.hostile_id()),
            "Int": (st.sampled_from(VALID_INTS), st.sampled_from(HOSTILE_INTS)),
            "Boolean": (st.booleans(), st.sampled_from(["true", 1])),
            "DateTime": (st.just((START - timedelta(hours=1)).isoformat()), st.sampled_from(HOSTILE_DATETIMES)),
            "Date": (st.just("2000-01-01"), st.sampled_from(HOSTILE_DATES)),
        }
        # A new scalar needs its hostile values here: fail rather than leave it untested.
        assert type_.name in leaves, f"no hostile values for scalar {type_.name} ({label})"
        return leaves[type_.name]

    def variables(self, operation: Operation) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({v: self.value(t, operation.arguments[v]) for v, t in operation.variables.items()})


async def snapshot() -> dict[str, list[str]]:
    """Every row of every table (as sorted JSON text), but the throttles'."""
    conn = connections.get("default")
    tables = sorted(m._meta.db_table for m in Tortoise.apps["loyalty"].values())
    rows = {}
    for table in tables:
        if table in NOT_WRITTEN_ON_PURPOSE:
            continue
        found = await conn.execute_query_dict(f'SELECT * FROM "{table}"')
        rows[table] = sorted(json.dumps(row, default=str, sort_keys=True) for row in found)
    return rows


def unclean_texts(rows: dict[str, list[str]]) -> list[str]:
    def texts(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from texts(item)
        elif isinstance(value, list):
            for item in value:
                yield from texts(item)

    return [
        f"{table}: {row}"
        for table, found in rows.items()
        for row in found
        if not all(is_clean_text(t, multiline=True) for t in texts(json.loads(row)))
    ]


def refused(body: dict[str, Any]) -> bool:
    """The operation was refused: a request error, an error of the root field, or userErrors in its payload.

    An error further down (a bad cursor on the payload's `member { activity }`) comes after the root field's work
    and does not undo it."""
    if any(len(e.get("path", [])) <= 1 for e in body.get("errors", [])):
        return True
    payload = next(iter((body.get("data") or {}).values()), None)
    return isinstance(payload, dict) and bool(payload.get("userErrors"))


def user_error_codes(body: dict[str, Any]) -> set[str]:
    payload = next(iter((body.get("data") or {}).values()), None)
    return {e.get("code") for e in payload.get("userErrors") or []} if isinstance(payload, dict) else set()


class ErrorLog(logging.Handler):
    """Records logged at ERROR or above outside GraphQL's own error log (which lists every refused request)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("strawberry"):
            self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@dataclass
class World:
    http: httpx.AsyncClient
    headers: dict[str, dict[str, str]]  # schema -> auth headers
    pools: Pools


@pytest.fixture
async def world(db: str, tmp_path: Path, program: Program, fast_password_hashing: None) -> Any:
    # A member with points, a purchase, a reward, an offer, a voucher, an engagement rule, a refresh token; a
    # manager of every store signed in on the staff endpoint.
    settings: Settings = app_settings(db, tmp_path)
    anna, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")
    await give_available(anna.id, 1000)
    await buy(anna.id, "R1", [line("SKU1", 1000, category="food")])
    reward = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=10)
    offer = await new_offer()
    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, anna.id, reward=reward)
    await EngagementRule.create(event_type="review_written", points=25)
    refresh = await start_session(anna.id)
    await create_staff("mia@example.com", PASSWORD, "manager", [], "Mia")
    entry_ids = await LedgerEntry.filter(member_id=anna.id).values_list("id", flat=True)
    member_token = TokenService(settings).issue(str(anna.id), MEMBER_AUDIENCE).token
    firebase = make_emulator_id_token(settings.firebase_project_id, "uid-anna", "anna@example.com", "Anna")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        sign_in = await http.post(
            "/staff/graphql",
            json={
                "query": "mutation($e: String!, $p: String!) "
                "{ staffSessionCreate(input: {email: $e, password: $p}) { accessToken } }",
                "variables": {"e": "mia@example.com", "p": PASSWORD},
            },
        )
        staff_token = sign_in.json()["data"]["staffSessionCreate"]["accessToken"]
        card = card_code(anna, START, program.card_code_seconds).barcode_value
        strings = [
            "S1", "R1", "X1", "EUR", "SKU1", "food", "review_written", "key-1", "Europe/Stockholm", "Anna",
            anna.member_number, card, vouchers.display_code(voucher.code), voucher.code,
            "anna@example.com", "mia@example.com", PASSWORD, refresh, firebase,
        ]  # fmt: skip
        ids = [MEMBER.encode(anna.id), REWARD.encode(reward.id), OFFER.encode(offer.id), VOUCHER.encode(voucher.id)]
        ids += [ACTIVITY_ENTRY.encode(i) for i in entry_ids]
        yield World(
            http=http,
            headers={
                "member": {"authorization": f"Bearer {member_token}"},
                "staff": {"authorization": f"Bearer {staff_token}"},
            },
            pools=Pools(strings=strings, ids=ids),
        )


async def drive(world: World, ops: list[Operation], error_log: ErrorLog) -> None:
    loop = asyncio.get_running_loop()

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    async def attempt(operation: Operation, variables: dict[str, Any]) -> None:
        before = await snapshot()
        path = "/graphql" if operation.schema == "member" else "/staff/graphql"
        # Encoded by hand: json.dumps escapes a lone surrogate as `\ud800`, as any client must to send one.
        body = json.dumps({"query": operation.document, "variables": variables}).encode()
        response = await world.http.post(
            path, content=body, headers={**world.headers[operation.schema], "content-type": "application/json"}
        )
        after = await snapshot()
        context = f"{operation.schema} {operation.name} {variables!r}: {response.text[:2000]}"
        answer = response.json()
        if response.status_code == 400:  # the HTTP edge refuses a lone surrogate in JSON, coded
            assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_REQUEST"], context
        else:
            assert response.status_code == 200, context
        unhandled = [e for e in answer.get("errors", []) if "path" in e and "code" not in e.get("extensions", {})]
        assert unhandled == [], context
        assert error_log.records == [], context
        if refused(answer):
            allowed = {t for code in user_error_codes(answer) for t in WRITTEN_ON_REFUSAL.get(code, ())}
            changed = [t for t in before if before[t] != after[t] and t not in allowed]
            assert changed == [], context
        assert unclean_texts(after) == [], context

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        # Fixed examples in CI (a random run once failed on sessionCreate, not yet explained: see the report);
        # KLUBB_HOSTILE_RANDOM=1 explores.
        derandomize=not os.environ.get("KLUBB_HOSTILE_RANDOM"),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(ops), label="operation")
        variables = data.draw(world.pools.variables(operation), label="variables")
        run(attempt(operation, variables))

    await asyncio.to_thread(example)


def test_every_operation_is_found() -> None:
    # The walk finds every root field and the nested fields with arguments (a new one is covered automatically).
    assert sorted(op.name for op in MEMBER_OPERATIONS) == [
        "consentUpdate", "deviceRegister", "deviceUnregister", "inboxMarkRead", "me", "membershipCancel", "node",
        "offerActivate", "profileUpdate", "program", "pushOpened", "referralApply", "rewardRedeem", "rewards",
        "sessionCreate", "sessionRefresh", "voucherCancel",
    ]  # fmt: skip
    assert sorted(op.name for op in STAFF_OPERATIONS) == [
        "cashbackPayout", "cashbackSpend", "engagementRecord", "memberLookup", "membershipPaymentRecord",
        "offerRedeem", "pointsAdjust", "purchasePreview", "purchaseRecord", "purchaseRefund", "pushCampaign",
        "pushCampaignCancel", "pushCampaignCreate", "pushCampaignSchedule", "pushCampaignUpdate", "pushCampaigns",
        "referralReview", "referrals", "staffMe", "staffMembershipCancel", "staffSessionCreate", "voucherRedeem",
    ]  # fmt: skip
    me = next(op for op in MEMBER_OPERATIONS if op.name == "me")
    assert sorted(me.arguments.values()) == [
        "Cashback.activity(after)", "Cashback.activity(first)", "Member.activity(after)", "Member.activity(first)",
        "Member.inbox(after)", "Member.inbox(first)", "Member.offers(after)", "Member.offers(first)",
        "Member.vouchers(after)", "Member.vouchers(first)", "Member.vouchers(status)",
    ]  # fmt: skip


async def test_member_operations_survive_hostile_input(world: World, error_log: ErrorLog) -> None:
    await drive(world, MEMBER_OPERATIONS, error_log)


async def test_staff_operations_survive_hostile_input(world: World, error_log: ErrorLog) -> None:
    await drive(world, STAFF_OPERATIONS, error_log)
