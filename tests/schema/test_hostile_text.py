"""The named hostile inputs of issue 8, one by one, on both engines: each is a precise userError (or null, or a coded
error) and writes nothing; none reaches the database (PostgreSQL refuses NUL in text and lone surrogates in UTF-8).

Member operations go over HTTP with the JSON escape `\\ud800` (the only way a client can send a lone surrogate; the
JSON decoder turns it into a Python str holding one); staff operations run in process (`run_staff`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from strawberry import relay

from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import EngagementRule, Member, StaffRole
from loyalty.staff import InvalidCredentials, authenticate_staff, create_staff
from tests.loyalty.ledger_helpers import give_available
from tests.loyalty.purchase_helpers import buy, line
from tests.schema.staff.conftest import run_staff
from tests.schema.test_hostile_inputs import snapshot

PROFILE = """
mutation($input: ProfileUpdateInput!) { profileUpdate(input: $input) { member { displayName } userErrors {
  code message field } } }
"""
REFRESH = (
    "mutation($t: String!) { sessionRefresh(input: {refreshToken: $t}) { accessToken userErrors { code field } } }"
)
REDEEM = """
mutation($input: RewardRedeemInput!) { rewardRedeem(input: $input) { voucher { id } userErrors {
  code message field } } }
"""
NODE = "query($id: ID!) { node(id: $id) { id } }"


def _encodable(variables: dict[str, Any]) -> bool:
    """False if a value holds a lone surrogate (no UTF-8 for it)."""
    try:
        json.dumps(variables, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


async def post_escaped(http: httpx.AsyncClient, path: str, query: str, variables: dict[str, Any], token: str) -> Any:
    # json.dumps escapes non-ASCII (a lone surrogate as `\ud800`); httpx's own `json=` would fail to encode one.
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = await http.post(
        path, content=body, headers={"content-type": "application/json", "authorization": f"Bearer {token}"}
    )
    if not _encodable(variables):
        # The HTTP edge refuses a lone surrogate before GraphQL (a coded 400); the domain checks stay for in-process
        # callers (the staff cases below).
        assert response.status_code == 400, response.text
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]
        return None
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def member_token(tokens: TokenService, anna: Member) -> str:
    return tokens.issue(str(anna.id), MEMBER_AUDIENCE).token


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("An\x00na", "name must not contain control characters or unpaired surrogates"),
        ("An\ud800na", "name must not contain control characters or unpaired surrogates"),
        ("\ud83d", "name must not contain control characters or unpaired surrogates"),
        ("An\x1b[2Jna", "name must not contain control characters or unpaired surrogates"),
        ("An\nna", "name must not contain control characters or unpaired surrogates"),
        ("A" * 101, "name must be 1 to 100 characters"),
    ],
)
async def test_a_display_name_with_nul_surrogate_or_control_characters_is_refused(
    client: httpx.AsyncClient, member_token: str, anna: Member, name: str, message: str
) -> None:
    # Given Anna's profile as it is
    before = await snapshot()

    # When she saves a name no column should hold (sent as JSON escapes)
    result = await post_escaped(client, "/graphql", PROFILE, {"input": {"displayName": name}}, member_token)

    # Then it is refused on her input (or at the HTTP edge, for a lone surrogate) and nothing changed
    assert result is None or result == {
        "data": {
            "profileUpdate": {
                "member": None,
                "userErrors": [{"code": "INVALID", "message": message, "field": ["input", "displayName"]}],
            }
        }
    }
    assert await snapshot() == before


async def test_emoji_and_right_to_left_names_are_kept(
    client: httpx.AsyncClient, member_token: str, anna: Member
) -> None:
    # Joiners and right-to-left text are what names are made of, not control characters.
    name = "مرحبا 👩\u200d👩\u200d👧"

    result = await post_escaped(client, "/graphql", PROFILE, {"input": {"displayName": name}}, member_token)

    assert result == {"data": {"profileUpdate": {"member": {"displayName": name}, "userErrors": []}}}
    assert (await Member.get(id=anna.id)).display_name == name


@pytest.mark.parametrize(
    "timezone", ["Europe/" + "x" * 5000, "A" * 65, "Europe/Stockholm\x00", "\ud800", "../../etc/passwd"]
)
async def test_a_timezone_that_cannot_be_one_is_unknown_timezone(
    client: httpx.AsyncClient, member_token: str, anna: Member, timezone: str
) -> None:
    # A name far beyond any zone's used to reach the zone file lookup (OSError: file name too long).
    before = await snapshot()

    result = await post_escaped(client, "/graphql", PROFILE, {"input": {"timezone": timezone}}, member_token)

    assert result is None or result["data"]["profileUpdate"]["userErrors"] == [
        {"code": "INVALID", "message": "unknown timezone", "field": ["input", "timezone"]}
    ]
    assert await snapshot() == before


@pytest.mark.parametrize("token", ["\ud800", "a\x00b", "x" * 101, ""])
async def test_a_refresh_token_that_cannot_be_ours_is_refresh_token_invalid(
    client: httpx.AsyncClient, member_token: str, token: str
) -> None:
    before = await snapshot()

    result = await post_escaped(client, "/graphql", REFRESH, {"t": token}, member_token)

    assert result is None or result == {
        "data": {
            "sessionRefresh": {
                "accessToken": None,
                "userErrors": [{"code": "REFRESH_TOKEN_INVALID", "field": ["input", "refreshToken"]}],
            }
        }
    }
    assert await snapshot() == before


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("k\x00", "an idempotency key must not contain control characters or unpaired surrogates"),
        ("k\ud800", "an idempotency key must not contain control characters or unpaired surrogates"),
        ("k\u200b", "an idempotency key must be printable characters only"),
        ("k" * 101, "an idempotency key must be 1 to 100 characters"),
    ],
)
async def test_an_idempotency_key_with_invisible_characters_or_too_long_is_refused(
    client: httpx.AsyncClient, member_token: str, anna: Member, key: str, message: str
) -> None:
    await give_available(anna.id, 100)
    reward_id = relay.to_base64("Reward", 1)
    before = await snapshot()

    result = await post_escaped(
        client, "/graphql", REDEEM, {"input": {"rewardId": reward_id, "idempotencyKey": key}}, member_token
    )

    errors = result["data"]["rewardRedeem"]["userErrors"] if result is not None else [{"message": message}]
    assert result is None or errors == [{"code": "INVALID", "message": message, "field": ["input", "idempotencyKey"]}]
    assert await snapshot() == before


@pytest.mark.parametrize("node_id", ["", "\ud800", "TWVtYmVyOjE\ud800", "\x00", "=" * 3])
async def test_node_with_an_empty_or_unencodable_id_is_null(
    client: httpx.AsyncClient, member_token: str, node_id: str
) -> None:
    result = await post_escaped(client, "/graphql", NODE, {"id": node_id}, member_token)

    assert result is None or result == {"data": {"node": None}}


# --- staff ----------------------------------------------------------------------------------------

ADJUST = """
mutation($input: PointsAdjustInput!) { pointsAdjust(input: $input) { adjustment { amount } userErrors {
  code message field } } }
"""
RECORD = """
mutation($input: PurchaseRecordInput!) { purchaseRecord(input: $input) { purchase { points } userErrors {
  code message field } } }
"""
REFUND = """
mutation($input: PurchaseRefundInput!) { purchaseRefund(input: $input) { refund { amount } userErrors {
  code message field } } }
"""
VOUCHER = "mutation($input: VoucherRedeemInput!) { voucherRedeem(input: $input) { userErrors { code field } } }"
ENGAGE = """
mutation($input: EngagementRecordInput!) { engagementRecord(input: $input) { userErrors { code message field } } }
"""
LOOKUP = "query($q: String!) { memberLookup(query: $q) { name } }"


@pytest.fixture
def manager() -> Actor:
    return Actor(kind="staff", id=2, role=StaffRole.MANAGER, store_codes=(), name="Max Manager")


async def _staff(query: str, actor: Actor, variables: dict[str, Any]) -> Any:
    result = await run_staff(query, actor, variables)
    assert result.errors is None, result.errors
    return result.data


def _user_errors(data: Any) -> list[tuple[str, str, list[str]]]:
    payload = next(iter(data.values()))
    return [(e["code"], e["message"], e["field"]) for e in payload["userErrors"]]


@pytest.mark.parametrize(
    ("store_code", "message"),
    [
        ("S" * 5000, "store code must be 1 to 32 characters"),
        ("S" * 33, "store code must be 1 to 32 characters"),
        ("S1\x00", "store code must not contain control characters or unpaired surrogates"),
        ("S1\ud800", "store code must not contain control characters or unpaired surrogates"),
        ("S\u200b1", "store code must be printable characters only"),
        ("\u202eS1", "store code must be printable characters only"),
    ],
)
async def test_points_adjust_with_a_store_code_no_store_can_have_is_refused(
    anna: Member, manager: Actor, store_code: str, message: str
) -> None:
    # Given a manager of every store (so the store is not refused for want of rights)
    member = relay.to_base64("Member", anna.id)
    before = await snapshot()

    # When they adjust points in a store whose code no column holds
    data = await _staff(
        ADJUST,
        manager,
        {
            "input": {
                "member": member,
                "amount": 5,
                "reasonCode": "GOODWILL",
                "idempotencyKey": "k",
                "storeCode": store_code,
            }
        },
    )

    # Then it is refused on the store code, and nothing is written
    assert data["pointsAdjust"]["adjustment"] is None
    assert _user_errors(data) == [("INVALID", message, ["input", "storeCode"])]
    assert await snapshot() == before


def _receipt(anna: Member, clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    return {
        "member": relay.to_base64("Member", anna.id),
        "storeCode": "S1",
        "receiptId": "R1",
        "occurredAt": (clock.now() - timedelta(minutes=1)).isoformat(),
        "currency": "EUR",
        "total": 1000,
        "lines": [{"sku": "SKU1", "amount": 1000}],
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "message", "field"),
    [
        ({"receiptId": "R\x001"}, "receipt id must not contain control characters or unpaired surrogates", "receiptId"),
        (
            {"receiptId": "R\ud8001"},
            "receipt id must not contain control characters or unpaired surrogates",
            "receiptId",
        ),
        ({"receiptId": "R\n1"}, "receipt id must not contain control characters or unpaired surrogates", "receiptId"),
        ({"receiptId": "R" * 65}, "receipt id must be 1 to 64 characters", "receiptId"),
        ({"currency": "EUR\x00"}, "currency must be 1 to 3 characters", "currency"),
        ({"currency": "E\x00R"}, "currency must not contain control characters or unpaired surrogates", "currency"),
        (
            {"lines": [{"sku": "SKU\x00", "amount": 1000}]},
            "a line's sku must not contain control characters or unpaired surrogates",
            "lines",
        ),
        ({"lines": [{"sku": "S" * 65, "amount": 1000}]}, "a line's sku must be 1 to 64 characters", "lines"),
        (
            {"lines": [{"sku": "SKU1", "category": "f\ud800", "amount": 1000}]},
            "a line's category must not contain control characters or unpaired surrogates",
            "lines",
        ),
        (
            {"lines": [{"sku": "SKU1", "quantity": 10_001, "amount": 1000}]},
            "a line's quantity must be at most 10000",
            "lines",
        ),
        (
            {"lines": [{"sku": "SKU1", "quantity": 2**31 - 1, "amount": 1000}]},
            "a line's quantity must be at most 10000",
            "lines",
        ),
    ],
)
async def test_purchase_record_with_hostile_text_or_quantity_is_refused(
    anna: Member, manager: Actor, clock: FrozenClock, overrides: dict[str, Any], message: str, field: str
) -> None:
    before = await snapshot()

    data = await _staff(RECORD, manager, {"input": _receipt(anna, clock, **overrides)})

    assert data["purchaseRecord"]["purchase"] is None
    assert _user_errors(data) == [("INVALID", message, ["input", field])]
    assert await snapshot() == before


@pytest.mark.parametrize(
    ("overrides", "message", "field"),
    [
        ({"refundId": "F\x001"}, "refund id must not contain control characters or unpaired surrogates", "refundId"),
        ({"refundId": "F" * 65}, "refund id must be 1 to 64 characters", "refundId"),
        (
            {"receiptId": "R\ud800"},
            "receipt id must not contain control characters or unpaired surrogates",
            "receiptId",
        ),
        # line_no is a smallint column: 40,000 must not reach a query
        ({"amount": None, "lines": [{"lineNo": 40_000, "quantity": 1}]}, "a line number must be at most 500", "lines"),
        (
            {"amount": None, "lines": [{"lineNo": 1, "quantity": 2**31 - 1}]},
            "a quantity must be at most 10000",
            "lines",
        ),
    ],
)
async def test_purchase_refund_with_hostile_text_or_numbers_is_refused(
    anna: Member, manager: Actor, overrides: dict[str, Any], message: str, field: str
) -> None:
    await buy(anna.id, "R1", [line("SKU1", 1000)])
    before = await snapshot()

    variables = {"storeCode": "S1", "receiptId": "R1", "refundId": "F1", "amount": 500, **overrides}
    data = await _staff(REFUND, manager, {"input": variables})

    assert data["purchaseRefund"]["refund"] is None
    assert _user_errors(data) == [("INVALID", message, ["input", field])]
    assert await snapshot() == before


@pytest.mark.parametrize(
    "code", ["ABCD\x00EFGHJKLMNPQ", "ABCD\ud800EFGHJKLMNPQ", "ABCDEFGHJKLMNP\u0663\u0663", "A" * 5000]
)
async def test_voucher_redeem_with_a_code_we_cannot_have_issued_is_invalid_code(
    anna: Member, manager: Actor, code: str
) -> None:
    # 16 characters after normalizing, but not the letters and digits of an issued code
    data = await _staff(VOUCHER, manager, {"input": {"code": code, "storeCode": "S1"}})

    assert [(e["code"], e["field"]) for e in data["voucherRedeem"]["userErrors"]] == [
        ("INVALID_CODE", ["input", "code"])
    ]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"eventType": "review\x00written"}, "UNKNOWN_EVENT_TYPE", "eventType"),
        ({"eventType": "review_written\ud800"}, "UNKNOWN_EVENT_TYPE", "eventType"),
        ({"externalId": "e\x001"}, "INVALID", "externalId"),
        ({"externalId": "e\ud8001"}, "INVALID", "externalId"),
        ({"externalId": "e" * 129}, "INVALID", "externalId"),
    ],
)
async def test_engagement_record_with_hostile_text_is_refused(
    anna: Member, manager: Actor, clock: FrozenClock, overrides: dict[str, Any], code: str, field: str
) -> None:
    await EngagementRule.create(event_type="review_written", points=25)
    before = await snapshot()
    variables = {
        "member": relay.to_base64("Member", anna.id),
        "eventType": "review_written",
        "externalId": "e1",
        "occurredAt": (clock.now() - timedelta(minutes=1)).isoformat(),
        **overrides,
    }

    data = await _staff(ENGAGE, manager, {"input": variables})

    assert [(c, f) for c, _, f in _user_errors(data)] == [(code, ["input", field])]
    assert await snapshot() == before


@pytest.mark.parametrize(
    "query", ["anna@example.com\x00", "\x00@x", "anna@\ud800.com", "+46 70\x00 123 45 67", "a@b.c" + "\u200b"]
)
async def test_member_lookup_with_hostile_text_finds_nobody(anna: Member, manager: Actor, query: str) -> None:
    before = await snapshot()

    data = await _staff(LOOKUP, manager, {"q": query})

    assert data == {"memberLookup": None}
    assert await snapshot() == before


@pytest.mark.usefixtures("fast_password_hashing")
@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("mia@example.com\x00", "correct horse battery"),
        ("mia\ud800@example.com", "x"),
        ("mia@example.com", "\ud800" * 12),
    ],
)
async def test_staff_sign_in_with_hostile_text_is_invalid_credentials(anna: Member, email: str, password: str) -> None:
    # Given an account (whose failures would be counted in the throttle table)
    await create_staff("mia@example.com", "correct horse battery", "manager", [], "Mia")
    before = await snapshot()

    # When someone signs in with text no account can have
    with pytest.raises(InvalidCredentials):
        await authenticate_staff(email, password)

    # Then it is a wrong email or password, and no table but the throttles' changed
    assert await snapshot() == before
