"""The member app's rewards screen and rewardRedeem, through the app's own operations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from strawberry import relay

from loyalty.models import EntryKind, LedgerEntry, Member, Reward, RewardKind, Tier, Voucher
from tests.loyalty import ledger_helpers
from tests.schema.conftest import SQLCounter

OPERATIONS = Path(__file__).parents[2] / "mobile-client-mock" / "operations"
REWARDS = (OPERATIONS / "Rewards.graphql").read_text()
REDEEM = (OPERATIONS / "RewardRedeem.graphql").read_text()


def gid(type_name: str, pk: int) -> str:
    return relay.to_base64(type_name, pk)


async def give(member: Member, points: int) -> None:
    await ledger_helpers.credit_points(member.id, points, kind=EntryKind.ADJUSTMENT, idempotency_key=f"seed-{points}")


async def redeem(client: Any, reward_id: str, key: str = "k1") -> dict[str, Any]:
    result = await client.execute(REDEEM, {"input": {"rewardId": reward_id, "idempotencyKey": key}})
    assert "errors" not in result, result
    return result["data"]["rewardRedeem"]


async def test_the_catalog_says_what_the_member_can_redeem_and_why_not(anna: Member, as_member: Any) -> None:
    gold = await Tier.get(name="Gold")
    await give(anna, 60)
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=25, sku="COF-1", stock=3)
    trip = await Reward.create(name="Trip", kind=RewardKind.EXPERIENCE, points_cost=400)
    lounge = await Reward.create(name="Lounge", kind=RewardKind.EXPERIENCE, points_cost=10, min_tier=gold)

    result = await as_member(anna).execute(REWARDS)

    nodes = [edge["node"] for edge in result["data"]["rewards"]["edges"]]
    assert [(n["id"], n["available"], n["unavailableReason"]) for n in nodes] == [
        (gid("Reward", lounge.id), False, "NOT_ELIGIBLE"),
        (gid("Reward", coffee.id), True, None),
        (gid("Reward", trip.id), False, "INSUFFICIENT_POINTS"),
    ]
    assert nodes[1] == {
        "id": gid("Reward", coffee.id),
        "name": "Coffee",
        "description": "",
        "kind": "FREE_PRODUCT",
        "pointsCost": 25,
        "value": 0,
        "sku": "COF-1",
        "cause": None,
        "minTier": None,
        "stockLeft": 3,
        "perMemberLimit": None,
        "validUntil": None,
        "voucherValidDays": 30,
        "available": True,
        "unavailableReason": None,
    }
    assert nodes[0]["minTier"] == "Gold"
    assert result["data"]["rewards"]["pageInfo"] == {
        "hasNextPage": False,
        "endCursor": result["data"]["rewards"]["edges"][-1]["cursor"],
    }


async def test_the_catalog_pages_and_its_query_count_does_not_grow(
    anna: Member, as_member: Any, sql_counter: SQLCounter
) -> None:
    for n in range(3):
        await Reward.create(name=f"R{n}", kind=RewardKind.AMOUNT_OFF, points_cost=10 * (n + 1), value=100)
    query = (
        "query($after: String) { rewards(first: 2, after: $after) "
        "{ edges { node { name } } pageInfo { hasNextPage endCursor } } }"
    )
    client = as_member(anna)

    sql_counter.statements.clear()
    first = (await client.execute(query))["data"]["rewards"]
    statements = len(sql_counter.statements)
    second = (await client.execute(query, {"after": first["pageInfo"]["endCursor"]}))["data"]["rewards"]

    assert [e["node"]["name"] for e in first["edges"] + second["edges"]] == ["R0", "R1", "R2"]
    assert (first["pageInfo"]["hasNextPage"], second["pageInfo"]["hasNextPage"]) == (True, False)
    assert statements == 4  # member, program and tiers (then cached), the rewards page with voucher counts
    for n in range(3, 40):
        await Reward.create(name=f"R{n}", kind=RewardKind.AMOUNT_OFF, points_cost=10 * (n + 1), value=100)
    sql_counter.statements.clear()
    await client.execute("{ rewards(first: 40) { edges { node { name available } } } }")
    assert len(sql_counter.statements) <= statements


@pytest.mark.parametrize("after", ["garbage", relay.to_base64("activity", 1)])
async def test_a_foreign_cursor_is_a_bad_request(anna: Member, as_member: Any, after: str) -> None:
    result = await as_member(anna).execute(
        "query($a: String) { rewards(after: $a) { edges { cursor } } }", {"a": after}
    )

    assert result["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}


async def test_redeeming_returns_the_voucher_and_the_new_balance(anna: Member, as_member: Any) -> None:
    await give(anna, 100)
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=25, sku="COF-1")

    payload = await redeem(as_member(anna), gid("Reward", coffee.id))

    voucher = await Voucher.get(member_id=anna.id)
    assert payload["userErrors"] == []
    assert payload["member"]["points"] == {"available": 75}
    assert payload["voucher"]["id"] == gid("Voucher", voucher.id)
    assert payload["voucher"]["barcodeValue"] == f"V:{voucher.code}"
    assert payload["voucher"]["code"].replace("-", "") == voucher.code
    assert (payload["voucher"]["status"], payload["voucher"]["pointsCost"]) == ("ACTIVE", 25)
    assert payload["voucher"]["reward"] == {
        "id": gid("Reward", coffee.id),
        "name": "Coffee",
        "kind": "FREE_PRODUCT",
        "value": 0,
        "sku": "COF-1",
        "cause": None,
    }
    assert await redeem(as_member(anna), gid("Reward", coffee.id)) == payload  # the retry replays


async def test_every_refusal_has_its_code_and_writes_nothing(anna: Member, bo: Member, as_member: Any) -> None:
    gold = await Tier.get(name="Gold")
    await give(anna, 30)
    cheap = await Reward.create(name="Cheap", kind=RewardKind.FREE_PRODUCT, points_cost=10, per_member_limit=1)
    pricey = await Reward.create(name="Pricey", kind=RewardKind.FREE_PRODUCT, points_cost=31)
    gone = await Reward.create(name="Gone", kind=RewardKind.FREE_PRODUCT, points_cost=10, stock=0)
    vip = await Reward.create(name="VIP", kind=RewardKind.EXPERIENCE, points_cost=10, min_tier=gold)
    retired = await Reward.create(name="Retired", kind=RewardKind.FREE_PRODUCT, points_cost=10, active=False)
    client = as_member(anna)
    await redeem(client, gid("Reward", cheap.id), key="first")
    before = (
        (await Member.get(id=anna.id)).points_available,
        await LedgerEntry.all().count(),
        await Voucher.all().count(),
    )

    refusals = {
        name: (await redeem(client, reward_id, key=name))["userErrors"]
        for name, reward_id in [
            ("limit", gid("Reward", cheap.id)),
            ("points", gid("Reward", pricey.id)),
            ("stock", gid("Reward", gone.id)),
            ("tier", gid("Reward", vip.id)),
            ("inactive", gid("Reward", retired.id)),
            ("missing", gid("Reward", 999)),
            ("member id", gid("Member", bo.id)),
            ("garbage", "not-an-id"),
        ]
    }
    reused = (await redeem(client, gid("Reward", pricey.id), key="first"))["userErrors"]

    assert {name: [(e["code"], e["field"]) for e in errors] for name, errors in refusals.items()} == {
        "limit": [("LIMIT_REACHED", ["input", "rewardId"])],
        "points": [("INSUFFICIENT_POINTS", ["input", "rewardId"])],
        "stock": [("OUT_OF_STOCK", ["input", "rewardId"])],
        "tier": [("NOT_ELIGIBLE", ["input", "rewardId"])],
        "inactive": [("NOT_AVAILABLE", ["input", "rewardId"])],
        "missing": [("REWARD_NOT_FOUND", ["input", "rewardId"])],
        "member id": [("REWARD_NOT_FOUND", ["input", "rewardId"])],
        "garbage": [("REWARD_NOT_FOUND", ["input", "rewardId"])],
    }
    assert [(e["code"], e["field"]) for e in reused] == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]
    after = (
        (await Member.get(id=anna.id)).points_available,
        await LedgerEntry.all().count(),
        await Voucher.all().count(),
    )
    assert after == before
    assert (await Reward.get(id=gone.id)).stock == 0


async def test_redeeming_needs_a_signed_in_member(anna: Member, as_member: Any) -> None:
    reward = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=1)

    result = await as_member(None).execute(
        REDEEM, {"input": {"rewardId": gid("Reward", reward.id), "idempotencyKey": "k"}}
    )

    assert result["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert await Voucher.all().count() == 0


async def test_donations_are_totalled_per_cause(anna: Member, as_member: Any) -> None:
    await give(anna, 300)
    trees = await Reward.create(
        name="Plant a tree", kind=RewardKind.DONATION, points_cost=100, value=500, cause="Forests"
    )
    client = as_member(anna)
    payload = await redeem(client, gid("Reward", trees.id), key="d1")
    await redeem(client, gid("Reward", trees.id), key="d2")

    result = await client.execute(REWARDS)

    assert payload["voucher"]["status"] == "REDEEMED"
    assert result["data"]["program"]["donations"] == [{"cause": "Forests", "amount": 1000, "donations": 2}]
    assert result["data"]["me"]["points"] == {"available": 100}
