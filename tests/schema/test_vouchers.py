"""The member app's vouchers screen and voucherCancel; members never reach each other's vouchers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from strawberry import relay
from tortoise.transactions import in_transaction

from loyalty import rewards, vouchers
from loyalty.clock import FrozenClock
from loyalty.models import EntryKind, Member, PointsLot, Reward, RewardKind, Voucher, VoucherStatus
from tests.loyalty import ledger_helpers
from tests.schema.conftest import SQLCounter

OPERATIONS = Path(__file__).parents[2] / "mobile-client-mock" / "operations"
VOUCHERS = (OPERATIONS / "Vouchers.graphql").read_text()
CANCEL = (OPERATIONS / "VoucherCancel.graphql").read_text()


def gid(type_name: str, pk: int) -> str:
    return relay.to_base64(type_name, pk)


async def bought(member: Member, reward: Reward, key: str) -> int:
    """A voucher the member paid points for."""
    return await rewards.redeem_reward(member.id, reward.id, idempotency_key=key)


async def coffee(points_cost: int = 25, **fields: Any) -> Reward:
    return await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=points_cost, **fields)


async def give(member: Member, points: int) -> None:
    await ledger_helpers.credit_points(member.id, points, kind=EntryKind.ADJUSTMENT, idempotency_key=f"seed-{points}")


async def cancel(client: Any, voucher_id: str) -> dict[str, Any]:
    result = await client.execute(CANCEL, {"input": {"voucherId": voucher_id}})
    assert "errors" not in result, result
    return result["data"]["voucherCancel"]


async def test_the_vouchers_screen_lists_usable_vouchers_first_and_filters_by_status(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    await give(anna, 100)
    soon = await bought(anna, await coffee(voucher_valid_days=5), "a")
    later = await bought(anna, await coffee(voucher_valid_days=20), "b")
    used = await bought(anna, await coffee(), "c")
    await Voucher.filter(id=used).update(status=VoucherStatus.REDEEMED, redeemed_at=clock.now())
    client = as_member(anna)

    everything = (await client.execute(VOUCHERS))["data"]["me"]["vouchers"]
    redeemed = (await client.execute(VOUCHERS, {"status": "REDEEMED"}))["data"]["me"]["vouchers"]

    nodes = [e["node"] for e in everything["edges"]]
    assert [(n["id"], n["status"]) for n in nodes] == [
        (gid("Voucher", soon), "ACTIVE"),
        (gid("Voucher", later), "ACTIVE"),
        (gid("Voucher", used), "REDEEMED"),
    ]
    stored = await Voucher.get(id=soon)
    assert nodes[0]["code"] == vouchers.display_code(stored.code)
    assert (nodes[0]["barcodeValue"], nodes[0]["barcodeFormat"]) == (f"V:{stored.code}", "QR_CODE")
    assert nodes[0]["expiresAt"] == (clock.now() + timedelta(days=5)).isoformat()
    assert [e["node"]["id"] for e in redeemed["edges"]] == [gid("Voucher", used)]


async def test_a_voucher_past_its_expiry_shows_as_expired_before_the_job_runs(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, anna.id)
    clock.set(voucher.expires_at)

    listed = (await as_member(anna).execute(VOUCHERS, {"status": "EXPIRED"}))["data"]["me"]["vouchers"]

    assert [(e["node"]["id"], e["node"]["status"]) for e in listed["edges"]] == [
        (gid("Voucher", voucher.id), "EXPIRED")
    ]


async def test_the_list_pages_with_a_constant_number_of_statements(
    anna: Member, as_member: Any, sql_counter: SQLCounter
) -> None:
    async with in_transaction() as conn:
        issued = [await vouchers.issue_voucher(conn, anna.id, reward=await coffee()) for _ in range(3)]
    query = (
        "query($after: String) { me { vouchers(first: 2, after: $after) "
        "{ edges { node { id reward { name available } } } pageInfo { hasNextPage endCursor } } } }"
    )
    client = as_member(anna)
    await client.execute("{ program { name } }")  # warm the program cache

    sql_counter.statements.clear()
    first = (await client.execute(query))["data"]["me"]["vouchers"]
    small = len(sql_counter.statements)
    second = (await client.execute(query, {"after": first["pageInfo"]["endCursor"]}))["data"]["me"]["vouchers"]
    async with in_transaction() as conn:
        for _ in range(30):
            await vouchers.issue_voucher(conn, anna.id, reward=await coffee())
    sql_counter.statements.clear()
    await client.execute("{ me { vouchers(first: 40) { edges { node { id reward { name available } } } } } }")

    assert [e["node"]["id"] for e in first["edges"] + second["edges"]] == [gid("Voucher", v.id) for v in issued]
    assert (first["pageInfo"]["hasNextPage"], second["pageInfo"]["hasNextPage"]) == (True, False)
    # member, the page of vouchers (usable ones, then the others: one statement), rewards with voucher counts,
    # however long the list
    assert (small, len(sql_counter.statements)) == (3, 3)


async def test_cancelling_gives_back_exactly_the_points_and_lots(anna: Member, as_member: Any) -> None:
    await give(anna, 40)
    voucher_id = await bought(anna, await coffee(points_cost=25, stock=1), "k")
    lots_before = await PointsLot.filter(member_id=anna.id).values_list("remaining", flat=True)

    payload = await cancel(as_member(anna), gid("Voucher", voucher_id))

    assert payload == {
        "voucher": {"id": gid("Voucher", voucher_id), "status": "CANCELLED"},
        "member": {"id": gid("Member", anna.id), "points": {"available": 40}},
        "userErrors": [],
    }
    assert lots_before == [15]
    assert await PointsLot.filter(member_id=anna.id).values_list("remaining", flat=True) == [40]
    assert (await Reward.get(id=(await Voucher.get(id=voucher_id)).reward_id)).stock == 1


async def test_another_members_voucher_answers_exactly_like_a_missing_one(
    anna: Member, bo: Member, as_member: Any
) -> None:
    await give(bo, 100)
    bos = await bought(bo, await coffee(), "k")
    client = as_member(anna)

    foreign = await cancel(client, gid("Voucher", bos))
    missing = await cancel(client, gid("Voucher", bos + 1000))
    not_a_voucher = await cancel(client, gid("Member", bo.id))
    node = await client.execute("query($id: ID!) { node(id: $id) { id } }", {"id": gid("Voucher", bos)})

    assert foreign == missing == not_a_voucher
    assert foreign == {
        "voucher": None,
        "member": None,
        "userErrors": [{"code": "VOUCHER_NOT_FOUND", "message": "no such voucher", "field": ["input", "voucherId"]}],
    }
    assert node == {"data": {"node": None}}
    assert (await Voucher.get(id=bos)).status == VoucherStatus.ACTIVE
    assert (await Member.get(id=bo.id)).points_available == 75
    assert (await client.execute(VOUCHERS))["data"]["me"]["vouchers"]["edges"] == []


async def test_cancelling_twice_is_already_cancelled_and_gives_nothing_more(anna: Member, as_member: Any) -> None:
    await give(anna, 100)
    voucher_id = await bought(anna, await coffee(), "k")
    client = as_member(anna)
    await cancel(client, gid("Voucher", voucher_id))

    again = await cancel(client, gid("Voucher", voucher_id))

    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_CANCELLED"]
    assert (await Member.get(id=anna.id)).points_available == 100


async def test_the_member_can_refetch_their_own_voucher_by_id(anna: Member, as_member: Any) -> None:
    await give(anna, 100)
    voucher_id = await bought(anna, await coffee(), "k")

    result = await as_member(anna).execute(
        "query($id: ID!) { node(id: $id) { ... on Voucher { id status reward { name } } } }",
        {"id": gid("Voucher", voucher_id)},
    )

    assert result == {
        "data": {"node": {"id": gid("Voucher", voucher_id), "status": "ACTIVE", "reward": {"name": "Coffee"}}}
    }
