"""An in-process client for the member endpoint, and helpers to sign members in."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty.members import enroll_member
from loyalty.models import Member, Program

HOME_QUERY = (Path(__file__).parents[2] / "mobile-client-mock" / "operations" / "Home.graphql").read_text()


@pytest.fixture
def settings(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    return Settings(
        environment=Environment.TEST,
        database_url=db,
        jwt_dev_key_file=str(tmp_path / "jwt.pem"),
        embedded_worker=False,
        google_wallet_enabled=False,  # tests/api/test_google_wallet.py covers me.wallet.googleSaveUrl
    )


@pytest.fixture
def tokens(settings: Settings) -> TokenService:
    return TokenService(settings)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: the `db` fixture already holds the connection.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, token: str | None) -> None:
        self.http = http
        self.token = token

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")
    return member


@pytest.fixture
async def bo(program: Program) -> Member:
    member, _ = await enroll_member("uid-bo", email="bo@example.com", display_name="Bo")
    return member


@pytest.fixture
def as_member(client: httpx.AsyncClient, tokens: TokenService) -> Any:
    def sign_in(member: Member | None) -> GraphQLClient:
        token = tokens.issue(str(member.id), MEMBER_AUDIENCE).token if member else None
        return GraphQLClient(client, token)

    return sign_in


class SQLCounter(logging.Handler):
    """Counts the SQL statements Tortoise sends (its db client logs each at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statements.append(record.getMessage())


@pytest.fixture
def sql_counter() -> Iterator[SQLCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = SQLCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(previous)
