"""Malformed, foreign and out-of-range ids end to end: `node` answers null, mutations their `*_NOT_FOUND` userError,
cursors a BAD_REQUEST; nothing is written and nothing reaches the database as a key its column cannot hold."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from loyalty import rewards
from loyalty.models import EntryKind, Member, OfferActivation, Reward, RewardKind, Voucher, VoucherStatus
from tests.loyalty import ledger_helpers
from tests.loyalty.test_offers import new_offer

OPERATIONS = Path(__file__).parents[2] / "mobile-client-mock" / "operations"
REDEEM = (OPERATIONS / "RewardRedeem.graphql").read_text()
CANCEL = (OPERATIONS / "VoucherCancel.graphql").read_text()
ACTIVATE = (OPERATIONS / "OfferActivate.graphql").read_text()
NODE = "query($id: ID!) { node(id: $id) { id } }"


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def bad_ids(type_name: str, existing: int) -> list[str]:
    """Ids of `type_name` that name no row (though `existing` is one's key), and ids that are no ids at all."""
    return [
        b64(f"{type_name}:²"),
        b64(f"{type_name}:\N{ARABIC-INDIC DIGIT ONE}"),
        b64(f"{type_name}:\N{FULLWIDTH DIGIT ONE}"),
        b64(f"{type_name}:0{existing}"),  # leading zero: not the canonical id of `existing`
        b64(f"{type_name}:-{existing}"),
        b64(f"{type_name}:0"),
        b64(f"{type_name}:{2**31}"),  # beyond a 32-bit primary key
        b64(f"{type_name}:99999999999"),
        b64(f"{type_name}:{2**63}"),  # beyond a 64-bit one
        b64(f"{type_name}:{10**25}"),
        b64(f"Program:{existing}"),  # another type
        b64(b"\xff\xfe"),
        "not base64!",
        "",
    ]


async def test_node_answers_null_for_every_bad_id(anna: Member, as_member: Any) -> None:
    # Given Anna signed in (her own id refetches her)
    client = as_member(anna)
    own = b64(f"Member:{anna.id}")

    # When she refetches bad ids of every node type
    ids = [i for t in ("Member", "ActivityEntry", "Voucher", "Offer", "Reward") for i in bad_ids(t, anna.id)]
    answers = [await client.execute(NODE, {"id": i}) for i in ids]

    # Then each is null, like a missing object, with no error
    assert answers == [{"data": {"node": None}}] * len(ids)
    assert await client.execute(NODE, {"id": own}) == {"data": {"node": {"id": own}}}
    assert await client.execute(NODE, {"id": own.rstrip("=")}) == {"data": {"node": {"id": own}}}


async def test_reward_redeem_with_a_bad_id_is_reward_not_found_and_writes_nothing(anna: Member, as_member: Any) -> None:
    # Given 100 points and a 10-point reward
    await ledger_helpers.credit_points(anna.id, 100, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
    reward = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=10)
    client = as_member(anna)

    # When Anna redeems it with bad ids
    payloads = []
    for n, reward_id in enumerate(bad_ids("Reward", reward.id)):
        result = await client.execute(REDEEM, {"input": {"rewardId": reward_id, "idempotencyKey": f"k{n}"}})
        assert "errors" not in result, (reward_id, result)
        payloads.append(result["data"]["rewardRedeem"])

    # Then each is REWARD_NOT_FOUND on her input, and nothing was spent or issued
    assert {(p["voucher"], p["member"]) for p in payloads} == {(None, None)}
    assert {tuple((e["code"], tuple(e["field"])) for e in p["userErrors"]) for p in payloads} == {
        (("REWARD_NOT_FOUND", ("input", "rewardId")),)
    }
    assert await Voucher.all().count() == 0
    assert (await Member.get(id=anna.id)).points_available == 100


async def test_voucher_cancel_with_a_bad_id_is_voucher_not_found_and_writes_nothing(
    anna: Member, as_member: Any
) -> None:
    # Given a voucher Anna bought for 10 points
    await ledger_helpers.credit_points(anna.id, 100, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
    reward = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=10)
    voucher_id = await rewards.redeem_reward(anna.id, reward.id, idempotency_key="k")
    client = as_member(anna)

    # When she cancels with bad ids
    payloads = []
    for voucher in bad_ids("Voucher", voucher_id):
        result = await client.execute(CANCEL, {"input": {"voucherId": voucher}})
        assert "errors" not in result, (voucher, result)
        payloads.append(result["data"]["voucherCancel"])

    # Then each is VOUCHER_NOT_FOUND, and the voucher is still hers, unused
    assert {(p["voucher"], p["member"]) for p in payloads} == {(None, None)}
    assert {tuple((e["code"], tuple(e["field"])) for e in p["userErrors"]) for p in payloads} == {
        (("VOUCHER_NOT_FOUND", ("input", "voucherId")),)
    }
    assert (await Voucher.get(id=voucher_id)).status == VoucherStatus.ACTIVE
    assert (await Member.get(id=anna.id)).points_available == 90


async def test_offer_activate_with_a_bad_id_is_offer_not_found_and_writes_nothing(anna: Member, as_member: Any) -> None:
    # Given an offer that applies to Anna
    offer = await new_offer(name="Bonus", requires_activation=True)
    client = as_member(anna)

    # When she activates it with bad ids
    payloads = []
    for offer_id in bad_ids("Offer", offer.id):
        result = await client.execute(ACTIVATE, {"offerId": offer_id})
        assert "errors" not in result, (offer_id, result)
        payloads.append(result["data"]["offerActivate"])

    # Then each is OFFER_NOT_FOUND, and nothing is activated
    assert {p["offer"] for p in payloads} == {None}
    assert {tuple((e["code"], tuple(e["field"])) for e in p["userErrors"]) for p in payloads} == {
        (("OFFER_NOT_FOUND", ("input", "offerId")),)
    }
    assert await OfferActivation.all().count() == 0


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_cursors_with_keys_no_row_can_have_are_bad_requests(anna: Member, as_member: Any) -> None:
    # Given cursors whose keys are beyond their columns or not canonical ASCII decimal
    activity = "query($a: String) { me { activity(after: $a) { edges { cursor } } } }"
    vouchers = "query($a: String) { me { vouchers(after: $a) { edges { cursor } } } }"
    rewards_page = "query($a: String) { rewards(after: $a) { edges { cursor } } }"
    not_canonical = ["\N{FULLWIDTH DIGIT ONE}", "\N{ARABIC-INDIC DIGIT ONE}", "01", "-1", "+1", " 1"]
    bad = [
        *[(activity, f"activity:{key}") for key in [str(2**63), str(10**25), *not_canonical]],  # a 64-bit id
        *[(vouchers, f"{kind}:{key}") for kind in ("voucher", "voucher-past") for key in [str(2**31), *not_canonical]],
        # A reward cursor packs (sort order, cost, id) into one integer: its id part must fit the 32-bit column.
        *[(rewards_page, f"reward:{key}") for key in [str(2**31), str(2**32 - 1), str(2**96), *not_canonical]],
    ]
    client = as_member(anna)

    # When Anna pages with them
    answers = [await client.execute(query, {"a": cursor(text)}) for query, text in bad]

    # Then each is the same bad request, and none reached the database
    assert [a["data"] for a in answers] == [None] * len(answers)
    assert [a["errors"][0]["extensions"] for a in answers] == [{"code": "BAD_REQUEST"}] * len(answers)
    assert {a["errors"][0]["message"] for a in answers} == {"`after` is not a cursor from this list"}
