"""The HTTP edge of both GraphQL endpoints: malformed bodies are 400s, oversized ones 413s, trusted documents are
checked by hash before anything else, validation cost is bounded, and production names no schema in its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from graphql.language.parser import Parser
from graphql.validation import ValidationContext

from api.app import create_app
from api.settings import Environment, Settings
from loyalty.models import Program
from schema.trusted_documents import OPERATIONS_DIR
from tests.conftest import app_settings

ENDPOINTS = ["/graphql", "/staff/graphql"]
JSON = {"content-type": "application/json"}


def refusal(message: str, code: str = "BAD_REQUEST") -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: the `db` fixture holds the connection
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class GraphQLWork:
    parsed: int = 0
    validated: int = 0

    def reset(self) -> None:
        """Count from here: an app's start-up parses and validates the trusted queries it compiles, once."""
        self.parsed = self.validated = 0


@pytest.fixture
def graphql_work(monkeypatch: pytest.MonkeyPatch) -> GraphQLWork:
    """How many documents graphql-core parses and validates (its classes, whoever imported the functions): the
    refusals below are proved cheap by never reaching that work, not by a clock."""
    work = GraphQLWork()
    parse_document, init_context = Parser.parse_document, ValidationContext.__init__

    def counting_parse(self: Parser) -> Any:
        work.parsed += 1
        return parse_document(self)

    def counting_init(self: ValidationContext, *args: Any, **kwargs: Any) -> None:
        work.validated += 1
        init_context(self, *args, **kwargs)

    monkeypatch.setattr(Parser, "parse_document", counting_parse)
    monkeypatch.setattr(ValidationContext, "__init__", counting_init)
    return work


@pytest.fixture
async def http(db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(app_settings(db, tmp_path)):
        yield client


@pytest.fixture
async def production(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    async for client in _client(app_settings(db, tmp_path, Environment.PRODUCTION)):
        yield client


# --- malformed bodies -----------------------------------------------------------------------------------------------

MALFORMED = {
    "null": (b"null", "the request body must be a JSON object with a `query` string"),
    "a number": (b"5", "the request body must be a JSON object with a `query` string"),
    "a string": (b'"x"', "the request body must be a JSON object with a `query` string"),
    "a batch": (b"[]", "batched requests are not supported: send one JSON object per request"),
    "invalid UTF-8": (
        b'{"query": "{ program { name } }\xff"}',
        "the request body is not valid JSON: str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)",
    ),
    "invalid JSON": (
        b"{not json",
        "the request body is not valid JSON: unexpected character, expected a string key: line 1 column 2 (char 1)",
    ),
    "JSON nested 100,000 deep": (
        b"[" * 100_000 + b"]" * 100_000,
        "the request body is not valid JSON: depth limit exceeded: line 1 column 1026 (char 1025)",
    ),
    "NaN": (b'{"query": "{ a }", "variables": {"x": NaN}}', None),
    "a lone surrogate": (
        b'{"query": "{ a }", "variables": {"x": "\\ud800"}}',
        "the request body is not valid JSON: no low surrogate in string: line 1 column 40 (char 39)",
    ),
    "no query": (b"{}", "the request body has no `query`"),
    "a null query": (b'{"query": null}', "the request body has no `query`"),
    "a query that is not a string": (b'{"query": 42}', "`query` must be a string"),
    "variables that are not an object": (
        b'{"query": "{ a }", "variables": [1]}',
        "`variables` must be an object or null",
    ),
    "an operationName that is not a string": (
        b'{"query": "{ a }", "operationName": 5}',
        "`operationName` must be a string or null",
    ),
    "extensions that are not an object": (
        b'{"query": "{ a }", "extensions": "x"}',
        "`extensions` must be an object or null",
    ),
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", MALFORMED, ids=str)
async def test_a_malformed_body_is_a_400_with_a_clear_message(
    http: httpx.AsyncClient, program: Program, path: str, case: str
) -> None:
    body, message = MALFORMED[case]

    response = await http.post(path, content=body, headers=JSON)

    assert response.status_code == 400
    if message is None:  # orjson's own wording; what matters is that it is a coded 400 about the JSON
        assert response.json()["errors"][0]["message"].startswith("the request body is not valid JSON: ")
        assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
    else:
        assert response.json() == refusal(message)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
async def test_another_content_type_than_json_is_a_415(
    http: httpx.AsyncClient, program: Program, path: str, content_type: str
) -> None:
    response = await http.post(path, content=b'{"query": "{ a }"}', headers={"content-type": content_type})

    assert response.status_code == 415
    assert response.json() == refusal("send the request as `Content-Type: application/json`", "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_query_nested_50000_deep_is_a_400_that_costs_little(
    http: httpx.AsyncClient, program: Program, path: str
) -> None:
    deep = "{a" * 50_000 + "}" * 50_000

    response = await http.post(path, json={"query": deep})

    assert response.status_code == 400
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Syntax Error: Document is nested too deeply. Parsing aborted.",
                "locations": [{"line": 1, "column": 401}],
                "extensions": {"code": "GRAPHQL_PARSE_FAILED"},
            }
        ],
    }


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_syntax_error_is_a_400(http: httpx.AsyncClient, program: Program, path: str) -> None:
    response = await http.post(path, json={"query": "{ program { name }"})

    assert response.status_code == 400
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Syntax Error: Expected Name, found <EOF>.",
                "locations": [{"line": 1, "column": 19}],
                "extensions": {"code": "GRAPHQL_PARSE_FAILED"},
            }
        ],
    }


# --- the body limit -------------------------------------------------------------------------------------------------


def test_the_body_limits_default_to_256_kb_for_members_and_1_mb_for_staff() -> None:
    settings = Settings()

    assert (settings.graphql_max_body_bytes, settings.staff_graphql_max_body_bytes) == (256 * 1024, 1024 * 1024)


@pytest.fixture
async def small_limits(db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = app_settings(db, tmp_path).model_copy(
        update={"graphql_max_body_bytes": 1024, "staff_graphql_max_body_bytes": 2048}
    )
    async for client in _client(settings):
        yield client


def _body_of(size: int) -> bytes:
    """A valid request of exactly `size` bytes (the query padded with spaces)."""
    start, end = b'{"query": "{ __typename }', b'"}'
    return start + b" " * (size - len(start) - len(end)) + end


@pytest.mark.parametrize(("path", "limit"), [("/graphql", 1024), ("/staff/graphql", 2048)])
async def test_a_body_over_the_limit_is_a_413_and_one_at_the_limit_is_served(
    small_limits: httpx.AsyncClient, program: Program, path: str, limit: int
) -> None:
    at_limit = await small_limits.post(path, content=_body_of(limit), headers=JSON)
    over = await small_limits.post(path, content=_body_of(limit + 1), headers=JSON)

    assert (at_limit.status_code, at_limit.json()) == (200, {"data": {"__typename": "Query"}})
    assert over.status_code == 413
    assert over.json() == refusal(f"the request body is larger than {limit} bytes", "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("path", "limit"), [("/graphql", 1024), ("/staff/graphql", 2048)])
async def test_a_chunked_body_without_content_length_is_cut_off_at_the_limit(
    small_limits: httpx.AsyncClient, program: Program, path: str, limit: int
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }'
        for _ in range(1000):  # 1 MB if it were all read
            yield b" " * 1000
        yield b'"}'

    response = await small_limits.post(path, content=chunks(), headers=JSON)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == refusal(f"the request body is larger than {limit} bytes", "PAYLOAD_TOO_LARGE")


# --- trusted documents first ----------------------------------------------------------------------------------------

UNTRUSTED = {
    "data": None,
    "errors": [
        {"message": "only the app's trusted documents are accepted here", "extensions": {"code": "UNTRUSTED_DOCUMENT"}}
    ],
}


async def test_production_runs_a_trusted_document_sent_as_its_file_holds_it(
    production: httpx.AsyncClient, program: Program
) -> None:
    text = (OPERATIONS_DIR / "Program.graphql").read_text()

    response = await production.post("/graphql", json={"query": text})

    assert response.status_code == 200
    assert response.json()["data"]["program"]["name"] == "Test Club"


async def test_production_refuses_a_reformatted_trusted_document(
    production: httpx.AsyncClient, program: Program
) -> None:
    text = (OPERATIONS_DIR / "Program.graphql").read_text()

    response = await production.post("/graphql", json={"query": text + "\n"})

    assert response.json() == UNTRUSTED


@pytest.mark.parametrize(
    "query",
    [
        "{ program { name }",  # does not parse: refused as untrusted, not as a syntax error
        "{ " + "program { name } " * 450 + "}",  # 8 KB that costs a second to validate
        "{ " + "a " * 100_000 + "}",  # far over the token limit
        "{a" * 50_000 + "}" * 50_000,  # nested 50,000 deep
        "{ __schema { types { name } } }",  # introspection
    ],
    ids=["syntax error", "8 KB of repeated fields", "100,000 tokens", "50,000 deep", "introspection"],
)
async def test_production_refuses_an_untrusted_document_by_hash_before_parsing_it(
    production: httpx.AsyncClient, program: Program, query: str, graphql_work: GraphQLWork
) -> None:
    graphql_work.reset()
    response = await production.post("/graphql", json={"query": query})

    assert response.status_code == 200
    assert response.json() == UNTRUSTED
    # parsing and validating the 8 KB document alone took over a second: neither runs
    assert graphql_work == GraphQLWork(parsed=0, validated=0)


# --- validation cost on the staff endpoint --------------------------------------------------------------------------


def _fragment_explosion(width: int, levels: int) -> str:
    """Each fragment spreads the one below it `width` times: width**levels fields in a few hundred bytes."""
    fragments = ["fragment F0 on Query { staffMe { name } }"]
    fragments += [f"fragment F{i} on Query {{ " + f"...F{i - 1} " * width + "}" for i in range(1, levels)]
    return f"{{ ...F{levels - 1} }}\n" + "\n".join(fragments)


TOO_COMPLEX = {
    "data": None,
    "errors": [
        {
            "message": "the document selects more than 300 fields (with its fragments expanded)",
            "extensions": {"code": "DOCUMENT_TOO_COMPLEX"},
        }
    ],
}


@pytest.mark.parametrize("environment", [Environment.TEST, Environment.PRODUCTION])
@pytest.mark.parametrize(
    "query",
    [
        _fragment_explosion(width=8, levels=30),  # 8**29 fields; validating it never finished
        "{ " + "staffMe { name } " * 450 + "}",  # repeated fields: a second of overlap checks
        "{ " + " ".join(f"a{i}: staffMe {{ name }}" for i in range(301)) + " }",
        "{ staffMe { " + "name " * 1900 + "} }",
        "{ " + " ".join(f"x{i}" for i in range(1900)) + " }",  # unknown fields: each a suggestion search
    ],
    ids=["fragment explosion", "repeated fields", "many aliases", "many fields", "many unknown fields"],
)
async def test_a_document_selecting_too_many_fields_is_refused_before_validation(
    db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    program: Program,
    environment: Environment,
    query: str,
    graphql_work: GraphQLWork,
) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = app_settings(db, tmp_path, environment).model_copy(update={"graphql_max_aliases": 1000})
    async for http in _client(settings):
        graphql_work.reset()
        response = await http.post("/staff/graphql", json={"query": query})

    assert response.status_code == 200
    assert response.json() == TOO_COMPLEX
    # the fragment explosion never finished validating, the repeated fields took a second: validation never starts
    assert graphql_work.validated == 0


async def test_the_field_limit_counts_fragments_expanded_and_is_configurable(
    db: str, tmp_path: Path, program: Program
) -> None:
    # Given a limit of 8 fields and a fragment of 2 fields spread 4 times (8 fields) or 5 times (10)
    settings = app_settings(db, tmp_path).model_copy(update={"graphql_max_fields": 8})
    fragment = "fragment Me on Query { staffMe { name } }"
    at_limit = "{ ...Me ...Me ...Me ...Me } " + fragment
    over = "{ ...Me ...Me ...Me ...Me ...Me } " + fragment
    async for http in _client(settings):
        # When both are sent
        at_limit_response = await http.post("/staff/graphql", json={"query": at_limit})
        over_response = await http.post("/staff/graphql", json={"query": over})

    # Then only the second is refused as too complex (the first reaches the resolver: no credentials)
    assert at_limit_response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert over_response.json()["errors"] == [
        {
            "message": "the document selects more than 8 fields (with its fragments expanded)",
            "extensions": {"code": "DOCUMENT_TOO_COMPLEX"},
        }
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ ...A } fragment A on Query { ...B staffMe { name } } fragment B on Query { ...A }",
            "Cannot spread fragment 'A' within itself via 'B'.",
        ),
        ("{ ...A } fragment A on Query { ...A }", "Cannot spread fragment 'A' within itself."),
    ],
    ids=["through another fragment", "directly"],
)
async def test_a_fragment_cycle_is_a_coded_validation_error(
    http: httpx.AsyncClient, program: Program, query: str, message: str
) -> None:
    response = await http.post("/staff/graphql", json={"query": query})

    assert response.status_code == 200
    assert response.json()["data"] is None
    assert [(e["message"], e["extensions"]) for e in response.json()["errors"]] == [
        (message, {"code": "GRAPHQL_VALIDATION_FAILED"})
    ]


async def test_too_many_aliases_is_a_coded_validation_error(http: httpx.AsyncClient, program: Program) -> None:
    aliases = "{ " + " ".join(f"a{i}: staffMe {{ name }}" for i in range(31)) + " }"

    response = await http.post("/staff/graphql", json={"query": aliases})

    assert response.json() == {
        "data": None,
        "errors": [{"message": "31 aliases found. Allowed: 30", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}],
    }


# --- no schema names in production errors ---------------------------------------------------------------------------

STAFF_SUGGESTIONS = {
    "field": ("{ staffM { name } }", None, "Cannot query field 'staffM' on type 'Query'."),
    "argument": ('{ memberLookup(quer: "x") { id } }', None, "Unknown argument 'quer' on field 'Query.memberLookup'."),
    "type": ("query($q: Strin!) { memberLookup(query: $q) { id } }", {"q": "x"}, "Unknown type 'Strin'."),
    "enum value in the document": (
        'mutation { pointsAdjust(input: {member: "x", amount: 1, reasonCode: GODWILL, idempotencyKey: "k"}) '
        "{ userErrors { code } } }",
        None,
        "Value 'GODWILL' does not exist in 'AdjustmentReason' enum.",
    ),
    "input field in the document": (
        'mutation { pointsAdjust(input: {member: "x", amount: 1, reasonCod: GOODWILL, idempotencyKey: "k"}) '
        "{ userErrors { code } } }",
        None,
        "Expected value of type 'PointsAdjustInput' not to include unknown field 'reasonCod'. "
        'Found: { member: "x", amount: 1, reasonCod: GOODWILL, idempotencyKey: "k" }.',
    ),
    "enum value in variables": (
        'mutation($r: AdjustmentReason!) { pointsAdjust(input: {member: "x", amount: 1, reasonCode: $r, '
        'idempotencyKey: "k"}) { userErrors { code } } }',
        {"r": "GODWILL"},
        "Variable '$r' has invalid value: Value 'GODWILL' does not exist in 'AdjustmentReason' enum.",
    ),
    "input field in variables": (
        "mutation($i: PointsAdjustInput!) { pointsAdjust(input: $i) { userErrors { code } } }",
        {"i": {"member": "x", "amount": 1, "reasonCode": "GOODWILL", "idempotencyKey": "k", "nte": "x"}},
        "Variable '$i' has invalid value: Expected value of type 'PointsAdjustInput' not to include unknown field "
        "'nte'. Found: {'member': 'x', 'amount': 1, 'reasonCode': 'GOODWILL', 'idempotencyKey': 'k', 'nte': 'x'}.",
    ),
}


@pytest.mark.parametrize("case", STAFF_SUGGESTIONS, ids=str)
async def test_production_suggests_no_schema_names_on_the_staff_endpoint(
    production: httpx.AsyncClient, program: Program, case: str
) -> None:
    query, variables, message = STAFF_SUGGESTIONS[case]

    response = await production.post("/staff/graphql", json={"query": query, "variables": variables})

    messages = [e["message"] for e in response.json()["errors"]]
    assert message in messages
    assert not any("Did you mean" in m for m in messages), messages


@pytest.mark.parametrize("case", ["field", "argument", "type", "enum value in the document", "enum value in variables"])
async def test_development_still_suggests(http: httpx.AsyncClient, program: Program, case: str) -> None:
    query, variables, _ = STAFF_SUGGESTIONS[case]

    response = await http.post("/staff/graphql", json={"query": query, "variables": variables})

    assert any("Did you mean" in e["message"] for e in response.json()["errors"])


MEMBER_SUGGESTIONS = {
    "input field in variables": (
        {"input": {"displayNam": "Anna"}},
        "Variable '$input' has invalid value: Expected value of type 'ProfileUpdateInput' not to include unknown "
        "field 'displayNam'. Found: {'displayNam': 'Anna'}.",
    ),
    "two fields in variables": (
        {"input": {"displayName": "Anna", "marketingConsnt": True}},
        "Variable '$input' has invalid value: Expected value of type 'ProfileUpdateInput' not to include unknown "
        "field 'marketingConsnt'. Found: {'displayName': 'Anna', 'marketingConsnt': True}.",
    ),
}


@pytest.mark.parametrize("case", MEMBER_SUGGESTIONS, ids=str)
async def test_production_suggests_no_schema_names_on_the_member_endpoint(
    production: httpx.AsyncClient, program: Program, case: str
) -> None:
    # The member endpoint runs only trusted documents: what a stranger controls there is the variables.
    variables, message = MEMBER_SUGGESTIONS[case]
    text = (OPERATIONS_DIR / "ProfileUpdate.graphql").read_text()

    response = await production.post("/graphql", json={"query": text, "variables": variables})

    messages = [e["message"] for e in response.json()["errors"]]
    assert message in messages
    assert not any("Did you mean" in m for m in messages), messages


async def test_production_refuses_introspection_on_the_staff_endpoint(
    production: httpx.AsyncClient, program: Program
) -> None:
    response = await production.post("/staff/graphql", json={"query": "{ __schema { types { name } } }"})

    assert response.json()["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in response.json()["errors"]] == [
        (
            f"GraphQL introspection has been disabled, but the requested query contained the field '{field}'.",
            "GRAPHQL_VALIDATION_FAILED",
        )
        for field in ("__schema", "types")
    ]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_full_introspection_fits_the_field_limit_outside_production(
    http: httpx.AsyncClient, program: Program, path: str
) -> None:
    # GraphiQL's schema query: its nested type references expand to about 230 fields
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )

    response = await http.post(path, json={"query": query})

    assert response.status_code == 200
    assert "errors" not in response.json()
    assert response.json()["data"]["__schema"]["queryType"] == {"name": "Query", "kind": "OBJECT"}


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_bad_token_is_a_401_with_a_coded_json_body(
    http: httpx.AsyncClient, program: Program, path: str
) -> None:
    response = await http.post(path, json={"query": "{ __typename }"}, headers={"authorization": "Bearer not.a.jwt"})

    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert list(response.json()) == ["errors"]


async def test_production_shows_a_variable_of_the_wrong_type_coded_rather_than_masked(
    production: httpx.AsyncClient, program: Program
) -> None:
    # graphql-core refuses it before any resolver runs: safe to show, and the client needs to know what was wrong
    response = await production.post(
        "/staff/graphql",
        json={"query": "query($q: String!) { memberLookup(query: $q) { id } }", "variables": {"q": 5}},
    )

    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Variable '$q' has invalid value: String cannot represent a non string value: 5",
                "locations": [{"line": 1, "column": 7}],
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ],
    }
