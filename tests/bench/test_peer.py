"""bench/peer.py, the reference peer of issue 9, answers the Home query with the same data as klubb."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Environment, Settings
from bench import peer, seed
from loyalty import clock
from loyalty.models import LedgerEntry, Member, PointsLot
from tests.schema.conftest import HOME_QUERY

TEMPLATES = 3
MEMBERS = 4  # three templates and one clone
DAYS = 400  # long enough for expired points, a refund, a redemption and tier changes


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.TEST,
        database_url=db,
        jwt_dev_key_file=str(tmp_path / "jwt.pem"),
        embedded_worker=False,
    )


async def _home(app: Starlette, token: str | None) -> dict[str, Any]:
    # No lifespan: the `db` fixture holds the connection.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await http.post("/graphql", json={"query": HOME_QUERY}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_peer_answers_home_with_klubbs_data(settings: Settings) -> None:
    # given members with two years of history made by the services (purchases, refunds, redemptions, expiry)
    config = tomllib.loads((seed.ROOT / seed.PROGRAM_FILE).read_text())
    await seed.populate(MEMBERS, config, templates=TEMPLATES, days=DAYS)
    assert await Member.all().count() == MEMBERS
    tokens = TokenService(settings)
    klubb, reference = create_app(settings), peer.create_app(settings)

    for member in await Member.all().order_by("id"):
        token = tokens.issue(str(member.id), MEMBER_AUDIENCE).token
        # when both answer the app's Home query for the member
        ours = await _home(klubb, token)
        theirs = await _home(reference, token)

        # then the data are the same, field for field, and neither has errors
        assert "errors" not in ours, ours
        assert theirs == ours
    # and the comparison covered real data: a full activity page, expiring points, an upgraded tier
    homes = [await _home(reference, tokens.issue(str(i), MEMBER_AUDIENCE).token) for i in range(1, MEMBERS + 1)]
    assert {len(h["data"]["me"]["activity"]["edges"]) for h in homes} >= {10}
    assert any(h["data"]["me"]["activity"]["pageInfo"]["hasNextPage"] for h in homes)
    assert any(h["data"]["me"]["tier"]["current"]["name"] != "Member" for h in homes)
    assert await LedgerEntry.filter(kind="expire").exists()
    assert await PointsLot.filter(remaining__gt=0, expires_at__lte=clock.now() + seed.DAY * 30).exists() == any(
        h["data"]["me"]["points"]["expiringSoon"] for h in homes
    )


async def test_the_peer_refuses_a_missing_or_wrong_token(settings: Settings, tmp_path: Path) -> None:
    # given a member and a token signed with another key
    config = tomllib.loads((seed.ROOT / seed.PROGRAM_FILE).read_text())
    await seed.populate(1, config, templates=1, days=30)
    other = TokenService(Settings(jwt_dev_key_file=str(tmp_path / "other.pem")))
    reference = peer.create_app(settings)

    for token in (None, "not-a-jwt", other.issue("1", MEMBER_AUDIENCE).token):
        # when the peer is asked for Home
        body = await _home(reference, token)
        # then it answers no data and one error
        assert body["data"] is None
        assert [e["message"] for e in body["errors"]] == ["not signed in"]
