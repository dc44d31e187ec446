"""Referrals on the staff endpoint: the review queue, `referralReview`, and `purchaseRecord`'s card fingerprint."""

from __future__ import annotations

from typing import Any

from strawberry import relay

from loyalty import referrals
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import AuditLog, Member, Program, Purchase, Referral, ReferralStatus, StaffRole
from schema.staff.referrals import REFERRAL
from tests.loyalty.purchase_helpers import all_counts
from tests.loyalty.referral_helpers import policy
from tests.schema.staff.conftest import run_staff

# A manager through an API key (no staff account to point `reviewed_by` at; the audit names the key).
BACK_OFFICE = Actor(kind="api_key", id=9, role=StaffRole.MANAGER, name="Back office")
QUEUE = """
query($after: String) {
  referrals(status: FLAGGED, first: 1, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { id referrer referee code status flags { check detail } refereePoints referrerPoints } }
  }
}
"""
REVIEW = """
mutation($input: ReferralReviewInput!) {
  referralReview(input: $input) { referral { status reviewNote flags { check } } userErrors { code field } }
}
"""


async def _flagged(program: Program) -> tuple[Member, list[Referral]]:
    await policy()
    ann, _ = await enroll_member("uid-ann", email="ann@gmail.com")
    code = await referrals.code_of(ann.id)
    flagged = []
    for n, email in enumerate(["a.nn@gmail.com", "ann+2@gmail.com"]):
        friend, _ = await enroll_member(f"uid-{n}", email=email)
        flagged.append(await referrals.apply_referral(friend.id, code))
    plain, _ = await enroll_member("uid-plain", email="plain@example.com")
    await referrals.apply_referral(plain.id, code)
    return ann, flagged


async def test_the_review_queue_pages_flagged_referrals_oldest_first(program: Program) -> None:
    # given two flagged referrals and one that is not
    ann, flagged = await _flagged(program)

    # when a manager reads the queue a page of one at a time
    first = await run_staff(QUEUE, BACK_OFFICE)
    second = await run_staff(QUEUE, BACK_OFFICE, {"after": first.data["referrals"]["pageInfo"]["endCursor"]})

    # then
    assert first.errors is None
    node = first.data["referrals"]["edges"][0]["node"]
    assert node == {
        "id": REFERRAL.encode(flagged[0].id),
        "referrer": relay.to_base64("Member", ann.id),
        "referee": relay.to_base64("Member", flagged[0].referee_id),
        "code": flagged[0].code,
        "status": "FLAGGED",
        "flags": [{"check": "SELF_REFERRAL_EMAIL", "detail": "both accounts' emails reach the mailbox ann@gmail.com"}],
        "refereePoints": 0,
        "referrerPoints": 0,
    }
    assert first.data["referrals"]["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in second.data["referrals"]["edges"]] == [REFERRAL.encode(flagged[1].id)]
    assert second.data["referrals"]["pageInfo"]["hasNextPage"] is False


async def test_a_manager_approves_and_rejects(program: Program) -> None:
    # given
    _, flagged = await _flagged(program)

    # when
    approved = await run_staff(
        REVIEW,
        BACK_OFFICE,
        {"input": {"referral": REFERRAL.encode(flagged[0].id), "decision": "APPROVE", "note": "ok"}},
    )
    rejected = await run_staff(
        REVIEW, BACK_OFFICE, {"input": {"referral": REFERRAL.encode(flagged[1].id), "decision": "REJECT"}}
    )

    # then
    assert approved.data["referralReview"] == {
        "referral": {"status": "APPLIED", "reviewNote": "ok", "flags": [{"check": "SELF_REFERRAL_EMAIL"}]},
        "userErrors": [],
    }
    assert rejected.data["referralReview"]["referral"]["status"] == "REJECTED"
    assert await AuditLog.filter(action="referral.review").count() == 2


async def test_review_refusals(program: Program, cashier: Actor) -> None:
    # given a flagged referral already rejected
    _, flagged = await _flagged(program)
    await referrals.review_referral(BACK_OFFICE, flagged[0].id, "reject")
    before = await all_counts()

    # when / then: reviewed already, an id of another type, garbage
    for referral, code in [
        (REFERRAL.encode(flagged[0].id), "NOT_FLAGGED"),
        (relay.to_base64("Member", 1), "REFERRAL_NOT_FOUND"),
        ("\x00" * 100, "REFERRAL_NOT_FOUND"),
    ]:
        result = await run_staff(REVIEW, BACK_OFFICE, {"input": {"referral": referral, "decision": "APPROVE"}})
        assert result.data["referralReview"] == {
            "referral": None,
            "userErrors": [{"code": code, "field": ["input", "referral"]}],
        }
    # and a cashier is forbidden
    forbidden = await run_staff(
        REVIEW, cashier, {"input": {"referral": REFERRAL.encode(flagged[1].id), "decision": "APPROVE"}}
    )
    assert [e.extensions for e in forbidden.errors] == [{"code": "FORBIDDEN"}]
    assert await all_counts() == before
    assert (await Referral.get(id=flagged[1].id)).status == ReferralStatus.FLAGGED


RECORD = """
mutation($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) { purchase { points } userErrors { code field } }
}
"""


def _receipt(member: Member, clock: FrozenClock, **changes: Any) -> dict[str, Any]:
    return {
        "member": relay.to_base64("Member", member.id),
        "storeCode": "S1",
        "receiptId": "R1",
        "occurredAt": clock.now().isoformat(),
        "currency": "EUR",
        "total": 1_000,
        "lines": [{"sku": "A", "amount": 1_000}],
        **changes,
    }


async def test_purchase_record_stores_the_card_fingerprint_hashed(
    program: Program, cashier: Actor, clock: FrozenClock
) -> None:
    # given
    anna, _ = await enroll_member("uid-anna")

    # when
    result = await run_staff(RECORD, cashier, {"input": _receipt(anna, clock, paymentFingerprint="tok_visa_4242")})

    # then
    assert result.data["purchaseRecord"] == {"purchase": {"points": 10}, "userErrors": []}
    stored = await Purchase.get(receipt_id="R1")
    assert stored.payment_fingerprint == referrals.fingerprint_hash("tok_visa_4242")
    assert stored.payment_fingerprint != "tok_visa_4242"


async def test_purchase_record_refuses_a_bad_fingerprint(program: Program, cashier: Actor, clock: FrozenClock) -> None:
    # given
    anna, _ = await enroll_member("uid-anna")
    before = await all_counts()

    # when / then
    for fingerprint in ["", "a\x00b", "x" * 201, "\u2028"]:
        result = await run_staff(RECORD, cashier, {"input": _receipt(anna, clock, paymentFingerprint=fingerprint)})
        assert result.data["purchaseRecord"] == {
            "purchase": None,
            "userErrors": [{"code": "INVALID", "field": ["input", "paymentFingerprint"]}],
        }
    assert await all_counts() == before
