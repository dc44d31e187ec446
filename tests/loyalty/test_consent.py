"""loyalty.consent: the one way to change a consent, its history, and the member's cache of (push, marketing)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest

from loyalty import consent
from loyalty.clock import FrozenClock
from loyalty.errors import InvalidInput, MemberNotFound
from loyalty.members import ProfileChanges, update_profile
from loyalty.models import (
    Consent,
    ConsentChange,
    ConsentChannel,
    ConsentPurpose,
    ConsentSource,
    Member,
    Program,
)
from tests.invariants import assert_consent_cache
from tests.loyalty.ledger_helpers import new_member

PUSH, MARKETING = ConsentChannel.PUSH, ConsentPurpose.MARKETING


async def test_staff_and_system_changes_are_recorded_with_their_source_and_actor(
    program: Program, clock: FrozenClock
) -> None:
    # given a member who opted in in the app
    member = await new_member("uid-consent")
    await consent.set_consent(member.id, PUSH, MARKETING, True, ConsentSource.APP, consent.member_actor(member.id))

    # when staff withdraw it on the member's behalf, then a bounced channel is switched off by klubb
    clock.advance(timedelta(hours=1))
    state = await consent.set_consent(member.id, PUSH, MARKETING, False, ConsentSource.STAFF, "staff:7")
    await consent.set_consent(member.id, ConsentChannel.SMS, MARKETING, False, ConsentSource.SYSTEM, "system")

    # then the current consent, the history and the cache agree
    assert state == consent.ConsentState(PUSH, MARKETING, False, clock.now())
    changes = await ConsentChange.filter(member_id=member.id).order_by("id").values_list("granted", "source", "actor")
    assert changes == [
        (True, ConsentSource.APP, f"member:{member.id}"),
        (False, ConsentSource.STAFF, "staff:7"),
        (False, ConsentSource.SYSTEM, "system"),
    ]
    cached = await Member.get(id=member.id)
    assert (cached.marketing_consent, cached.marketing_consent_at) == (False, clock.now())
    assert (await consent.has_marketing_consent(member.id), await consent.members_with_marketing_consent([])) == (
        False,
        set(),
    )


async def test_marketing_consent_is_read_from_the_record_for_a_batch(program: Program) -> None:
    anna, bo, cid = [await new_member(f"uid-batch-{n}") for n in range(3)]
    await consent.set_consent(anna.id, PUSH, MARKETING, True, ConsentSource.APP, "member:1")
    await consent.set_consent(bo.id, ConsentChannel.EMAIL, MARKETING, True, ConsentSource.APP, "member:2")

    found = await consent.members_with_marketing_consent([anna.id, bo.id, cid.id, 10**9])

    assert found == {anna.id}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("push", MARKETING, True, ConsentSource.APP, "member:1"), "channel"),
        ((PUSH, "marketing", True, ConsentSource.APP, "member:1"), "purpose"),
        ((PUSH, MARKETING, 1, ConsentSource.APP, "member:1"), "granted"),
        ((PUSH, MARKETING, True, "app", "member:1"), "source"),
        ((PUSH, MARKETING, True, ConsentSource.APP, ""), "actor"),
        ((PUSH, MARKETING, True, ConsentSource.APP, "member:\x00"), "actor"),
        ((PUSH, MARKETING, True, ConsentSource.APP, "x" * 65), "actor"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    program: Program, args: tuple[object, ...], field: str
) -> None:
    member = await new_member("uid-consent-bad")

    with pytest.raises(InvalidInput) as refused:
        await consent.set_consent(member.id, *args)  # type: ignore[arg-type]

    assert refused.value.field == field
    assert (await Consent.all().count(), await ConsentChange.all().count()) == (0, 0)


async def test_a_missing_member_is_member_not_found(program: Program) -> None:
    with pytest.raises(MemberNotFound):
        await consent.set_consent(10**9, PUSH, MARKETING, True, ConsentSource.APP, "member:1")


async def test_the_invariant_catches_a_cache_written_around_the_record(program: Program) -> None:
    # given a member whose cache was set directly (not through loyalty.consent)
    member = await new_member("uid-around")
    await Member.filter(id=member.id).update(marketing_consent=True)

    # then the invariant says so (and is satisfied again once the record says the same)
    with pytest.raises(AssertionError, match="marketing_consent True but its consent says False"):
        await assert_consent_cache()
    await Member.filter(id=member.id).update(marketing_consent=False)


@pytest.mark.postgres_only
async def test_concurrent_changes_of_one_consent_are_each_recorded_and_the_cache_follows_the_last(
    program: Program,
) -> None:
    # given a member
    member = await new_member("uid-consent-race")

    # when the app, the profile screen and staff change the marketing consent at once
    async def profile(granted: bool) -> None:
        await update_profile(member.id, ProfileChanges(marketing_consent=granted))

    await asyncio.gather(
        *(consent.set_consent(member.id, PUSH, MARKETING, n % 2 == 0, ConsentSource.APP, "member:1") for n in range(4)),
        profile(True),
        profile(False),
    )

    # then one consent row; its history alternates (each recorded change is a real change: a first refusal counts,
    # it answers a question never asked), ending at the row's value, which the cache equals (as the invariant checks
    # after every test)
    current = await Consent.get(member_id=member.id, channel=PUSH, purpose=MARKETING)
    history = await ConsentChange.filter(member_id=member.id).order_by("id").values_list("granted", flat=True)
    assert history
    assert all(a != b for a, b in itertools.pairwise(history))
    assert history[-1] == current.granted == (await Member.get(id=member.id)).marketing_consent
