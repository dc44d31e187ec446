"""Guessing voucher codes at the till: counted per staff session, per API key and per member, claimed before the code
is looked at (so concurrency cannot get more guesses evaluated), a real voucher's code never counted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from loyalty import vouchers
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError
from loyalty.members import enroll_member
from loyalty.models import Member, Program, StaffRole, ThrottleCounter, Voucher
from loyalty.staff import new_session_id

SESSION_A, SESSION_B = new_session_id(), new_session_id()


def till(session_id: str = SESSION_A, staff_id: int = 1) -> Actor:
    """A till signed in with the shared cashier login (staff account 1) in its own session."""
    return Actor(kind="staff", id=staff_id, role=StaffRole.CASHIER, store_codes=("S1",), session_id=session_id)


def api_key(key_id: int = 1) -> Actor:
    return Actor(kind="api_key", id=key_id, role=StaffRole.CASHIER, store_codes=("S1",), name="POS")


def wrong(n: int) -> str:
    return f"{n:016d}"  # digits are Crockford base32 too: well-formed, but no voucher has them


async def attempt(actor: Actor, code: str, member: Member | None = None) -> str:
    """ "ok" or the refusal's code."""
    try:
        await vouchers.redeem_voucher(actor, code=code, store_code="S1", member_id=member.id if member else None)
    except DomainError as refused:
        return refused.code
    return "ok"


async def issue(member: Member) -> Voucher:
    async with in_transaction() as conn:
        return await vouchers.issue_voucher(conn, member.id)


async def counted() -> dict[str, int]:
    rows = await ThrottleCounter.filter(scope="voucher_code").values_list("subject", "attempts")
    return dict(sorted((subject, n) for subject, n in rows if n))


async def test_the_5th_wrong_code_is_answered_and_the_6th_attempt_refused_while_right_codes_do_not_count(
    program: Program,
) -> None:
    anna, _ = await enroll_member("uid-anna")
    first, second, third = await issue(anna), await issue(anna), await issue(anna)

    # 4 wrong codes (limit - 1), a right one, the 5th wrong one (limit), then a right one (limit + 1)
    answers = [await attempt(till(), wrong(n)) for n in range(4)]
    answers.append(await attempt(till(), first.code))
    answers.append(await attempt(till(), wrong(4)))
    answers.append(await attempt(till(), second.code))

    assert answers == ["INVALID_CODE"] * 4 + ["ok", "INVALID_CODE", "TOO_MANY_ATTEMPTS"]
    assert await counted() == {f"staff_session:{SESSION_A}": 5}
    assert (await Voucher.get(id=second.id)).status == "active"
    assert (await Voucher.get(id=third.id)).status == "active"


async def test_two_tills_sharing_a_login_do_not_lock_each_other(program: Program) -> None:
    # given till A, signed in with the shared login, locked by 5 wrong codes
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)
    for n in range(5):
        await attempt(till(SESSION_A), wrong(n))

    # when till B, the same account in another session, redeems; and till A tries
    on_a = await attempt(till(SESSION_A), voucher.code)
    on_b = await attempt(till(SESSION_B), voucher.code)

    # then only A is refused
    assert (on_a, on_b) == ("TOO_MANY_ATTEMPTS", "ok")
    assert await counted() == {f"staff_session:{SESSION_A}": 5}


async def test_an_api_key_has_its_own_counter(program: Program) -> None:
    # given a locked till of staff account 1 and a locked API key 2
    anna, _ = await enroll_member("uid-anna")
    vouchers_ = [await issue(anna) for _ in range(3)]
    for n in range(5):
        await attempt(till(), wrong(n))
        await attempt(api_key(2), wrong(n))

    # then API key 1 (the same id as the staff account) and another session of the account are not locked
    assert await attempt(api_key(1), vouchers_[0].code) == "ok"
    assert await attempt(api_key(2), vouchers_[1].code) == "TOO_MANY_ATTEMPTS"
    assert await attempt(till(SESSION_B), vouchers_[1].code) == "ok"
    assert await counted() == {"api_key:2": 5, f"staff_session:{SESSION_A}": 5}


async def test_a_till_is_locked_for_15_minutes_from_its_first_wrong_code_then_starts_afresh(
    program: Program, clock: FrozenClock
) -> None:
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)
    for n in range(5):
        await attempt(till(), wrong(n))
        clock.advance(timedelta(minutes=1))

    clock.advance(timedelta(minutes=10) - timedelta(microseconds=1))  # the first wrong code is 15 minutes old less 1 µs
    still_locked = await attempt(till(), voucher.code)
    clock.advance(timedelta(microseconds=1))
    afterwards = [await attempt(till(), wrong(n)) for n in range(5, 11)]

    assert still_locked == "TOO_MANY_ATTEMPTS"
    assert afterwards == ["INVALID_CODE"] * 5 + ["TOO_MANY_ATTEMPTS"]


async def test_guesses_at_one_member_from_many_tills_are_bounded(program: Program) -> None:
    # given 5 tills, each with one wrong code for Anna
    anna, _ = await enroll_member("uid-anna")
    bo, _ = await enroll_member("uid-bo")
    annas, bos = await issue(anna), await issue(bo)
    for n in range(5):
        assert await attempt(till(new_session_id()), wrong(n), member=anna) == "INVALID_CODE"

    # when a sixth till tries Anna's right code, and then Bo's
    sixth = till(new_session_id())
    for_anna = await attempt(sixth, annas.code, member=anna)
    for_bo = await attempt(sixth, bos.code, member=bo)

    # then Anna is locked for every till, Bo is not, and the refused attempt counted against no one
    assert (for_anna, for_bo) == ("TOO_MANY_ATTEMPTS", "ok")
    assert (await counted())[f"member:{anna.id}"] == 5
    assert f"staff_session:{sixth.session_id}" not in await counted()
    assert f"member:{bo.id}" not in await counted()


async def test_another_members_voucher_counts_as_a_wrong_code_for_both(program: Program) -> None:
    anna, _ = await enroll_member("uid-anna")
    bo, _ = await enroll_member("uid-bo")
    bos = await issue(bo)

    assert await attempt(till(), bos.code, member=anna) == "INVALID_CODE"
    assert await counted() == {f"member:{anna.id}": 1, f"staff_session:{SESSION_A}": 1}


async def test_the_code_of_a_used_voucher_is_no_guess(program: Program) -> None:
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)
    await attempt(till(), voucher.code)

    again = [await attempt(till(), voucher.code, member=anna) for _ in range(7)]

    assert again == ["ALREADY_REDEEMED"] * 7
    assert await counted() == {}


# --- real concurrency (PostgreSQL) ---------------------------------------------------------------------


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The codes `redeem_voucher` evaluated (it normalizes each code it goes on to look up)."""
    seen: list[str] = []
    normalize = vouchers.normalize_code

    def spy(code: str) -> str:
        seen.append(code)
        return normalize(code)

    monkeypatch.setattr(vouchers, "normalize_code", spy)
    return seen


@pytest.mark.postgres_only
async def test_50_simultaneous_wrong_codes_from_one_till_evaluate_exactly_5(
    program: Program, evaluations: list[str]
) -> None:
    results = await asyncio.gather(*(attempt(till(), wrong(n)) for n in range(50)))

    assert sorted(results) == ["INVALID_CODE"] * 5 + ["TOO_MANY_ATTEMPTS"] * 45
    assert len(evaluations) == 5
    assert await counted() == {f"staff_session:{SESSION_A}": 5}


@pytest.mark.postgres_only
async def test_50_simultaneous_wrong_codes_at_one_member_from_50_tills_evaluate_exactly_5(
    program: Program, evaluations: list[str]
) -> None:
    anna, _ = await enroll_member("uid-anna")
    tills = [till(new_session_id()) for _ in range(50)]

    results = await asyncio.gather(*(attempt(t, wrong(n), member=anna) for n, t in enumerate(tills)))

    assert sorted(results) == ["INVALID_CODE"] * 5 + ["TOO_MANY_ATTEMPTS"] * 45
    assert len(evaluations) == 5
    # the 45 refused tills were not charged for the member's lock
    assert sorted((await counted()).items()) == sorted(
        [(f"member:{anna.id}", 5)]
        + [(f"staff_session:{t.session_id}", 1) for t, r in zip(tills, results, strict=True) if r == "INVALID_CODE"]
    )


@pytest.mark.postgres_only
async def test_two_tills_guessing_at_once_each_get_their_own_5(program: Program, evaluations: list[str]) -> None:
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)

    results = await asyncio.gather(
        *(attempt(till(SESSION_A), wrong(n)) for n in range(25)),
        *(attempt(till(SESSION_B), wrong(n)) for n in range(25)),
        *(attempt(api_key(), wrong(n)) for n in range(25)),
    )

    assert [sorted(results[i : i + 25]) for i in (0, 25, 50)] == [["INVALID_CODE"] * 5 + ["TOO_MANY_ATTEMPTS"] * 20] * 3
    assert len(evaluations) == 15
    assert await attempt(till(new_session_id()), voucher.code) == "ok"
