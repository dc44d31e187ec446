"""The member's pass download link: short-lived, single-use, signed (`me.wallet.applePassUrl`).

A link is `<public url>/wallet/apple/<token>` with the token `v1.<member id>.<expiry, unix s>.<nonce>.<signature>`:
the signature is HMAC-SHA256 (base64url) over the rest, with a key derived from the wallet secret. The download
route answers 404 for a token that does not verify (nothing said about why), 410 for an expired or already used one
(the nonce is recorded as spent in the same request: `loyalty.wallet.spend_link`), else the member's signed
`.pkpass`. Only the member's own pass can be linked: the member id is inside the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loyalty import clock, wallet
from loyalty.errors import MemberNotFound
from wallet.pkpass import MIME_TYPE
from wallet.service import AppleWallet

log = logging.getLogger("klubb.wallet.links")

VERSION = "v1"
MAX_TOKEN = 200


class LinkRefused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class LinkClaims:
    member_id: int
    expires_at: int
    nonce: str


class WalletLinkSigner:
    """Makes and checks download links; implements `schema.ports.WalletLinks` for the member schema."""

    def __init__(self, secret: bytes, public_url: str, lifetime_seconds: int) -> None:
        self._key = hmac.new(secret, b"klubb wallet download link", hashlib.sha256).digest()
        self.public_url = public_url.rstrip("/")
        self.lifetime_seconds = lifetime_seconds

    def _signature(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def token(self, member_id: int, now: datetime) -> str:
        expires = int(now.timestamp()) + self.lifetime_seconds
        body = f"{VERSION}.{member_id}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._signature(body)}"

    async def apple_pass_url(self, member_id: int, now: datetime) -> str | None:
        return f"{self.public_url}/wallet/apple/{self.token(member_id, now)}"

    def verify(self, token: str, now: datetime) -> LinkClaims:
        """The claims of a link that verifies and has not expired; `LinkRefused` (404 / 410) otherwise."""
        parts = token.split(".") if len(token) <= MAX_TOKEN and token.isascii() else []
        if len(parts) != 5 or parts[0] != VERSION:
            raise LinkRefused(404, "no such link")
        body, signature = ".".join(parts[:4]), parts[4]
        if not hmac.compare_digest(signature.encode(), self._signature(body).encode()):
            raise LinkRefused(404, "no such link")
        _, member, expires, nonce = parts[:4]
        if not member.isdigit() or not expires.isdigit():  # signed by us, so never; checked all the same
            raise LinkRefused(404, "no such link")
        if int(expires) <= int(now.timestamp()):
            raise LinkRefused(410, "this link has expired: ask the app for a new one")
        return LinkClaims(member_id=int(member), expires_at=int(expires), nonce=nonce)


def download_route(signer: WalletLinkSigner, apple: AppleWallet) -> Route:
    """`GET /wallet/apple/{token}`: the member's signed pass, once per link."""

    async def download(request: Request) -> Response:
        now = clock.now()
        try:
            claims = signer.verify(request.path_params["token"], now)
            if not await wallet.spend_link(claims.nonce, claims.member_id, now):
                raise LinkRefused(410, "this link was already used: ask the app for a new one")
            wallet_pass = await apple.member_pass(claims.member_id)
        except LinkRefused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status_code)
        except MemberNotFound:
            return JSONResponse({"error": "no such link"}, status_code=404)
        built = await apple.build(wallet_pass, now)
        return Response(
            built.data,
            media_type=MIME_TYPE,
            headers={"Content-Disposition": 'attachment; filename="card.pkpass"', "Cache-Control": "no-store"},
        )

    return Route("/wallet/apple/{token}", download, methods=["GET"])
