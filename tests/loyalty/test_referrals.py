"""Referrals: applying a code, the abuse checks, conversion on the first qualifying purchase, the return window,
refunds, the caps, the reward job and the staff review (both engines; races on PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty import jobs, referrals
from loyalty.actors import Actor, Forbidden
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, InvalidInput
from loyalty.models import AuditLog, Member, Program, Referral, ReferralStatus, StaffRole
from loyalty.refresh_tokens import start_session
from tests.loyalty.ledger_helpers import balances, configure, lots, row_counts
from tests.loyalty.purchase_helpers import buy, line
from tests.loyalty.referral_helpers import DEVICE_KEY, code, member, policy, refer, referral_events

MANAGER = Actor(kind="api_key", id=2, role=StaffRole.MANAGER, name="Back office")
CASHIER = Actor(kind="api_key", id=3, role=StaffRole.CASHIER, name="Till")
DAY = timedelta(days=1)


def flags(referral: Referral) -> list[str]:
    return [flag["check"] for flag in referral.flags]


async def refused(code_text: object, referee_id: int) -> tuple[str, str | None]:
    """The refusal's (code, field) of applying `code_text`; asserts nothing was written."""
    before = await row_counts()
    referrals_before = await Referral.all().count()
    with pytest.raises(DomainError) as caught:
        await referrals.apply_referral(referee_id, code_text)
    assert await row_counts() == before
    assert await Referral.all().count() == referrals_before
    return caught.value.code, caught.value.field


# --- applying ---------------------------------------------------------------------------------------


async def test_applying_a_code_records_the_referral_and_emits_applied(program: Program, clock: FrozenClock) -> None:
    # given a referrer and a new member
    await policy()
    ann, bob = await member("ann"), await member("bob")

    # when Bob applies Ann's code, typed in lower case with a dash
    typed = (await code(ann.id)).lower()
    referral = await referrals.apply_referral(bob.id, f"{typed[:4]}-{typed[4:]}")

    # then
    stored = await Referral.get(id=referral.id)
    assert (stored.referrer_id, stored.referee_id, stored.code, stored.status, stored.flags) == (
        ann.id,
        bob.id,
        await code(ann.id),
        ReferralStatus.APPLIED,
        [],
    )
    assert stored.applied_at == clock.now()
    assert await referral_events() == [("referral.applied", bob.id)]


async def test_unknown_own_and_second_codes_are_refused_and_write_nothing(program: Program) -> None:
    # given Ann, Bob (referred by Ann) and Cid
    await policy()
    ann, bob, cid = await member("ann"), await member("bob"), await member("cid")
    await refer(ann, bob)

    # when / then
    assert await refused("AAAAAAAA", cid.id) == ("CODE_UNKNOWN", "code")
    assert await refused(await code(cid.id), cid.id) == ("OWN_CODE", "code")
    assert await refused(await code(cid.id), bob.id) == ("ALREADY_REFERRED", "code")


async def test_hostile_codes_are_refused_precisely(program: Program) -> None:
    # given
    await policy()
    ann, bob = await member("ann"), await member("bob")
    real = await code(ann.id)
    cyrillic = real.replace("A", "\u0410").replace("C", "\u0421").replace("E", "\u0415")  # look-alike letters

    # when / then: control characters and walls of text are bad input; look-alikes are no code of ours
    assert await refused(real[:4] + "\x00" + real[4:], bob.id) == ("INVALID", "code")
    assert await refused("A" * 10_000, bob.id) == ("INVALID", "code")
    assert await refused("\ud800" + real, bob.id) == ("INVALID", "code")
    assert await refused(12345678, bob.id) == ("INVALID", "code")
    if cyrillic != real:
        assert await refused(cyrillic, bob.id) == ("CODE_UNKNOWN", "code")
    assert await refused("\uff21" * 8, bob.id) == ("CODE_UNKNOWN", "code")  # fullwidth A


async def test_referrals_off_or_unconfigured_refuse(program: Program) -> None:
    # given no policy
    ann, bob = await member("ann"), await member("bob")
    ann_code = await code(ann.id)

    # then
    assert await refused(ann_code, bob.id) == ("REFERRALS_OFF", "code")
    await policy(enabled=False)
    assert await refused(ann_code, bob.id) == ("REFERRALS_OFF", "code")


async def test_the_window_is_exactly_apply_days_after_enrolment(program: Program, clock: FrozenClock) -> None:
    # given two members who joined now, with a 14-day window
    await policy(apply_days=14)
    ann, bob, cid = await member("ann"), await member("bob"), await member("cid")

    # when 14 days and 1 second pass, Cid is too late
    clock.advance(timedelta(days=14, seconds=1))
    assert await refused(await code(ann.id), cid.id) == ("WINDOW_CLOSED", "code")

    # and exactly 14 days after joining still counts
    clock.set(bob.created_at + timedelta(days=14))
    assert (await refer(ann, bob)).status == ReferralStatus.APPLIED


async def test_concurrent_applies_of_one_referee_make_one_referral(program: Program) -> None:
    # given
    await policy()
    ann, cid, bob = await member("ann"), await member("cid"), await member("bob")

    # when Bob applies two codes at once
    results = await asyncio.gather(refer(ann, bob), refer(cid, bob), return_exceptions=True)

    # then one referral; the other is told he was referred already
    assert sorted(type(r).__name__ for r in results) == ["AlreadyReferred", "Referral"]
    assert await Referral.filter(referee_id=bob.id).count() == 1


# --- abuse checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer_email", "referee_email", "flagged"),
    [
        ("ann.smith@gmail.com", "annsmith+club@gmail.com", True),  # Gmail ignores dots and +tags
        ("Ann.Smith@googlemail.com", "annsmith@gmail.com", True),  # the same mailbox, Google's other domain
        ("ann+a@outlook.com", "ANN@outlook.com", True),  # +tags (not dots) at Outlook
        ("ann.smith@outlook.com", "annsmith@outlook.com", False),  # dots matter at Outlook
        ("ann.smith@example.com", "annsmith@example.com", False),  # and at providers we know nothing about
        ("ann+a@example.com", "ann@example.com", False),
    ],
)
async def test_self_referral_by_email_key(
    program: Program, referrer_email: str, referee_email: str, flagged: bool
) -> None:
    # given
    await policy()
    ann = await member("ann", email=referrer_email)
    bob = await member("bob", email=referee_email)

    # when
    referral = await refer(ann, bob)

    # then
    if flagged:
        assert referral.status == ReferralStatus.FLAGGED
        assert referral.flags[0]["check"] == "SELF_REFERRAL_EMAIL"
        assert referral.flags[0]["detail"].startswith("both accounts' emails reach the mailbox ")
        assert await referral_events() == [("referral.applied", bob.id), ("referral.flagged", bob.id)]
    else:
        assert (referral.status, referral.flags) == (ReferralStatus.APPLIED, [])


async def test_self_referral_by_phone_written_another_way(program: Program) -> None:
    # given the same number, once with spaces and a dash
    await policy()
    ann = await member("ann", phone="+46 70-123 45 67")
    bob = await member("bob", phone="+46701234567")
    cid = await member("cid", phone="+46701234568")

    # then Bob is flagged, Cid (another number) is not
    bobs = await refer(ann, bob)
    assert (bobs.status, bobs.flags) == (
        ReferralStatus.FLAGGED,
        [{"check": "SELF_REFERRAL_PHONE", "detail": "both accounts have the phone number +46701234567"}],
    )
    assert (await refer(ann, cid)).status == ReferralStatus.APPLIED


async def test_self_referral_by_device(program: Program) -> None:
    # given Ann signed in on device D; Bob's own session is on device E
    await policy()
    ann, bob, cid = await member("ann"), await member("bob"), await member("cid")
    await start_session(ann.id, device_hash=referrals.device_hash("device-D", DEVICE_KEY))
    await start_session(bob.id, device_hash=referrals.device_hash("device-D", DEVICE_KEY))

    # when Bob applies (without saying which device) and Cid applies from device E
    bobs = await refer(ann, bob)
    cids = await refer(ann, cid, device_id="device-E")

    # then Bob's session on Ann's device flags him; Cid's device is not Ann's
    assert flags(bobs) == ["SELF_REFERRAL_DEVICE"]
    assert bobs.flags[0]["detail"] == "the friend uses the app on a device the referrer signed in on"
    assert cids.status == ReferralStatus.APPLIED
    # and the device id itself is nowhere: only its keyed hash
    assert cids.device_hash == referrals.device_hash("device-E", DEVICE_KEY)
    assert cids.device_hash != referrals.device_hash("device-E", b"another key" * 4)


async def test_rings_direct_and_longer(program: Program) -> None:
    # given Ann referred Bob, Bob referred Cid
    await policy()
    ann, bob, cid, dan = await member("ann"), await member("bob"), await member("cid"), await member("dan")
    await refer(ann, bob)
    await refer(bob, cid)

    # when Ann applies Cid's code (Cid was referred by Bob, who was referred by Ann)
    ring = await refer(cid, ann)

    # then a ring through one other member; Dan applying Cid's code is no ring
    assert ring.flags == [
        {"check": "RING", "detail": "the friend referred the referrer through 1 other member(s): a referral ring"}
    ]
    assert (await refer(cid, dan)).status == ReferralStatus.APPLIED


async def test_a_direct_ring(program: Program) -> None:
    # given Ann referred Bob
    await policy()
    ann, bob = await member("ann"), await member("bob")
    await refer(ann, bob)

    # when Ann applies Bob's code
    ring = await refer(bob, ann)

    # then
    assert ring.flags == [{"check": "RING", "detail": "the friend referred the referrer directly: a referral ring"}]


async def test_many_referees_from_one_device_within_the_window(program: Program, clock: FrozenClock) -> None:
    # given at most 2 referees per device in 72 hours
    await policy(device_max_referees=2, device_window_hours=72)
    ann = await member("ann")
    friends = [await member(f"friend-{n}") for n in range(4)]

    # when the first two apply from one device, the third 72 hours after the first, the fourth 1 s later
    first = await refer(ann, friends[0], device_id="shared")
    clock.advance(timedelta(hours=1))
    second = await refer(ann, friends[1], device_id="shared")
    clock.advance(timedelta(hours=72) - timedelta(hours=1))
    third = await refer(ann, friends[2], device_id="shared")  # the first is exactly 72 h ago: still within
    clock.advance(timedelta(seconds=1))
    fourth = await refer(ann, friends[3], device_id="shared")  # the first is out, the second and third within

    # then
    assert [r.status for r in (first, second)] == [ReferralStatus.APPLIED] * 2
    assert third.flags == [
        {"check": "DEVICE_VELOCITY", "detail": "3 referrals from this device within 72 hours (more than 2)"}
    ]
    assert fourth.flags == [
        {"check": "DEVICE_VELOCITY", "detail": "3 referrals from this device within 72 hours (more than 2)"}
    ]


async def test_device_window_edge_lets_the_oldest_drop_out(program: Program, clock: FrozenClock) -> None:
    # given 2 referees from one device
    await policy(device_max_referees=2, device_window_hours=24)
    ann = await member("ann")
    friends = [await member(f"friend-{n}") for n in range(3)]
    await refer(ann, friends[0], device_id="shared")
    await refer(ann, friends[1], device_id="shared")

    # when the third comes 24 h + 1 s later
    clock.advance(timedelta(hours=24, seconds=1))
    third = await refer(ann, friends[2], device_id="shared")

    # then the first two are out of the window: not flagged
    assert third.status == ReferralStatus.APPLIED


async def test_a_returning_member_with_a_new_account(program: Program, clock: FrozenClock) -> None:
    # given Old joined a year ago as old.timer@gmail.com; now a new account with oldtimer+new@gmail.com
    await policy()
    old = await member("old", email="old.timer@gmail.com")
    ann = await member("ann")
    clock.advance(timedelta(days=365))
    new = await member("new", email="oldtimer+new@gmail.com")
    fresh = await member("fresh", email="old.timer@example.com")

    # when both apply Ann's code
    returning = await refer(ann, new)
    first_timer = await refer(ann, fresh)

    # then
    assert returning.flags == [
        {"check": "RETURNING_MEMBER", "detail": "an older account has the friend's email or phone: a returning member"}
    ]
    assert first_timer.status == ReferralStatus.APPLIED
    assert old.id  # the older account itself is untouched


# --- conversion ---------------------------------------------------------------------------------------


async def test_min_spend_edge_converts_and_credits_pending_bonuses(program: Program, clock: FrozenClock) -> None:
    # given Bob referred by Ann; min spend 50.00
    await policy(min_spend=5_000)
    ann, bob = await member("ann"), await member("bob")
    referral = await refer(ann, bob)

    # when Bob spends 49.99, then 50.00
    await buy(bob.id, "R1", [line("A", 4_999)])
    assert (await Referral.get(id=referral.id)).status == ReferralStatus.APPLIED
    recorded = await buy(bob.id, "R2", [line("A", 5_000)])

    # then converted, both bonuses pending until that purchase's window ends
    stored = await Referral.get(id=referral.id)
    assert (stored.status, stored.purchase_id, stored.available_at, stored.referee_points, stored.referrer_points) == (
        ReferralStatus.CONVERTED,
        recorded.purchase_id,
        recorded.available_at,
        100,
        200,
    )
    assert stored.converted_at == clock.now()
    assert await balances(bob.id) == (0, 49 + 50 + 100, 199)
    assert await balances(ann.id) == (0, 200, 200)
    assert await lots(ann.id) == [(200, 200, "pending")]
    assert await referral_events() == [("referral.applied", bob.id), ("referral.converted", ann.id)]
    # and a later purchase converts nothing more
    await buy(bob.id, "R3", [line("A", 9_000)])
    assert await balances(ann.id) == (0, 200, 200)


async def test_bonuses_become_available_exactly_when_the_window_ends(program: Program, clock: FrozenClock) -> None:
    # given a converted referral
    await policy()
    ann, bob = await member("ann"), await member("bob")
    referral = await refer(ann, bob)
    recorded = await buy(bob.id, "R1", [line("A", 5_000)])

    # when the clock is 1 s before the window's end
    clock.set(recorded.available_at - timedelta(seconds=1))
    assert (await jobs.expire_points(), await jobs.reward_referrals()) == (0, 0)
    assert await balances(ann.id) == (0, 200, 200)

    # and exactly at it
    clock.set(recorded.available_at)
    assert await jobs.expire_points() == 2
    assert await jobs.reward_referrals() == 1

    # then
    assert await balances(ann.id) == (200, 0, 200)
    assert await balances(bob.id) == (150, 0, 150)
    stored = await Referral.get(id=referral.id)
    assert (stored.status, stored.rewarded_at) == (ReferralStatus.REWARDED, recorded.available_at)
    assert (await referral_events())[-1] == ("referral.rewarded", ann.id)
    assert await jobs.reward_referrals() == 0  # once


async def test_a_refund_inside_the_window_cancels_both_bonuses(program: Program, clock: FrozenClock) -> None:
    # given a converted referral of a 60.00 purchase, min spend 50.00
    await policy()
    ann, bob = await member("ann"), await member("bob")
    referral = await refer(ann, bob)
    recorded = await buy(bob.id, "R1", [line("A", 6_000)])

    # when 10.00 comes back (net 50.00: still qualifies), then 0.01 more, 1 s before the window ends
    await referrals_refund("R1", "F1", 1_000)
    assert (await Referral.get(id=referral.id)).status == ReferralStatus.CONVERTED
    clock.set(recorded.available_at - timedelta(seconds=1))
    await referrals_refund("R1", "F2", 1)

    # then both bonuses are void and the referral cancelled
    stored = await Referral.get(id=referral.id)
    assert (stored.status, stored.cancelled_at) == (ReferralStatus.CANCELLED, clock.now())
    assert await balances(ann.id) == (0, 0, 0)
    assert await lots(ann.id) == [(200, 0, "void")]
    assert await balances(bob.id) == (0, 50, 50)
    assert await lots(bob.id) == [(60, 50, "pending"), (100, 0, "void")]
    assert (await referral_events())[-1] == ("referral.cancelled", ann.id)


async def test_a_refund_after_the_window_takes_nothing_back(program: Program, clock: FrozenClock) -> None:
    # given a converted referral whose window ended
    await policy()
    ann, bob = await member("ann"), await member("bob")
    referral = await refer(ann, bob)
    recorded = await buy(bob.id, "R1", [line("A", 6_000)])
    clock.set(recorded.available_at)

    # when all of it comes back
    await referrals_refund("R1", "F1", 6_000)

    # then the bonuses stay
    assert (await Referral.get(id=referral.id)).status == ReferralStatus.CONVERTED
    await jobs.expire_points()
    assert await balances(ann.id) == (200, 0, 200)


async def referrals_refund(receipt_id: str, refund_id: str, amount: int) -> None:
    from loyalty import purchases

    await purchases.refund_purchase(CASHIER, store_code="S1", receipt_id=receipt_id, refund_id=refund_id, amount=amount)


async def test_the_payment_card_of_the_referrer_flags_at_conversion(program: Program) -> None:
    # given Ann paid with card X; Bob referred by Ann
    await policy()
    ann, bob, cid = await member("ann"), await member("bob"), await member("cid")
    await buy(ann.id, "A1", [line("A", 1_000)], payment_fingerprint="card-X")
    referral = await refer(ann, bob)
    other = await refer(ann, cid)

    # when Bob's qualifying purchase is paid with card X, Cid's with card Y
    recorded = await buy(bob.id, "B1", [line("A", 5_000)], payment_fingerprint="card-X")
    await buy(cid.id, "C1", [line("A", 5_000)], payment_fingerprint="card-Y")

    # then Bob's referral is flagged with the purchase kept for the review, no bonus; Cid's converted
    stored = await Referral.get(id=referral.id)
    assert (stored.status, stored.purchase_id, stored.available_at, stored.flags) == (
        ReferralStatus.FLAGGED,
        recorded.purchase_id,
        recorded.available_at,
        [
            {
                "check": "SELF_REFERRAL_CARD",
                "detail": "the friend's qualifying purchase was paid with the referrer's card",
            }
        ],
    )
    assert (await Referral.get(id=other.id)).status == ReferralStatus.CONVERTED
    assert await balances(ann.id) == (0, 10 + 200, 210)
    assert ("referral.flagged", bob.id) in await referral_events()


@pytest.mark.parametrize("fingerprint", ["", " ", "a\x00b", "x" * 201, "\u200bcard"])
async def test_a_bad_payment_fingerprint_is_refused_before_anything_is_written(
    program: Program, fingerprint: str
) -> None:
    # given
    ann = await member("ann")
    before = await row_counts()

    # when / then
    with pytest.raises(InvalidInput) as caught:
        await buy(ann.id, "A1", [line("A", 1_000)], payment_fingerprint=fingerprint)
    assert caught.value.field == "payment_fingerprint"
    assert await row_counts() == before


# --- caps ---------------------------------------------------------------------------------------------


async def test_the_lifetime_cap(program: Program) -> None:
    # given a lifetime cap of 1
    await policy(referrer_cap_lifetime=1)
    ann, bob, cid = await member("ann"), await member("bob"), await member("cid")
    await refer(ann, bob)
    second = await refer(ann, cid)

    # when both convert
    await buy(bob.id, "B1", [line("A", 5_000)])
    await buy(cid.id, "C1", [line("A", 5_000)])

    # then the second converts with the referrer's bonus 0, and says why
    stored = await Referral.get(id=second.id)
    assert (stored.status, stored.referee_points, stored.referrer_points, stored.flags) == (
        ReferralStatus.CONVERTED,
        100,
        0,
        [{"check": "REFERRER_CAP", "detail": "the referrer reached the lifetime cap of 1 rewarded referrals"}],
    )
    assert await balances(ann.id) == (0, 200, 200)
    assert await balances(cid.id) == (0, 150, 150)


async def test_the_monthly_cap_turns_at_local_midnight_after_a_dst_change(program: Program, clock: FrozenClock) -> None:
    # given Stockholm time (CEST from 29 March 2026: UTC+2) and 1 rewarded referral a month
    await configure(timezone="Europe/Stockholm")
    await policy(referrer_cap_per_month=1, apply_days=60)
    ann = await member("ann")
    friends = [await member(f"friend-{n}") for n in range(3)]
    for friend in friends:
        await refer(ann, friend)
    clock.set(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    await buy(friends[0].id, "F0", [line("A", 5_000)])

    # when one converts at 23:59:59 local on 31 March, another at 00:00 local on 1 April (22:00 UTC)
    clock.set(datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC))
    await buy(friends[1].id, "F1", [line("A", 5_000)])
    clock.set(datetime(2026, 3, 31, 22, 0, tzinfo=UTC))
    await buy(friends[2].id, "F2", [line("A", 5_000)])

    # then March's second is capped, April's first is paid
    paid = [r.referrer_points for r in await Referral.filter(referrer_id=ann.id).order_by("id")]
    assert paid == [200, 0, 200]


def test_month_window_in_the_program_timezone() -> None:
    program = Program(timezone="Europe/Stockholm")
    assert referrals.month_window(program, datetime(2026, 3, 31, 22, 0, tzinfo=UTC)) == (
        datetime(2026, 3, 31, 22, 0, tzinfo=UTC),
        datetime(2026, 4, 30, 22, 0, tzinfo=UTC),
    )
    assert referrals.month_window(program, datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC)) == (
        datetime(2026, 2, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 22, 0, tzinfo=UTC),
    )
    assert referrals.month_window(program, datetime(2026, 12, 15, tzinfo=UTC)) == (
        datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
    )


@pytest.mark.postgres_only
async def test_two_referees_converting_at_once_for_the_last_slot_pay_one_referrer_bonus(program: Program) -> None:
    # given Ann with one rewarded referral left (lifetime cap 2, one used), and two referees
    await policy(referrer_cap_lifetime=2)
    ann = await member("ann")
    first, bob, cid = await member("first"), await member("bob"), await member("cid")
    for friend in (first, bob, cid):
        await refer(ann, friend)
    await buy(first.id, "P0", [line("A", 5_000)])

    # when Bob and Cid convert at once
    await asyncio.gather(buy(bob.id, "B1", [line("A", 5_000)]), buy(cid.id, "C1", [line("A", 5_000)]))

    # then both converted, exactly one paid Ann
    rows = await Referral.filter(referee_id__in=[bob.id, cid.id]).values_list("status", "referrer_points")
    assert sorted((str(s), p) for s, p in rows) == [("converted", 0), ("converted", 200)]
    assert await balances(ann.id) == (0, 400, 400)


# --- the staff review -----------------------------------------------------------------------------------


async def flagged_referral() -> tuple[Member, Member, Referral]:
    await policy()
    ann = await member("ann", email="ann@gmail.com")
    bob = await member("bob", email="a.n.n@gmail.com")
    referral = await refer(ann, bob)
    assert referral.status == ReferralStatus.FLAGGED
    return ann, bob, referral


async def test_approving_a_flagged_referral_before_its_purchase(program: Program) -> None:
    # given
    ann, bob, referral = await flagged_referral()

    # when a manager approves it, then Bob buys
    reviewed = await referrals.review_referral(MANAGER, referral.id, "approve", "same family, different people")
    await buy(bob.id, "B1", [line("A", 5_000)])

    # then approved (flags kept), then converted as usual; audited
    assert (reviewed.status, reviewed.review_note, flags(reviewed)) == (
        ReferralStatus.APPLIED,
        "same family, different people",
        ["SELF_REFERRAL_EMAIL"],
    )
    assert (await Referral.get(id=referral.id)).status == ReferralStatus.CONVERTED
    assert await balances(ann.id) == (0, 200, 200)
    audit = await AuditLog.get(action="referral.review")
    assert (audit.target, audit.before, audit.after, audit.reason) == (
        f"referral:{referral.id}",
        {"status": "flagged"},
        {"status": "applied", "decision": "approve"},
        "same family, different people",
    )


async def test_approving_after_the_purchase_converts_at_once(program: Program, clock: FrozenClock) -> None:
    # given a flagged referral whose referee bought (nothing credited)
    ann, bob, referral = await flagged_referral()
    recorded = await buy(bob.id, "B1", [line("A", 5_000)])
    assert await balances(ann.id) == (0, 0, 0)

    # when approved inside the window, and (another case) after it
    reviewed = await referrals.review_referral(MANAGER, referral.id, "approve")

    # then converted with the window from that purchase
    assert (reviewed.status, reviewed.available_at, reviewed.purchase_id) == (
        ReferralStatus.CONVERTED,
        recorded.available_at,
        recorded.purchase_id,
    )
    assert await balances(ann.id) == (0, 200, 200)
    assert await balances(bob.id) == (0, 150, 150)


async def test_approving_after_the_window_credits_available_points(program: Program, clock: FrozenClock) -> None:
    # given a flagged referral whose purchase's window has ended
    ann, bob, referral = await flagged_referral()
    recorded = await buy(bob.id, "B1", [line("A", 5_000)])
    clock.set(recorded.available_at + DAY)

    # when approved
    await referrals.review_referral(MANAGER, referral.id, "approve")

    # then the bonuses are available at once; the job marks it rewarded
    assert await balances(ann.id) == (200, 0, 200)
    assert await jobs.reward_referrals() == 1


async def test_rejecting_and_what_cannot_be_reviewed(program: Program) -> None:
    # given
    ann, bob, referral = await flagged_referral()
    cid = await member("cid")
    plain = await refer(ann, cid)

    # when rejected
    reviewed = await referrals.review_referral(MANAGER, referral.id, "reject", "the same person")
    await buy(bob.id, "B1", [line("A", 5_000)])

    # then nothing is earned
    assert reviewed.status == ReferralStatus.REJECTED
    assert await balances(ann.id) == (0, 0, 0)
    assert ("referral.rejected", bob.id) in await referral_events()
    # and a second review, an unflagged referral, a bad decision, an unknown id, a cashier are refused
    before = await row_counts()
    cases: list[tuple[Any, ...]] = [
        (MANAGER, referral.id, "approve", "", "NOT_FLAGGED"),
        (MANAGER, plain.id, "reject", "", "NOT_FLAGGED"),
        (MANAGER, referral.id, "maybe", "", "INVALID"),
        (MANAGER, referral.id, "approve", "x" * 201, "INVALID"),
        (MANAGER, 10**6, "approve", "", "REFERRAL_NOT_FOUND"),
        (CASHIER, referral.id, "approve", "", "FORBIDDEN"),
    ]
    for actor, referral_id, decision, note, expected in cases:
        with pytest.raises(DomainError) as caught:
            await referrals.review_referral(actor, referral_id, decision, note)
        assert caught.value.code == expected
    assert await row_counts() == before
    with pytest.raises(Forbidden):
        await referrals.review_referral(CASHIER, referral.id, "reject")


@pytest.mark.postgres_only
async def test_two_managers_reviewing_at_once_have_one_effect(program: Program) -> None:
    # given a flagged referral whose referee bought
    ann, bob, referral = await flagged_referral()
    await buy(bob.id, "B1", [line("A", 5_000)])

    # when two managers approve at once
    results = await asyncio.gather(
        *(referrals.review_referral(MANAGER, referral.id, "approve") for _ in range(2)), return_exceptions=True
    )

    # then one converted it, the other was told it is no longer flagged; one bonus
    assert sorted(type(r).__name__ for r in results) == ["Referral", "ReferralNotFlagged"]
    assert await balances(ann.id) == (0, 200, 200)
    assert await AuditLog.filter(action="referral.review").count() == 1


# --- what the referrer sees --------------------------------------------------------------------------------


async def test_the_referrers_summary(program: Program) -> None:
    # given Ann referred Bob (converted) and Cid (applied)
    await policy()
    ann, bob, cid = await member("ann"), await member("bob"), await member("cid")
    await refer(ann, bob)
    await refer(ann, cid)
    await buy(bob.id, "B1", [line("A", 5_000)])

    # then
    assert await referrals.referral_summary(ann.id) == referrals.ReferralSummary(
        code=await code(ann.id), invited=2, converted=1, points_earned=200
    )
    assert await referrals.referral_summary(cid.id) == referrals.ReferralSummary(
        code=await code(cid.id), invited=0, converted=0, points_earned=0
    )


@pytest.mark.postgres_only
async def test_concurrent_reward_runs_reward_each_referral_once(program: Program, clock: FrozenClock) -> None:
    # given three converted referrals whose window ended
    await policy()
    ann = await member("ann")
    for n in range(3):
        friend = await member(f"friend-{n}")
        await refer(ann, friend)
        recorded = await buy(friend.id, f"R{n}", [line("A", 5_000)])
    clock.set(recorded.available_at)

    # when three job runs go at once
    done = await asyncio.gather(*(jobs.reward_referrals(batch_size=1) for _ in range(3)))

    # then each referral was rewarded once, with one event each
    assert sum(done) == 3
    assert await Referral.filter(status=ReferralStatus.REWARDED).count() == 3
    assert [t for t, _ in await referral_events()].count("referral.rewarded") == 3
