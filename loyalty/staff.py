"""Staff accounts and integration API keys: who may act at the checkout and in the back office.

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 profile). API keys look like `kbk_<prefix>_<secret>`:
the prefix finds the row, the secret is stored as its SHA-256 (a 256-bit random secret needs no slow hash).
Actors are rebuilt from the database on every request, so a deactivation takes effect at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError

from loyalty import clock, sql
from loyalty.actors import Actor
from loyalty.checks import MAX_EMAIL, check_store_code, check_text, is_clean_text
from loyalty.errors import DomainError, InvalidInput, NotFound
from loyalty.models import ApiKey, StaffRole, StaffUser
from loyalty.throttle import claim, clear

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
LOGIN_THROTTLE_SCOPE = "staff_login"
LOGIN_THROTTLE_LIMIT = 5
LOGIN_THROTTLE_WINDOW = timedelta(minutes=15)
API_KEY_TAG = "kbk"
_PREFIX_HEX = 12  # fits ApiKey.prefix (16)
_SECRET_HEX = 64  # 256 bits
# Writing last_used_at on every request of a busy till would turn each read into a write; a minute is precise enough.
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_SESSION_ID_HEX = 32  # 128 bits
_SUBJECT_PREFIX = "staff:"  # keeps staff ids apart from member ids in token subjects

_hasher = PasswordHasher()


class InvalidCredentials(DomainError):
    """Wrong email or password, a disabled account, or an unknown, revoked or malformed API key (one answer)."""

    code = "INVALID_CREDENTIALS"


class StaffEmailTaken(DomainError):
    code = "EMAIL_TAKEN"


class WeakPassword(InvalidInput):
    code = "WEAK_PASSWORD"


_dummy: str | None = None


async def _dummy_hash() -> str:
    """A hash of nothing, with the current parameters: unknown emails are verified against it, so that they cost
    as much time as a wrong password."""
    global _dummy
    if _dummy is None or _hasher.check_needs_rehash(_dummy):
        _dummy = await asyncio.to_thread(_hasher.hash, secrets.token_hex(16))
    return _dummy


async def _verify_password(password_hash: str, password: str) -> bool:
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    """Staff emails are compared lower-case without surrounding blanks."""
    return email.strip().lower()


def _is_email(address: str) -> bool:
    local, at, domain = address.partition("@")
    # isprintable: no NUL, control or invisible character, no lone surrogate; no space either.
    return bool(at and local and "." in domain and len(address) <= MAX_EMAIL and address.isprintable()) and not any(
        c.isspace() for c in address
    )


def _check_email(address: str) -> None:
    if not _is_email(address):
        raise InvalidInput("not an email address", field="email")


def _is_password(password: str) -> bool:
    """Any text up to `PASSWORD_MAX_LENGTH` that can be hashed (UTF-8 has no lone surrogates)."""
    return len(password) <= PASSWORD_MAX_LENGTH and is_clean_text(password, multiline=True)


def _check_password(password: str) -> None:
    if not is_clean_text(password, multiline=True):
        raise WeakPassword("a password must not contain control characters or unpaired surrogates", field="password")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {PASSWORD_MIN_LENGTH} characters", field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise WeakPassword(f"a password has at most {PASSWORD_MAX_LENGTH} characters", field="password")


def _check_role(role: StaffRole | str) -> StaffRole:
    try:
        return StaffRole(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in StaffRole)}", field="role") from None


def staff_actor(staff: StaffUser, session_id: str | None = None) -> Actor:
    """The Actor of a staff account, in its sign-in session `session_id` if it has one."""
    return Actor(
        kind="staff",
        id=staff.id,
        role=StaffRole(staff.role),
        store_codes=tuple(staff.store_codes),
        name=staff.display_name or staff.email,
        session_id=session_id,
    )


def new_session_id() -> str:
    """A new staff session id (128 random bits): the `sid` of a sign-in's access tokens."""
    return secrets.token_hex(_SESSION_ID_HEX // 2)


def _is_session_id(value: str | None) -> bool:
    return value is not None and _is_hex(value, _SESSION_ID_HEX)


def api_key_actor(key: ApiKey) -> Actor:
    """The Actor of an integration's API key."""
    return Actor(
        kind="api_key",
        id=key.id,
        role=StaffRole(key.role),
        store_codes=(key.store_code,) if key.store_code else (),
        name=key.name,
    )


# --- staff accounts -------------------------------------------------------------------------------


async def create_staff(
    email: str,
    password: str,
    role: StaffRole | str,
    store_codes: Iterable[str] = (),
    display_name: str = "",
) -> StaffUser:
    """Create a staff account; `store_codes` empty means every store.

    Raises `InvalidInput` (email, role, store code), `WeakPassword` (fewer than 12 characters) or `StaffEmailTaken`.
    """
    address = normalize_email(email)
    _check_email(address)
    _check_password(password)
    staff_role = _check_role(role)
    stores = sorted({check_store_code(code.strip()) for code in store_codes})
    check_text(display_name.strip(), "display_name", 100, required=False)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    try:
        return await StaffUser.create(
            email=address,
            password_hash=password_hash,
            display_name=display_name.strip(),
            role=staff_role,
            store_codes=stores,
            created_at=clock.now(),
        )
    except IntegrityError:
        raise StaffEmailTaken("a staff account with this email exists", field="email") from None


async def authenticate_staff(email: str, password: str) -> Actor:
    """The Actor for a correct email and password of an active account, in a new session (`new_session_id`).

    Unknown emails, wrong passwords and disabled accounts all raise `InvalidCredentials` after the same argon2
    work. After `LOGIN_THROTTLE_LIMIT` failures for an email within `LOGIN_THROTTLE_WINDOW`, every attempt (even
    with the right password) raises `TooManyAttempts`; a successful sign-in clears the failures.
    """
    address = normalize_email(email)
    if not _is_email(address):  # no account can have it: refused before it is counted or reaches the database
        raise InvalidCredentials("wrong email or password")
    # Claimed before the password is checked: parallel guesses cannot slip past the limit while argon2 runs.
    await claim(LOGIN_THROTTLE_SCOPE, [address], LOGIN_THROTTLE_LIMIT, LOGIN_THROTTLE_WINDOW)
    staff = await StaffUser.get_or_none(email=address)
    valid = _is_password(password) and await _verify_password(
        staff.password_hash if staff is not None else await _dummy_hash(), password
    )
    if staff is None or not valid or not staff.active:
        raise InvalidCredentials("wrong email or password")  # the claimed attempt stays counted as a failure
    await clear(LOGIN_THROTTLE_SCOPE, address)
    changes: dict[str, Any] = {"last_login_at": clock.now()}
    if _hasher.check_needs_rehash(staff.password_hash):  # hashing parameters were raised since it was set
        changes["password_hash"] = await asyncio.to_thread(_hasher.hash, password)
    await StaffUser.filter(id=staff.id).update(**changes)
    return staff_actor(staff, new_session_id())


_ACTIVE_STAFF = sql.select("staff.active_by_id", StaffUser, 'WHERE "id" = ? AND "active" = ?')


async def actor_for_staff(staff_id: int, session_id: str | None = None) -> Actor | None:
    """The Actor of an active staff account (one query, on every staff request), or None if it is gone or
    deactivated."""
    found = await sql.fetch_models(_ACTIVE_STAFF, [staff_id, True])
    return staff_actor(found[0], session_id) if found else None


def token_subject(actor: Actor) -> str:
    """The subject of a staff member's access tokens (the API's and the console's): `staff:<id>`, never a member's."""
    return f"{_SUBJECT_PREFIX}{actor.id}"


async def actor_for_subject(subject: str, session_id: str | None) -> Actor | None:
    """The active staff account a token subject names (`token_subject`), in the token's session (its `sid`);
    None for any other subject, or without a well-formed session id (a token from before sessions had ids)."""
    staff_id = subject.removeprefix(_SUBJECT_PREFIX)
    if (
        not _is_session_id(session_id)
        or not subject.startswith(_SUBJECT_PREFIX)
        or not staff_id.isascii()
        or not staff_id.isdigit()
        or len(staff_id) > 18
    ):
        return None
    return await actor_for_staff(int(staff_id), session_id)


async def deactivate_staff(staff_id: int) -> None:
    """Disable a staff account: its sign-ins and its unexpired access tokens are refused from now on."""
    if not await StaffUser.filter(id=staff_id).update(active=False):
        raise NotFound("no such staff account", field="staff_id")


# --- API keys ------------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(name: str, role: StaffRole | str, store_code: str | None = None) -> tuple[ApiKey, str]:
    """Create an integration key; returns the row and the raw key `kbk_<prefix>_<secret>` (shown only once)."""
    check_text(name.strip(), "name", 100, label="a key name")
    key_role = _check_role(role)
    store = check_store_code(store_code.strip()) if store_code is not None else None
    for _ in range(3):
        prefix, secret = secrets.token_hex(_PREFIX_HEX // 2), secrets.token_hex(_SECRET_HEX // 2)
        try:
            key = await ApiKey.create(
                name=name.strip(),
                prefix=prefix,
                key_hash=_digest(secret),
                role=key_role,
                store_code=store,
                created_at=clock.now(),
            )
        except IntegrityError:  # a prefix collision (48 random bits): draw again
            continue
        return key, f"{API_KEY_TAG}_{prefix}_{secret}"
    raise RuntimeError("could not allocate a unique API key prefix")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and all(c in "0123456789abcdef" for c in value)


async def authenticate_api_key(raw_key: str) -> Actor:
    """The Actor of an active API key (one query; `last_used_at` is refreshed at most once a minute).

    Malformed, unknown and revoked keys raise `InvalidCredentials`.
    """
    tag, _, rest = raw_key.strip().partition("_")
    prefix, _, secret = rest.partition("_")
    if tag != API_KEY_TAG or not _is_hex(prefix, _PREFIX_HEX) or not _is_hex(secret, _SECRET_HEX):
        raise InvalidCredentials("invalid API key")
    key = await ApiKey.get_or_none(prefix=prefix)
    expected = key.key_hash if key is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(secret)) or key is None or not key.active:
        raise InvalidCredentials("invalid API key")
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at >= _LAST_USED_RESOLUTION:
        await ApiKey.filter(id=key.id).update(last_used_at=now)
    return api_key_actor(key)


async def revoke_api_key(key_id: int) -> None:
    """Revoke an API key: every later request with it is refused."""
    if not await ApiKey.filter(id=key_id).update(active=False):
        raise NotFound("no such API key", field="key_id")
