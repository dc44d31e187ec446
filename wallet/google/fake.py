"""A local stand-in for Google Wallet: the REST API's loyalty classes and objects, the OAuth token endpoint, and the
save page. Development mounts it at `/dev/google-wallet` (save links of the embedded default open here); the tests
drive the real client against it.

It checks what Google checks that matters to us: the service account's assertion and save JWTs are verified with
the account's public key (RS256, `aud`, `typ`), calls need the bearer token it issued, inserting an existing id is
409, patching or getting an unknown one 404. It records every request (`requests`) and answers the statuses queued
in `failures` first (e.g. 429, 500) so tests can exercise the client's backoff.
"""

from __future__ import annotations

import html
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from loyalty import clock
from wallet.google.objects import JSON
from wallet.google.signer import GoogleSigner


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any


@dataclass
class FakeGoogleWallet:
    public_key_pem: bytes
    classes: dict[str, JSON] = field(default_factory=dict)
    objects: dict[str, JSON] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: deque[int] = field(default_factory=deque)  # statuses answered first, one per request
    retry_after: str | None = None  # a Retry-After header on those answers
    notifications: dict[str, int] = field(default_factory=dict)  # object id → updates that asked to notify
    saved: list[str] = field(default_factory=list)  # object ids saved through the save page
    tokens: set[str] = field(default_factory=set)
    # Development: saving (and removing) through the fake's pages calls back as Google would, signed by `signer`.
    signer: GoogleSigner | None = None
    issuer_id: str = ""
    class_id: str = ""
    deliver_callback: Callable[[bytes], Awaitable[int]] | None = None

    async def _call_back(self, object_id: str, event_type: str) -> int | None:
        if self.signer is None or self.deliver_callback is None:
            return None
        body = self.signer.callback(
            issuer_id=self.issuer_id,
            class_id=self.class_id,
            object_id=object_id,
            event_type=event_type,
            nonce=secrets.token_hex(16),
            now=clock.now(),
        )
        return await self.deliver_callback(body)

    def api_requests(self) -> list[RecordedRequest]:
        """The REST calls (not the token exchange)."""
        return [r for r in self.requests if r.path != "/token"]

    # -- handlers

    async def _record(self, request: Request) -> Response | None:
        body: Any = None
        raw = await request.body()
        if raw:
            if request.headers.get("content-type", "").startswith("application/json"):
                body = await request.json()
            else:
                body = dict(await request.form())
        self.requests.append(RecordedRequest(request.method, request.url.path.split("/dev/google-wallet")[-1], body))
        if self.failures:
            status = self.failures.popleft()
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return JSONResponse({"error": {"code": status, "message": "injected"}}, status_code=status, headers=headers)
        return None

    @staticmethod
    def _store_kind(request: Request) -> str | None:
        kind = request.path_params["kind"]
        return kind if kind in ("loyaltyClass", "loyaltyObject") else None

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header.removeprefix("Bearer ") in self.tokens

    async def token(self, request: Request) -> Response:
        if (failure := await self._record(request)) is not None:
            return failure
        form = await request.form()
        try:
            jwt.decode(
                str(form.get("assertion", "")),
                self.public_key_pem,
                algorithms=["RS256"],
                audience=str(request.url),
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.InvalidTokenError as error:
            return JSONResponse({"error": "invalid_grant", "error_description": str(error)}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    async def collection(self, request: Request) -> Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if not self._authorized(request):
            return JSONResponse({"error": {"code": 401}}, status_code=401)
        if self._store_kind(request) is None:
            return JSONResponse({"error": {"code": 404, "message": "no such collection"}}, status_code=404)
        store = self.classes if request.path_params["kind"] == "loyaltyClass" else self.objects
        resource = self.requests[-1].body
        if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
            return JSONResponse({"error": {"code": 400, "message": "id required"}}, status_code=400)
        if resource["id"] in store:
            return JSONResponse({"error": {"code": 409, "message": "exists"}}, status_code=409)
        store[resource["id"]] = {**resource, "version": "1"}
        return JSONResponse(store[resource["id"]])

    async def resource(self, request: Request) -> Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if not self._authorized(request):
            return JSONResponse({"error": {"code": 401}}, status_code=401)
        if self._store_kind(request) is None:
            return JSONResponse({"error": {"code": 404, "message": "no such collection"}}, status_code=404)
        store = self.classes if request.path_params["kind"] == "loyaltyClass" else self.objects
        resource_id = request.path_params["resource_id"]
        if resource_id not in store:
            return JSONResponse({"error": {"code": 404, "message": "not found"}}, status_code=404)
        if request.method == "PATCH":
            patch = self.requests[-1].body
            if not isinstance(patch, dict):
                return JSONResponse({"error": {"code": 400}}, status_code=400)
            if patch.get("notifyPreference") == "NOTIFY_ON_UPDATE":
                self.notifications[resource_id] = self.notifications.get(resource_id, 0) + 1
            updated = {**store[resource_id], **{k: v for k, v in patch.items() if k != "notifyPreference"}}
            updated["version"] = str(int(store[resource_id].get("version", "1")) + 1)
            store[resource_id] = updated
        return JSONResponse(store[resource_id])

    async def save(self, request: Request) -> Response:
        self.requests.append(RecordedRequest("GET", "/save", None))
        try:
            claims = jwt.decode(
                request.path_params["token"],
                self.public_key_pem,
                algorithms=["RS256"],
                audience="google",
                options={"require": ["iss", "aud", "typ", "iat"], "verify_iat": False},
            )
        except jwt.InvalidTokenError as error:
            return HTMLResponse(f"<p>Invalid save link: {html.escape(str(error))}</p>", status_code=400)
        if claims.get("typ") != "savetowallet":
            return HTMLResponse("<p>Invalid save link: typ</p>", status_code=400)
        saved = []
        for resource in claims.get("payload", {}).get("loyaltyObjects", []):
            object_id = resource.get("id")
            if len(resource) > 2:  # inlined
                self.objects.setdefault(object_id, {**resource, "version": "1"})
            if object_id not in self.objects:
                return HTMLResponse(f"<p>Unknown object {html.escape(str(object_id))}</p>", status_code=404)
            self.saved.append(object_id)
            saved.append(self.objects[object_id])
            await self._call_back(str(object_id), "save")
        items = "".join(
            f"<li>{html.escape(str(o.get('accountName')))}: {html.escape(str(o.get('loyaltyPoints')))}"
            f' (<a href="../remove/{html.escape(quote(str(o.get("id")), safe=""))}">remove from wallet</a>)</li>'
            for o in saved
        )
        return HTMLResponse(
            "<h1>Google Wallet (local development fake)</h1>"
            "<p>These passes are signed with a development key: real Google Wallet refuses them.</p>"
            f"<ul>{items}</ul>"
        )

    async def remove(self, request: Request) -> Response:
        object_id = request.path_params["object_id"]
        self.requests.append(RecordedRequest("GET", "/remove", None))
        if object_id not in self.objects:
            return HTMLResponse("<p>Unknown object</p>", status_code=404)
        await self._call_back(object_id, "del")
        return HTMLResponse("<h1>Google Wallet (local development fake)</h1><p>Removed from the wallet.</p>")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/walletobjects/v1/{kind:str}", self.collection, methods=["POST"]),
                Route("/walletobjects/v1/{kind:str}/{resource_id:str}", self.resource, methods=["GET", "PATCH"]),
                Route("/save/{token:str}", self.save, methods=["GET"]),
                Route("/remove/{object_id:str}", self.remove, methods=["GET"]),
            ]
        )
