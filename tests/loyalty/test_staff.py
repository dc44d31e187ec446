"""Staff accounts and API keys: argon2id passwords, one answer for every failed sign-in, throttling, hashed keys."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from loyalty import staff
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.errors import InvalidInput, NotFound
from loyalty.models import ApiKey, StaffRole, StaffUser, ThrottleCounter
from loyalty.staff import (
    InvalidCredentials,
    StaffEmailTaken,
    WeakPassword,
    actor_for_staff,
    actor_for_subject,
    authenticate_api_key,
    authenticate_staff,
    create_api_key,
    create_staff,
    deactivate_staff,
    new_session_id,
    revoke_api_key,
    token_subject,
)
from loyalty.throttle import TooManyAttempts

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """Cheap parameters for tests, and a record of which hashes were verified."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(str(hash))
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(staff, "_hasher", counting)
    return counting


# --- accounts -------------------------------------------------------------------------------------


async def test_create_staff_stores_an_argon2id_hash_and_normalized_fields(db: str, clock: FrozenClock) -> None:
    created = await create_staff("  Cass@Example.COM ", PASSWORD, "cashier", ["S2", "S1", "S2"], " Cass ")

    row = await StaffUser.get(id=created.id)
    assert (row.email, row.role, row.store_codes, row.display_name, row.active) == (
        "cass@example.com",
        StaffRole.CASHIER,
        ["S1", "S2"],
        "Cass",
        True,
    )
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert (row.created_at, row.last_login_at) == (clock.now(), None)


async def test_a_password_needs_twelve_characters(db: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        await create_staff("a@example.com", "x" * 11, StaffRole.CASHIER)
    assert (refused.value.code, refused.value.field) == ("WEAK_PASSWORD", "password")
    assert await StaffUser.all().count() == 0

    await create_staff("a@example.com", "x" * 12, StaffRole.CASHIER)
    assert await StaffUser.all().count() == 1


async def test_an_email_is_taken_whatever_its_case(db: str) -> None:
    await create_staff("a@example.com", PASSWORD, StaffRole.CASHIER)

    with pytest.raises(StaffEmailTaken) as refused:
        await create_staff("A@Example.com", PASSWORD, StaffRole.ADMIN)

    assert (refused.value.code, refused.value.field) == ("EMAIL_TAKEN", "email")
    assert await StaffUser.all().values_list("role", flat=True) == [StaffRole.CASHIER]


@pytest.mark.parametrize(
    ("email", "role", "stores", "field"),
    [
        ("not-an-email", "cashier", [], "email"),
        ("a b@example.com", "cashier", [], "email"),
        ("a@example.com", "owner", [], "role"),
        ("a@example.com", "cashier", [" "], "store_code"),
        ("a@example.com", "cashier", ["S" * 33], "store_code"),
    ],
)
async def test_bad_account_input_is_refused(db: str, email: str, role: str, stores: list[str], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await create_staff(email, PASSWORD, role, stores)

    assert (refused.value.code, refused.value.field) == ("INVALID", field)
    assert await StaffUser.all().count() == 0


# --- sign-in --------------------------------------------------------------------------------------


async def test_sign_in_returns_the_actor_and_records_the_time(db: str, clock: FrozenClock) -> None:
    created = await create_staff("cass@example.com", PASSWORD, "cashier", ["S1"], "Cass")

    actor = await authenticate_staff(" CASS@example.com", PASSWORD)

    assert actor.session_id is not None
    assert actor == Actor(
        kind="staff",
        id=created.id,
        role=StaffRole.CASHIER,
        store_codes=("S1",),
        name="Cass",
        session_id=actor.session_id,
    )
    assert (await StaffUser.get(id=created.id)).last_login_at == clock.now()


async def test_each_sign_in_starts_its_own_session(db: str) -> None:
    # given one login shared by two tills
    await create_staff("till@example.com", PASSWORD, "cashier", ["S1"])

    # when both sign in
    first = await authenticate_staff("till@example.com", PASSWORD)
    second = await authenticate_staff("till@example.com", PASSWORD)

    # then they are the same account in two sessions, whose guesses are counted apart
    assert first.id == second.id
    assert len({first.session_id, second.session_id}) == 2
    assert all(re.fullmatch("[0-9a-f]{32}", a.session_id or "") for a in (first, second))
    assert first.attempt_subject == f"staff_session:{first.session_id}"
    assert first.attempt_subject != second.attempt_subject


async def test_a_token_names_an_active_account_in_a_well_formed_session(db: str) -> None:
    created = await create_staff("max@example.com", PASSWORD, "manager")
    session = new_session_id()
    subject = token_subject(await authenticate_staff("max@example.com", PASSWORD))

    actor = await actor_for_subject(subject, session)

    assert subject == f"staff:{created.id}"
    assert actor == Actor(
        kind="staff", id=created.id, role=StaffRole.MANAGER, store_codes=(), name="max@example.com", session_id=session
    )
    # a token without a session (issued before sessions had ids) or with a malformed one names no one
    for bad in (None, "", "g" * 32, session[:31], session + "0", session.upper(), "٣" * 32):
        assert await actor_for_subject(subject, bad) is None, bad
    assert await actor_for_subject(f"staff:{created.id + 1}", session) is None
    assert await actor_for_subject(str(created.id), session) is None


async def test_wrong_password_and_unknown_email_get_the_same_answer_after_the_same_work(
    db: str, hasher: CountingHasher
) -> None:
    await create_staff("cass@example.com", PASSWORD, "cashier")

    with pytest.raises(InvalidCredentials) as wrong_password:
        await authenticate_staff("cass@example.com", PASSWORD + "!")
    with pytest.raises(InvalidCredentials) as unknown_email:
        await authenticate_staff("nobody@example.com", PASSWORD)

    assert (wrong_password.value.code, wrong_password.value.message) == (
        "INVALID_CREDENTIALS",
        "wrong email or password",
    )
    assert (unknown_email.value.code, unknown_email.value.message) == ("INVALID_CREDENTIALS", "wrong email or password")
    # the unknown email was verified against a dummy hash with the same argon2 parameters as a real one
    real, dummy = hasher.verified
    assert real == (await StaffUser.get()).password_hash
    assert dummy != real
    assert dummy.split("$")[:4] == real.split("$")[:4]


async def test_a_disabled_account_cannot_sign_in_even_with_the_right_password(db: str) -> None:
    created = await create_staff("cass@example.com", PASSWORD, "cashier")
    await deactivate_staff(created.id)

    with pytest.raises(InvalidCredentials):
        await authenticate_staff("cass@example.com", PASSWORD)
    assert (await StaffUser.get(id=created.id)).last_login_at is None


async def test_an_overlong_password_is_refused_without_hashing(db: str, hasher: CountingHasher) -> None:
    await create_staff("cass@example.com", PASSWORD, "cashier")

    with pytest.raises(InvalidCredentials):
        await authenticate_staff("cass@example.com", "x" * 1025)
    assert hasher.verified == []


async def test_five_failures_in_fifteen_minutes_lock_the_email_even_for_the_right_password(
    db: str, clock: FrozenClock
) -> None:
    # given five wrong passwords within 15 minutes
    await create_staff("cass@example.com", PASSWORD, "cashier")
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await authenticate_staff("Cass@example.com", "wrong password!")
        clock.advance(timedelta(minutes=2))

    # when the right password comes next, it is refused without being checked
    with pytest.raises(TooManyAttempts) as refused:
        await authenticate_staff("cass@example.com", PASSWORD)
    assert refused.value.code == "TOO_MANY_ATTEMPTS"

    # then once the first failure is 15 minutes old, the account opens again and the failures are cleared
    clock.advance(timedelta(minutes=5))
    assert (await authenticate_staff("cass@example.com", PASSWORD)).kind == "staff"
    assert await ThrottleCounter.all().count() == 0


@pytest.mark.postgres_only
async def test_parallel_guesses_cannot_get_past_the_limit(db: str) -> None:
    await create_staff("cass@example.com", PASSWORD, "cashier")

    results = await asyncio.gather(
        *(authenticate_staff("cass@example.com", f"guess number {i}") for i in range(20)), return_exceptions=True
    )

    # exactly 5 guesses were checked, however many arrived at once
    assert sum(isinstance(r, InvalidCredentials) for r in results) == 5
    assert sum(isinstance(r, TooManyAttempts) for r in results) == 15
    with pytest.raises(TooManyAttempts):
        await authenticate_staff("cass@example.com", PASSWORD)


async def test_unknown_emails_are_throttled_too(db: str) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await authenticate_staff("nobody@example.com", PASSWORD)

    with pytest.raises(TooManyAttempts):
        await authenticate_staff("nobody@example.com", PASSWORD)


async def test_a_successful_sign_in_forgives_earlier_failures(db: str) -> None:
    await create_staff("cass@example.com", PASSWORD, "cashier")
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate_staff("cass@example.com", "wrong password!")

    await authenticate_staff("cass@example.com", PASSWORD)

    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate_staff("cass@example.com", "wrong password!")
    assert (await authenticate_staff("cass@example.com", PASSWORD)).kind == "staff"


async def test_a_hash_with_old_parameters_is_upgraded_at_sign_in(
    db: str, monkeypatch: pytest.MonkeyPatch, hasher: CountingHasher
) -> None:
    created = await create_staff("cass@example.com", PASSWORD, "cashier")
    old_hash = (await StaffUser.get(id=created.id)).password_hash
    monkeypatch.setattr(staff, "_hasher", CountingHasher(time_cost=2))

    await authenticate_staff("cass@example.com", PASSWORD)

    new_hash = (await StaffUser.get(id=created.id)).password_hash
    assert "t=1," in old_hash
    assert "t=2," in new_hash
    assert (await authenticate_staff("cass@example.com", PASSWORD)).id == created.id


async def test_the_actor_is_rebuilt_from_the_account_and_gone_once_deactivated(db: str) -> None:
    created = await create_staff("max@example.com", PASSWORD, "manager")

    assert await actor_for_staff(created.id) == Actor(
        kind="staff", id=created.id, role=StaffRole.MANAGER, store_codes=(), name="max@example.com"
    )
    await deactivate_staff(created.id)
    assert await actor_for_staff(created.id) is None
    assert await actor_for_staff(created.id + 1) is None
    with pytest.raises(NotFound):
        await deactivate_staff(created.id + 1)


# --- API keys -------------------------------------------------------------------------------------


async def test_an_api_key_is_shown_once_and_stored_hashed(db: str, clock: FrozenClock) -> None:
    key, raw = await create_api_key("POS store 1", "cashier", "S1")

    match = re.fullmatch(r"kbk_([0-9a-f]{12})_([0-9a-f]{64})", raw)
    assert match is not None
    row = await ApiKey.get(id=key.id)
    assert (row.name, row.prefix, row.role, row.store_code, row.active) == (
        "POS store 1",
        match[1],
        StaffRole.CASHIER,
        "S1",
        True,
    )
    assert match[2] not in row.key_hash
    assert len(row.key_hash) == 64
    assert (row.created_at, row.last_used_at) == (clock.now(), None)


async def test_an_api_key_authenticates_as_its_integration(db: str, clock: FrozenClock) -> None:
    key, raw = await create_api_key("POS store 1", "cashier", "S1")

    actor = await authenticate_api_key(raw)

    assert actor == Actor(kind="api_key", id=key.id, role=StaffRole.CASHIER, store_codes=("S1",), name="POS store 1")
    assert (await ApiKey.get(id=key.id)).last_used_at == clock.now()


async def test_last_used_is_refreshed_at_most_once_a_minute(db: str, clock: FrozenClock) -> None:
    key, raw = await create_api_key("web shop", "manager")
    first_use = clock.now()
    await authenticate_api_key(raw)

    clock.advance(timedelta(seconds=59))
    await authenticate_api_key(raw)
    assert (await ApiKey.get(id=key.id)).last_used_at == first_use

    clock.advance(timedelta(seconds=1))
    await authenticate_api_key(raw)
    assert (await ApiKey.get(id=key.id)).last_used_at == clock.now()


async def test_a_revoked_key_is_refused(db: str) -> None:
    key, raw = await create_api_key("POS store 1", "cashier", "S1")

    await revoke_api_key(key.id)

    with pytest.raises(InvalidCredentials) as refused:
        await authenticate_api_key(raw)
    assert (refused.value.code, refused.value.message) == ("INVALID_CREDENTIALS", "invalid API key")
    with pytest.raises(NotFound):
        await revoke_api_key(key.id + 1)


async def test_malformed_and_forged_keys_are_refused(db: str) -> None:
    _, raw = await create_api_key("POS store 1", "cashier", "S1")
    tag, prefix, secret = raw.split("_")
    forged = [
        "",
        "kbk",
        "kbk__",
        raw.upper(),
        f"xyz_{prefix}_{secret}",
        f"{tag}_{prefix}_{secret[:-1]}",  # too short
        f"{tag}_{prefix}_{secret}0",  # too long
        f"{tag}_{prefix}_{'0' * 64}",  # the right prefix, a wrong secret
        f"{tag}_{'0' * 12}_{secret}",  # an unknown prefix with the right secret
        f"{tag}_{prefix}_{secret}_extra",
    ]
    for candidate in forged:
        with pytest.raises(InvalidCredentials):
            await authenticate_api_key(candidate)
    assert (await ApiKey.get()).last_used_at is None


@pytest.mark.parametrize(
    ("name", "role", "store", "field"), [(" ", "cashier", None, "name"), ("x", "boss", None, "role")]
)
async def test_bad_api_key_input_is_refused(db: str, name: str, role: str, store: str | None, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await create_api_key(name, role, store)

    assert refused.value.field == field
    assert await ApiKey.all().count() == 0
