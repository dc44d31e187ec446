"""GraphiQL without internet: the page references only klubb's own URLs, which serve the npm packages' assets."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.graphiql import ASSETS, NODE_MODULES
from api.settings import Environment
from tests.conftest import app_settings

HTML = {"accept": "text/html"}


async def _client(tmp_path: Path, environment: Environment) -> AsyncIterator[httpx.AsyncClient]:
    # no request here reaches the database: the URL is never connected
    settings = app_settings(f"sqlite://{tmp_path / 'unused.sqlite3'}", tmp_path, environment)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, Environment.TEST):
        yield client


@pytest.fixture
async def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    async for client in _client(tmp_path, Environment.PRODUCTION):
        yield client


@pytest.mark.parametrize("path", ["/graphql", "/staff/graphql"])
async def test_the_graphiql_page_references_only_klubbs_own_assets(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path, headers=HTML)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert not re.search(r"(https?:)?//", response.text), "the page must not load anything from another host"
    references = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert references == [
        "/graphiql/graphiql.css",
        "/graphiql/react.js",
        "/graphiql/react-dom.js",
        "/graphiql/graphiql.js",
    ]


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_each_asset_is_served_from_the_npm_package(http: httpx.AsyncClient, name: str) -> None:
    file, media_type = ASSETS[name]

    response = await http.get(f"/graphiql/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.content == (NODE_MODULES / file).read_bytes()


def test_the_installed_packages_are_the_pinned_versions() -> None:
    versions = {
        name: json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
        for name in ("graphiql", "react", "react-dom")
    }

    assert versions == {"graphiql": "3.8.3", "react": "18.2.0", "react-dom": "18.2.0"}


@pytest.mark.parametrize("name", ["../package.json", "graphiql.min.js.map", "nope.js", "react"])
async def test_nothing_else_is_served_from_node_modules(http: httpx.AsyncClient, name: str) -> None:
    response = await http.get(f"/graphiql/{name}")

    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/graphql", "/staff/graphql"])
async def test_production_serves_neither_the_page_nor_its_assets(production: httpx.AsyncClient, path: str) -> None:
    page = await production.get(path, headers=HTML)
    asset = await production.get("/graphiql/graphiql.js")

    assert page.status_code == 404
    assert page.json() == {"errors": [{"message": "Not Found", "extensions": {"code": "NOT_FOUND"}}]}
    assert asset.status_code == 404
