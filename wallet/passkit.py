"""The PassKit web service, as Apple specifies it (Wallet Passes → "Adding a Web Service to Update Passes").

Mounted by `api` at the pass's `webServiceURL` (`<public url>/passkit`):

- `POST /v1/devices/{device}/registrations/{passType}/{serial}`, body `{"pushToken": …}`: 201 registered, 200
  already registered, 401 not authorized, 400 a malformed body, device or push token;
- `DELETE /v1/devices/{device}/registrations/{passType}/{serial}`: 200 unregistered, 401 not authorized;
- `GET /v1/devices/{device}/registrations/{passType}?passesUpdatedSince={tag}`: 200
  `{"serialNumbers": […], "lastUpdated": "<tag>"}`, 204 when nothing is newer (or the device is unknown);
- `GET /v1/passes/{passType}/{serial}`: 200 the pass with `Last-Modified`, 304 when it is not newer than
  `If-Modified-Since`, 401 not authorized;
- `POST /v1/log`, body `{"logs": [...]}`: 200 (each message logged, truncated).

Authentication is `Authorization: ApplePass <token>`, compared in constant time with the pass's stored hash; a wrong
token, another pass's token, an unknown serial and another pass type all answer 401 alike. Registrations and
unregistrations are rate-limited per device (`loyalty.throttle`, scope `wallet_device`): 429 past the limit.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from loyalty import throttle, wallet
from loyalty.models import WalletPass
from wallet.http import read_body
from wallet.pkpass import MIME_TYPE
from wallet.service import AppleWallet

log = logging.getLogger("klubb.wallet.passkit")

AUTH_SCHEME = "ApplePass "
MAX_BODY_BYTES = 16 * 1024
MAX_LOG_MESSAGES = 50
MAX_LOG_MESSAGE = 500
DEVICE_LIMIT = 30  # registrations + unregistrations per device
DEVICE_WINDOW = timedelta(hours=1)
THROTTLE_SCOPE = "wallet_device"


def _status(code: int) -> Response:
    return Response(status_code=code)


def _http_date(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC).replace(microsecond=0), usegmt=True)


class PassKitService:
    def __init__(self, apple: AppleWallet) -> None:
        self.apple = apple

    async def _authorized(self, request: Request) -> WalletPass | None:
        """The pass the request's path and `ApplePass` token designate, or None (→ 401)."""
        header = request.headers.get("authorization", "")
        token = header[len(AUTH_SCHEME) :] if header.startswith(AUTH_SCHEME) else ""
        serial = request.path_params["serial"]
        found = await wallet.authenticate_pass(serial, token)
        if found is None or request.path_params["pass_type"] != self.apple.pass_type_id:
            return None
        return found

    async def _throttled(self, device: str) -> bool:
        try:
            await throttle.claim(THROTTLE_SCOPE, [device], limit=DEVICE_LIMIT, window=DEVICE_WINDOW)
        except throttle.TooManyAttempts:
            return True
        return False

    async def register(self, request: Request) -> Response:
        device = request.path_params["device"]
        if await self._throttled(device):
            return _status(429)
        wallet_pass = await self._authorized(request)
        if wallet_pass is None:
            return _status(401)
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _status(413)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(payload, dict) or "pushToken" not in payload:
            return JSONResponse({"error": "the body must be an object with pushToken"}, status_code=400)
        try:
            created = await wallet.register_device(wallet_pass, device, payload["pushToken"])
        except wallet.InvalidRegistration as error:
            return JSONResponse({"error": error.message}, status_code=400)
        return _status(201 if created else 200)

    async def unregister(self, request: Request) -> Response:
        device = request.path_params["device"]
        if await self._throttled(device):
            return _status(429)
        wallet_pass = await self._authorized(request)
        if wallet_pass is None:
            return _status(401)
        try:
            await wallet.unregister_device(wallet_pass, device)
        except wallet.InvalidRegistration as error:
            return JSONResponse({"error": error.message}, status_code=400)
        return _status(200)

    async def serials(self, request: Request) -> Response:
        if request.path_params["pass_type"] != self.apple.pass_type_id:
            return _status(204)  # no pass of that type is registered anywhere
        since_text = request.query_params.get("passesUpdatedSince")
        since: int | None = None
        if since_text is not None:
            if not since_text.isdigit() or len(since_text) > 20:
                return JSONResponse({"error": "passesUpdatedSince is a tag this service returned"}, status_code=400)
            since = int(since_text)
        try:
            found = await wallet.serials_updated_since(request.path_params["device"], since)
        except wallet.InvalidRegistration:
            return _status(204)  # no device by that identifier
        if found is None:
            return _status(204)
        serials, last = found
        return JSONResponse({"serialNumbers": serials, "lastUpdated": str(last)})

    async def latest(self, request: Request) -> Response:
        wallet_pass = await self._authorized(request)
        if wallet_pass is None:
            return _status(401)
        modified = wallet_pass.last_updated.astimezone(UTC).replace(microsecond=0)
        since = request.headers.get("if-modified-since")
        if since:
            try:
                seen = parsedate_to_datetime(since)
            except (TypeError, ValueError):
                seen = None
            if seen is not None and seen.tzinfo is not None and modified <= seen:
                return Response(status_code=304, headers={"Last-Modified": _http_date(modified)})
        built = await self.apple.build(wallet_pass)
        return Response(
            built.data,
            media_type=MIME_TYPE,
            headers={"Last-Modified": _http_date(modified), "Cache-Control": "no-cache"},
        )

    async def device_log(self, request: Request) -> Response:
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _status(413)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        logs = payload.get("logs") if isinstance(payload, dict) else None
        if not isinstance(logs, list) or not all(isinstance(m, str) for m in logs):
            return JSONResponse({"error": "the body must be an object with logs: [string]"}, status_code=400)
        for message in logs[:MAX_LOG_MESSAGES]:
            log.info("device log: %s", message[:MAX_LOG_MESSAGE].encode("unicode_escape").decode())
        return _status(200)

    def router(self) -> Router:
        registration = "/v1/devices/{device}/registrations/{pass_type}/{serial}"
        return Router(
            routes=[
                Route(registration, self.register, methods=["POST"]),
                Route(registration, self.unregister, methods=["DELETE"]),
                Route("/v1/devices/{device}/registrations/{pass_type}", self.serials, methods=["GET"]),
                Route("/v1/passes/{pass_type}/{serial}", self.latest, methods=["GET"]),
                Route("/v1/log", self.device_log, methods=["POST"]),
            ]
        )
