"""Function-level authorization of every staff operation, for every kind of caller.

A new staff operation must get a row in OPERATIONS: `test_every_staff_operation_is_in_the_table` fails until it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from strawberry import relay

from loyalty.actors import Actor
from loyalty.models import AuditLog, LedgerEntry, Member, StaffRole
from loyalty.staff import InvalidCredentials
from schema.staff.context import StaffContext
from schema.staff.ports import IssuedStaffSession
from tests.loyalty.ledger_helpers import give_available
from tests.schema.staff.conftest import STAFF_SCHEMA

ACTORS: dict[str, Actor | None] = {
    "no actor": None,
    "cashier of another store": Actor(kind="staff", id=21, role=StaffRole.CASHIER, store_codes=("S2",), name="Other"),
    "cashier": Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass"),
    "manager": Actor(kind="staff", id=2, role=StaffRole.MANAGER, name="Max"),
    "admin": Actor(kind="staff", id=3, role=StaffRole.ADMIN, name="Ada"),
    "api key": Actor(kind="api_key", id=4, role=StaffRole.CASHIER, store_codes=("S1",), name="POS S1"),
}
SIGNED_IN = frozenset(ACTORS) - {"no actor"}
IN_STORE_S1 = SIGNED_IN - {"cashier of another store"}
MANAGERS = frozenset({"manager", "admin"})
CAMPAIGN = "UHVzaENhbXBhaWduOjE="  # PushCampaign:1 (none exists: an allowed caller gets a userError or null)
REFERRAL = "UmVmZXJyYWw6MQ=="  # Referral:1 (none exists)
CAMPAIGN_FIELDS = '{name: "Spring", title: [{locale: "en", text: "Hi"}], body: [{locale: "en", text: "Hello"}]}'


@dataclass(frozen=True)
class Operation:
    document: str
    allowed: frozenset[str]  # callers that pass authorization; the others get UNAUTHENTICATED / FORBIDDEN
    variables: dict[str, Any] = field(default_factory=dict)  # "$member" is replaced by the member's global id


OPERATIONS: dict[str, Operation] = {
    "staffSessionCreate": Operation(
        'mutation { staffSessionCreate(input: {email: "a@example.com", password: "wrong password"}) '
        "{ userErrors { code } } }",
        allowed=frozenset(ACTORS),  # signing in is the one open operation
    ),
    "staffMe": Operation("{ staffMe { kind } }", allowed=SIGNED_IN),
    "memberLookup": Operation(
        "query($m: String!) { memberLookup(query: $m) { memberNumber } }", allowed=SIGNED_IN, variables={"m": "$number"}
    ),
    "pointsAdjust": Operation(
        "mutation($m: ID!) { pointsAdjust(input: {member: $m, amount: 10, reasonCode: GOODWILL, idempotencyKey: "
        '"k1", storeCode: "S1"}) { userErrors { code } } }',
        allowed=IN_STORE_S1,
        variables={"m": "$member"},
    ),
    "offerRedeem": Operation(
        'mutation($m: ID!) { offerRedeem(input: {member: $m, offerId: "T2ZmZXI6MQ==", storeCode: "S1", '
        'idempotencyKey: "k1"}) { userErrors { code } } }',
        allowed=IN_STORE_S1,
        variables={"m": "$member"},
    ),
    "purchaseRecord": Operation(
        "mutation($i: PurchaseRecordInput!) { purchaseRecord(input: $i) { userErrors { code } } }",
        allowed=IN_STORE_S1,
        variables={"i": "$receipt"},
    ),
    "purchasePreview": Operation(
        "query($i: PurchaseRecordInput!) { purchasePreview(input: $i) { userErrors { code } } }",
        allowed=IN_STORE_S1,
        variables={"i": "$receipt"},
    ),
    "purchaseRefund": Operation(
        'mutation { purchaseRefund(input: {storeCode: "S1", receiptId: "R1", refundId: "F1", amount: 100}) '
        "{ userErrors { code } } }",
        allowed=IN_STORE_S1,
    ),
    "engagementRecord": Operation(
        'mutation($m: ID!) { engagementRecord(input: {member: $m, eventType: "review_written", externalId: "e1", '
        'occurredAt: "2026-03-02T11:00:00+00:00"}) { userErrors { code } } }',
        allowed=SIGNED_IN,  # bound to no store: store-bound integrations may post too
        variables={"m": "$member"},
    ),
    "pushCampaignCreate": Operation(
        f"mutation {{ pushCampaignCreate(input: {{campaign: {CAMPAIGN_FIELDS}}}) {{ userErrors {{ code }} }} }}",
        allowed=MANAGERS,
    ),
    "pushCampaignUpdate": Operation(
        f'mutation {{ pushCampaignUpdate(input: {{id: "{CAMPAIGN}", campaign: {CAMPAIGN_FIELDS}}}) '
        "{ userErrors { code } } }",
        allowed=MANAGERS,
    ),
    "pushCampaignSchedule": Operation(
        f'mutation {{ pushCampaignSchedule(input: {{id: "{CAMPAIGN}"}}) {{ userErrors {{ code }} }} }}',
        allowed=MANAGERS,
    ),
    "pushCampaignCancel": Operation(
        f'mutation {{ pushCampaignCancel(input: {{id: "{CAMPAIGN}"}}) {{ userErrors {{ code }} }} }}',
        allowed=MANAGERS,
    ),
    "pushCampaign": Operation(f'{{ pushCampaign(id: "{CAMPAIGN}") {{ name }} }}', allowed=MANAGERS),
    "pushCampaigns": Operation(
        "{ pushCampaigns(first: 5) { edges { node { name dryRun { reach } figures { sent } } } } }",
        allowed=MANAGERS,
    ),
    "referrals": Operation("{ referrals(status: FLAGGED, first: 5) { edges { node { code } } } }", allowed=MANAGERS),
    "referralReview": Operation(
        f'mutation {{ referralReview(input: {{referral: "{REFERRAL}", decision: APPROVE}}) '
        "{ userErrors { code } } }",
        allowed=MANAGERS,
    ),
    "membershipPaymentRecord": Operation(
        'mutation($m: ID!) { membershipPaymentRecord(input: {member: $m, planCode: "PLUS", paymentId: "p1", '
        'outcome: SUCCEEDED, amount: 4900, currency: "EUR", occurredAt: "2026-03-02T11:00:00+00:00"}) '
        "{ userErrors { code } } }",
        allowed=MANAGERS,  # the payment system's API key holds the manager role; a till's cashier key does not
        variables={"m": "$member"},
    ),
    "staffMembershipCancel": Operation(
        "mutation($m: ID!) { staffMembershipCancel(input: {member: $m}) { userErrors { code } } }",
        allowed=SIGNED_IN,  # a member asking at any till
        variables={"m": "$member"},
    ),
    "cashbackSpend": Operation(
        'mutation($m: ID!) { cashbackSpend(input: {member: $m, storeCode: "S1", receiptId: "R1", amount: 100, '
        'idempotencyKey: "k1"}) { userErrors { code } } }',
        allowed=IN_STORE_S1,
        variables={"m": "$member"},
    ),
    "cashbackPayout": Operation(
        'mutation($m: ID!) { cashbackPayout(input: {member: $m, amount: 100, reference: "P1"}) '
        "{ userErrors { code } } }",
        allowed=MANAGERS,
        variables={"m": "$member"},
    ),
    "voucherRedeem": Operation(
        'mutation { voucherRedeem(input: {code: "ABCD-EFGH-JKLM", storeCode: "S1"}) { userErrors { code } } }',
        allowed=IN_STORE_S1,
    ),
}


class RefusingSessions:
    async def create(self, email: str, password: str) -> IssuedStaffSession:
        raise InvalidCredentials("wrong email or password")


def test_every_staff_operation_is_in_the_table() -> None:
    schema = STAFF_SCHEMA._schema
    roots = [schema.query_type, schema.mutation_type, schema.subscription_type]
    operations = {name for root in roots if root is not None for name in root.fields}

    assert operations == set(OPERATIONS)


@pytest.mark.parametrize("caller", list(ACTORS))
@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_staff_operation_authorization(anna: Member, name: str, caller: str) -> None:
    # given a member with points and one caller
    await give_available(anna.id, 100)
    operation = OPERATIONS[name]
    substitutes: dict[str, Any] = {"$member": relay.to_base64("Member", anna.id), "$number": anna.member_number}
    substitutes["$receipt"] = {
        "member": substitutes["$member"],
        "storeCode": "S1",
        "receiptId": "R1",
        "occurredAt": "2026-03-02T11:00:00+00:00",
        "currency": "EUR",
        "total": 1_000,
        "lines": [{"sku": "A", "amount": 1_000}],
    }
    variables = {k: substitutes.get(v, v) for k, v in operation.variables.items()}
    context = StaffContext(request=None, response=None, actor=ACTORS[caller], staff_sessions=RefusingSessions())

    # when the caller runs the operation
    result = await STAFF_SCHEMA.execute(operation.document, variable_values=variables, context_value=context)

    # then it runs for the allowed callers and is refused, writing nothing, for the others
    if caller in operation.allowed:
        assert result.errors is None, result.errors
        assert result.data is not None
    else:
        assert not any((result.data or {}).values())  # null, or a nullable field set to null
        assert result.errors is not None
        expected = "UNAUTHENTICATED" if ACTORS[caller] is None else "FORBIDDEN"
        assert [e.extensions for e in result.errors] == [{"code": expected}]
        assert await AuditLog.all().count() == 0
        assert await LedgerEntry.all().count() == 1  # the seed only
