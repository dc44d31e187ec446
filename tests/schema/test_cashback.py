"""The app's cashback screen (`me.cashback`) and the till's `cashbackSpend` / `cashbackPayout`, on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strawberry import relay

from loyalty import cashback, rewards
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import AuditLog, CashbackEntry, CashbackKind, Member, OutboxEvent, Reward, RewardKind, StaffRole
from schema.global_ids import CASHBACK_ENTRY
from schema.types.pagination import encode_cursor
from tests.loyalty import ledger_helpers
from tests.schema.conftest import SQLCounter
from tests.schema.staff.conftest import run_staff

CASHBACK_QUERY = (Path(__file__).parents[2] / "mobile-client-mock" / "operations" / "Cashback.graphql").read_text()
TILL = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass Cashier")
PAYMENTS = Actor(kind="api_key", id=4, role=StaffRole.MANAGER, name="Payments")

SPEND = """
mutation($input: CashbackSpendInput!) {
  cashbackSpend(input: $input) {
    member { memberNumber cashbackBalance { amount currency } }
    spent { amount currency }
    balance { amount currency }
    userErrors { code message field available { amount currency } }
  }
}
"""
PAYOUT = """
mutation($input: CashbackPayoutInput!) {
  cashbackPayout(input: $input) {
    paidOut { amount currency }
    balance { amount currency }
    userErrors { code message field available { amount currency } }
  }
}
"""


async def credit(member: Member, amount: int, key: str = "c1") -> None:
    """`amount` of cashback through a cashback reward (the member gets the points for it first)."""
    await ledger_helpers.give_available(member.id, 100, key=f"seed-{key}")
    reward = await Reward.create(name="Cashback", kind=RewardKind.CASHBACK, points_cost=100, value=amount)
    await rewards.redeem_reward(member.id, reward.id, idempotency_key=key)


def _gid(member: Member) -> str:
    return relay.to_base64("Member", member.id)


async def test_the_cashback_screen_shows_the_balance_and_its_activity(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given €5.00 credited, €2.00 spent at the till and €0.50 paid out
    await credit(anna, 500)
    await cashback.spend_cashback(TILL, anna.id, store_code="S1", receipt_id="R1", amount=200, idempotency_key="k1")
    await cashback.payout_cashback(PAYMENTS, anna.id, amount=50, reference="P1")
    ids = await CashbackEntry.filter(member_id=anna.id).order_by("-id").values_list("id", flat=True)

    # when the app opens its cashback screen
    result = await as_member(anna).execute(CASHBACK_QUERY)

    # then the balance and every entry, newest first
    assert "errors" not in result
    money = {"currency": "EUR"}
    at = clock.now().isoformat()
    assert result["data"]["me"] == {
        "id": relay.to_base64("Member", anna.id),
        "cashback": {
            "balance": {"amount": 250, **money},
            "activity": {
                "edges": [
                    {
                        "cursor": encode_cursor("cashback", entry_id),
                        "node": {
                            "id": CASHBACK_ENTRY.encode(entry_id),
                            "kind": kind,
                            "amount": {"amount": amount, **money},
                            "description": description,
                            "occurredAt": at,
                        },
                    }
                    for entry_id, kind, amount, description in [
                        (ids[0], "PAYOUT", -50, "Cashback paid out"),
                        (ids[1], "SPEND", -200, "Paid with cashback"),
                        (ids[2], "CREDIT", 500, "Cashback"),
                    ]
                ],
                "pageInfo": {"hasNextPage": False, "endCursor": encode_cursor("cashback", ids[2])},
            },
        },
    }


async def test_a_member_without_cashback_sees_zero_and_no_activity(anna: Member, as_member: Any) -> None:
    # when a member who never had cashback opens the screen
    result = await as_member(anna).execute(CASHBACK_QUERY)

    # then a zero balance in the program's currency and an empty list
    assert result["data"]["me"]["cashback"] == {
        "balance": {"amount": 0, "currency": "EUR"},
        "activity": {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}},
    }


async def test_the_activity_pages_with_cursors(anna: Member, as_member: Any) -> None:
    # given five credits of 1..5 cents
    for n in range(1, 6):
        await credit(anna, n, key=f"c{n}")
    client = as_member(anna)
    query = (
        "query($after: String) { me { cashback { activity(first: 2, after: $after) {"
        " edges { node { amount { amount } } } pageInfo { hasNextPage endCursor } } } } }"
    )

    # when the app pages through it two at a time
    pages, after = [], None
    while True:
        activity = (await client.execute(query, {"after": after}))["data"]["me"]["cashback"]["activity"]
        pages.append([e["node"]["amount"]["amount"] for e in activity["edges"]])
        if not activity["pageInfo"]["hasNextPage"]:
            break
        after = activity["pageInfo"]["endCursor"]

    # then every entry once, newest first
    assert pages == [[5, 4], [3, 2], [1]]


async def test_another_members_entry_does_not_resolve(anna: Member, bo: Member, as_member: Any) -> None:
    # given Bo's cashback entry
    await credit(bo, 500)
    entry = await CashbackEntry.get(member_id=bo.id)

    # when Anna asks for it by id
    result = await as_member(anna).execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": CASHBACK_ENTRY.encode(entry.id)}
    )

    # then it looks missing; Bo sees it
    assert result["data"] == {"node": None}
    mine = await as_member(bo).execute(
        "query($id: ID!) { node(id: $id) { ... on CashbackEntry { kind } } }", {"id": CASHBACK_ENTRY.encode(entry.id)}
    )
    assert mine["data"] == {"node": {"kind": "CREDIT"}}


async def test_the_cashback_screen_sql_count_does_not_grow_with_entries(
    anna: Member, as_member: Any, sql_counter: SQLCounter
) -> None:
    # given one entry, then 30
    client = as_member(anna)
    await credit(anna, 1, key="c0")
    await client.execute(CASHBACK_QUERY)  # warm the program cache
    sql_counter.statements.clear()
    await client.execute(CASHBACK_QUERY)
    with_one = len(sql_counter.statements)
    for n in range(1, 30):
        await credit(anna, n, key=f"c{n}")
    sql_counter.statements.clear()

    # when the screen is read
    result = await client.execute(CASHBACK_QUERY)

    # then the same statements: the member, the activity page
    assert len(result["data"]["me"]["cashback"]["activity"]["edges"]) == 20
    assert len(sql_counter.statements) == with_one == 2, sql_counter.statements


# --- the till -----------------------------------------------------------------------------------------------


async def test_cashback_spend_answers_what_was_spent_and_what_is_left(anna: Member) -> None:
    # given €5.00 of cashback
    await credit(anna, 500)

    # when the till spends €3.20
    variables = {
        "input": {"member": _gid(anna), "storeCode": "S1", "receiptId": "R1", "amount": 320, "idempotencyKey": "k1"}
    }
    result = await run_staff(SPEND, TILL, variables)

    # then spent and balance, and the member summary shows the new balance
    assert result.errors is None
    assert result.data == {
        "cashbackSpend": {
            "member": {"memberNumber": anna.member_number, "cashbackBalance": {"amount": 180, "currency": "EUR"}},
            "spent": {"amount": 320, "currency": "EUR"},
            "balance": {"amount": 180, "currency": "EUR"},
            "userErrors": [],
        }
    }


async def test_cashback_spend_beyond_the_balance_is_a_user_error_with_the_available_amount(anna: Member) -> None:
    # given €5.00 of cashback
    await credit(anna, 500)

    # when the till asks for €5.01
    variables = {
        "input": {"member": _gid(anna), "storeCode": "S1", "receiptId": "R1", "amount": 501, "idempotencyKey": "k1"}
    }
    result = await run_staff(SPEND, TILL, variables)

    # then INSUFFICIENT_CASHBACK with what is available, and nothing was written
    assert result.data == {
        "cashbackSpend": {
            "member": None,
            "spent": None,
            "balance": None,
            "userErrors": [
                {
                    "code": "INSUFFICIENT_CASHBACK",
                    "message": "501 of cashback asked; 500 is available",
                    "field": ["input", "amount"],
                    "available": {"amount": 500, "currency": "EUR"},
                }
            ],
        }
    }
    assert await CashbackEntry.filter(kind=CashbackKind.SPEND).count() == 0
    assert await AuditLog.filter(action="cashback.spend").count() == 0
    assert await OutboxEvent.filter(type="cashback.spent").count() == 0


async def test_cashback_spend_with_a_nul_in_the_receipt_is_refused(anna: Member) -> None:
    # given €5.00 of cashback
    await credit(anna, 500)

    # when the till sends a receipt id with a NUL
    variables = {
        "input": {
            "member": _gid(anna),
            "storeCode": "S1",
            "receiptId": "R\u00001",
            "amount": 100,
            "idempotencyKey": "k1",
        }
    }
    result = await run_staff(SPEND, TILL, variables)

    # then INVALID for that input, nothing written
    assert result.data["cashbackSpend"]["userErrors"] == [
        {
            "code": "INVALID",
            "message": "receipt id must not contain control characters or unpaired surrogates",
            "field": ["input", "receiptId"],
            "available": None,
        }
    ]
    assert await CashbackEntry.filter(kind=CashbackKind.SPEND).count() == 0


async def test_cashback_spend_for_an_unknown_member_is_a_user_error(anna: Member) -> None:
    variables = {
        "input": {"member": "bm9wZQ==", "storeCode": "S1", "receiptId": "R1", "amount": 100, "idempotencyKey": "k1"}
    }
    result = await run_staff(SPEND, TILL, variables)

    assert [e["code"] for e in result.data["cashbackSpend"]["userErrors"]] == ["MEMBER_NOT_FOUND"]


async def test_cashback_payout_is_idempotent_on_its_reference(anna: Member) -> None:
    # given €5.00 of cashback
    await credit(anna, 500)
    variables = {"input": {"member": _gid(anna), "amount": 400, "reference": "PAY-1"}}

    # when the payments integration pays €4.00 out twice with one reference, then with it for another amount
    first = await run_staff(PAYOUT, PAYMENTS, variables)
    again = await run_staff(PAYOUT, PAYMENTS, variables)
    other = await run_staff(PAYOUT, PAYMENTS, {"input": {**variables["input"], "amount": 100}})

    # then paid out once; the reused reference is refused
    expected = {
        "cashbackPayout": {
            "paidOut": {"amount": 400, "currency": "EUR"},
            "balance": {"amount": 100, "currency": "EUR"},
            "userErrors": [],
        }
    }
    assert first.data == again.data == expected
    assert other.data["cashbackPayout"]["userErrors"] == [
        {
            "code": "IDEMPOTENCY_KEY_REUSED",
            "message": "this reference was already used with a different request",
            "field": ["input", "reference"],
            "available": None,
        }
    ]
    assert (await Member.get(id=anna.id)).cashback_balance == 100


async def test_a_refund_says_how_much_cashback_came_back(anna: Member, clock: FrozenClock) -> None:
    # given a €40.00 receipt of which €4.00 was paid with cashback
    await credit(anna, 500)
    await ledger_helpers.purchase(anna.id, "R1", 4_000, clock.now())
    await cashback.spend_cashback(TILL, anna.id, store_code="S1", receipt_id="R1", amount=400, idempotency_key="k1")

    # when half is refunded at the till
    result = await run_staff(
        'mutation { purchaseRefund(input: {storeCode: "S1", receiptId: "R1", refundId: "F1", amount: 2000}) '
        "{ refund { amount cashbackReturned } member { cashbackBalance { amount } } userErrors { code } } }",
        TILL,
    )

    # then half the cashback came back
    assert result.data == {
        "purchaseRefund": {
            "refund": {"amount": 2_000, "cashbackReturned": 200},
            "member": {"cashbackBalance": {"amount": 300}},
            "userErrors": [],
        }
    }
