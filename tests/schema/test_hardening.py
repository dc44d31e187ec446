"""Malformed requests get clear errors and never a 500; production mode hides the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry.extensions.validation_cache import _get_validate_cache

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, STAFF_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty.models import Member
from schema.trusted_documents import OPERATIONS_DIR
from tests.conftest import app_settings

PROGRAM_OPERATION = (OPERATIONS_DIR / "Program.graphql").read_text()


async def test_garbage_json_is_a_400(client: httpx.AsyncClient, program: Any) -> None:
    response = await client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert "JSON" in response.text


async def test_a_query_that_is_not_a_string_is_a_400(client: httpx.AsyncClient, program: Any) -> None:
    response = await client.post("/graphql", json={"query": 42})

    assert response.status_code == 400


async def test_a_malformed_bearer_token_is_a_401(client: httpx.AsyncClient, program: Any) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ program { name } }"}, headers={"authorization": "Bearer not.a.jwt"}
    )

    assert response.status_code == 401


async def test_a_staff_token_is_refused_on_the_member_endpoint(
    client: httpx.AsyncClient, tokens: TokenService, anna: Member
) -> None:
    staff_token = tokens.issue(str(anna.id), STAFF_AUDIENCE).token

    response = await client.post(
        "/graphql", json={"query": "{ me { memberNumber } }"}, headers={"authorization": f"Bearer {staff_token}"}
    )

    assert response.status_code == 401


async def test_queries_deeper_than_the_limit_are_refused(
    settings: Settings, tokens: TokenService, anna: Member
) -> None:
    # Given a depth limit of 2 (the root field counts 0; the default, 12, is deeper than the member schema nests)
    transport = httpx.ASGITransport(app=create_app(settings.model_copy(update={"graphql_max_depth": 2})))
    headers = {"authorization": f"Bearer {tokens.issue(str(anna.id), MEMBER_AUDIENCE).token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as http:
        # When a query of depth 2 and one of depth 3 arrive
        at_limit = await http.post("/graphql", json={"query": "{ me { tier { qualifyingValue } } }"})
        too_deep = await http.post("/graphql", json={"query": "query Deep { me { tier { current { name } } } }"})

    # Then only the deeper one is refused
    assert at_limit.json() == {"data": {"me": {"tier": {"qualifyingValue": 0}}}}
    assert too_deep.json()["data"] is None
    assert too_deep.json()["errors"][0]["message"] == "'Deep' exceeds maximum operation depth of 2"


async def test_too_many_aliases_are_refused(as_member: Any, anna: Member) -> None:
    query = "{ " + " ".join(f"a{i}: program {{ name }}" for i in range(31)) + " }"

    result = await as_member(anna).execute(query)

    assert result["errors"][0]["message"] == "31 aliases found. Allowed: 30"
    assert result["data"] is None


async def test_too_many_tokens_are_refused(as_member: Any, anna: Member) -> None:
    query = "{ program { " + " ".join(["name"] * 2100) + " } }"

    response = await as_member(anna).post(query)

    # a document that does not parse is a malformed request: 400, with GraphQL's error body
    assert response.status_code == 400
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Syntax Error: Document contains more than 2000 tokens. Parsing aborted.",
                "locations": [{"line": 1, "column": 9998}],
                "extensions": {"code": "GRAPHQL_PARSE_FAILED"},
            }
        ],
    }


@pytest.fixture
async def production_client(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = app_settings(db, tmp_path, Environment.PRODUCTION)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_production_runs_the_apps_operations(production_client: httpx.AsyncClient, program: Any) -> None:
    response = await production_client.post("/graphql", json={"query": PROGRAM_OPERATION})

    assert response.json()["data"]["program"]["name"] == "Test Club"


async def test_production_refuses_other_documents(production_client: httpx.AsyncClient, program: Any) -> None:
    response = await production_client.post("/graphql", json={"query": "{ program { name } }"})

    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "only the app's trusted documents are accepted here",
                "extensions": {"code": "UNTRUSTED_DOCUMENT"},
            }
        ],
    }


async def test_production_refuses_introspection(production_client: httpx.AsyncClient, program: Any) -> None:
    # on the staff endpoint: the member endpoint refuses every document but the app's before looking at it
    response = await production_client.post("/staff/graphql", json={"query": "{ __schema { types { name } } }"})

    messages = [e["message"] for e in response.json()["errors"]]
    assert response.json()["data"] is None
    assert any("introspection" in m for m in messages), messages


async def test_production_gives_no_field_suggestions(production_client: httpx.AsyncClient, program: Any) -> None:
    # on the staff endpoint, as above (tests/api/test_http_edge.py tests every kind of suggestion on both)
    response = await production_client.post("/staff/graphql", json={"query": "{ staffM { name } }"})

    messages = [e["message"] for e in response.json()["errors"]]
    assert "Cannot query field 'staffM' on type 'Query'." in messages
    assert not any("Did you mean" in m for m in messages)


async def test_production_serves_no_graphiql(production_client: httpx.AsyncClient, program: Any) -> None:
    response = await production_client.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code in (400, 404, 405)


async def test_development_suggests_fields(as_member: Any, program: Any) -> None:
    result = await as_member(None).execute("{ progra { name } }")

    assert result["errors"][0]["message"] == "Cannot query field 'progra' on type 'Query'. Did you mean 'program'?"


def test_production_refuses_the_firebase_emulator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    settings = Settings(
        environment=Environment.PRODUCTION,
        jwt_private_key_file=str(tmp_path / "k.pem"),
        public_url="https://klubb.example.com",
        device_hash_secret="device-hash-secret-for-the-tests!",
    )

    with pytest.raises(RuntimeError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        create_app(settings)


async def test_a_repeated_query_is_validated_once(as_member: Any, anna: Member) -> None:
    # ValidationCache keys on the document and the rule classes: per-request rule classes would never hit it.
    cached_validate = _get_validate_cache(512)
    query = "query Repeated { me { memberNumber } }"
    await as_member(anna).execute(query)
    before = cached_validate.cache_info()

    await as_member(anna).execute(query)

    after = cached_validate.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 0)
