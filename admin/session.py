"""Console sessions: the staff access token in a cookie, the CSRF token, and one-shot flash messages.

The session cookie holds a staff access token (`staff:<id>`, the staff audience), the same kind of token the staff
GraphQL API accepts; the actor is rebuilt from the database on every request, so a deactivation takes effect at once.
Tokens are short-lived: a request in the second half of a token's life gets a fresh one in the same session (`sid`,
what wrong voucher codes are counted against), so a till in use stays signed in and an abandoned one is signed out.

CSRF: a random token in its own HttpOnly cookie must come back in each form's hidden `csrf` field (double submit),
on top of SameSite=Strict cookies. It is renewed at sign-in, so it is per session.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from starlette.requests import Request
from starlette.responses import Response

from loyalty import clock
from loyalty.actors import Actor
from loyalty.staff import actor_for_subject, token_subject

SESSION_COOKIE = "klubb_console"
CSRF_COOKIE = "klubb_console_csrf"
FLASH_COOKIE = "klubb_console_flash"
STORE_COOKIE = "klubb_console_store"
CSRF_FIELD = "csrf"
FlashKind = Literal["ok", "error"]


class IssuedTokenLike(Protocol):
    @property
    def token(self) -> str: ...


class ClaimsLike(Protocol):
    @property
    def subject(self) -> str: ...

    @property
    def issued_at(self) -> datetime: ...

    @property
    def expires_at(self) -> datetime: ...

    @property
    def session_id(self) -> str | None: ...


class TokenCodec(Protocol):
    """What the console needs of the API's token service (`api.auth.tokens.TokenService` fits)."""

    def issue(self, subject: str, audience: str, session_id: str | None = None) -> IssuedTokenLike: ...

    def verify(self, token: str, audience: str) -> ClaimsLike: ...


@dataclass(frozen=True)
class SessionConfig:
    tokens: TokenCodec
    audience: str
    # The exception type(s) `tokens.verify` raises for a bad or expired token: such a cookie is just "signed out".
    token_error: type[Exception] | tuple[type[Exception], ...]
    secure_cookies: bool  # production: cookies only over https


@dataclass(frozen=True)
class Flash:
    kind: FlashKind
    message: str


def _cookie_path(request: Request) -> str:
    return request.scope.get("root_path") or "/"


def _set_cookie(config: SessionConfig, request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=config.secure_cookies,
    )


def _delete_cookie(config: SessionConfig, request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=_cookie_path(request), httponly=True, samesite="strict", secure=config.secure_cookies
    )


# --- the signed-in staff member --------------------------------------------------------------------


def start_session(config: SessionConfig, request: Request, response: Response, actor: Actor) -> None:
    """Sign `actor` in: a new session token and a new CSRF token; the store is picked again."""
    issued = config.tokens.issue(token_subject(actor), config.audience, actor.session_id)
    _set_cookie(config, request, response, SESSION_COOKIE, issued.token)
    set_csrf_cookie(config, request, response, new_csrf_token())
    _delete_cookie(config, request, response, STORE_COOKIE)


def end_session(config: SessionConfig, request: Request, response: Response) -> None:
    _delete_cookie(config, request, response, SESSION_COOKIE)
    _delete_cookie(config, request, response, CSRF_COOKIE)
    _delete_cookie(config, request, response, STORE_COOKIE)


@dataclass(frozen=True)
class Session:
    actor: Actor
    claims: ClaimsLike


async def current_session(config: SessionConfig, request: Request) -> Session | None:
    """The signed-in staff member, rebuilt from the database; None without a valid cookie or for a disabled account."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        claims = config.tokens.verify(token, config.audience)
    except config.token_error:
        return None
    actor = await actor_for_subject(claims.subject, claims.session_id)
    return Session(actor, claims) if actor is not None else None


def renew_if_ageing(config: SessionConfig, request: Request, response: Response, session: Session) -> None:
    """Re-issue the session token once half its lifetime has passed (sliding expiry while the till is in use)."""
    lifetime = session.claims.expires_at - session.claims.issued_at
    if session.claims.expires_at - clock.now() < lifetime / 2:
        issued = config.tokens.issue(token_subject(session.actor), config.audience, session.actor.session_id)
        _set_cookie(config, request, response, SESSION_COOKIE, issued.token)


# --- CSRF -----------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str | None:
    return request.cookies.get(CSRF_COOKIE)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(config: SessionConfig, request: Request, response: Response, token: str) -> None:
    _set_cookie(config, request, response, CSRF_COOKIE, token)


async def csrf_ok(request: Request) -> bool:
    """True if the form's hidden CSRF field matches this browser's CSRF cookie."""
    expected = csrf_token(request)
    submitted = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(submitted, str):
        return False
    # As bytes: compare_digest refuses non-ASCII str, and a forged field may hold anything.
    return hmac.compare_digest(expected.encode(), submitted.encode())


# --- the store the till is in ----------------------------------------------------------------------


def chosen_store(request: Request) -> str | None:
    """The store picked for this console session (a preference only: every action still checks the actor's
    stores, so a forged cookie buys nothing)."""
    return request.cookies.get(STORE_COOKIE) or None


def set_store(config: SessionConfig, request: Request, response: Response, store_code: str) -> None:
    _set_cookie(config, request, response, STORE_COOKIE, store_code)


# --- flash messages -------------------------------------------------------------------------------


def set_flash(config: SessionConfig, request: Request, response: Response, kind: FlashKind, message: str) -> None:
    """A message for the next page shown (Post/Redirect/Get)."""
    value = base64.urlsafe_b64encode(json.dumps([kind, message]).encode()).decode()
    _set_cookie(config, request, response, FLASH_COOKIE, value)


def read_flash(request: Request) -> Flash | None:
    """The pending flash message, if any (the page that shows it clears it with `clear_flash`)."""
    value = request.cookies.get(FLASH_COOKIE)
    if value is None:
        return None
    try:
        kind, message = json.loads(base64.urlsafe_b64decode(value))
    except (ValueError, TypeError):
        return None
    if kind not in ("ok", "error") or not isinstance(message, str):
        return None
    return Flash(kind, message[:300])


def clear_flash(config: SessionConfig, request: Request, response: Response) -> None:
    if FLASH_COOKIE in request.cookies:
        _delete_cookie(config, request, response, FLASH_COOKIE)
