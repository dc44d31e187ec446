"""Staff mutations' `member` input with malformed, foreign and out-of-range ids: MEMBER_NOT_FOUND, nothing written."""

from __future__ import annotations

from loyalty.actors import Actor
from loyalty.models import AuditLog, Member
from tests.loyalty import ledger_helpers
from tests.schema.staff.conftest import run_staff
from tests.schema.test_global_id_inputs import bad_ids

ADJUST = """
mutation Adjust($input: PointsAdjustInput!) {
  pointsAdjust(input: $input) { adjustment { amount } member { memberNumber } userErrors { code field } }
}
"""


async def test_a_staff_mutation_with_a_bad_member_id_is_member_not_found_and_writes_nothing(
    anna: Member, cashier: Actor
) -> None:
    # Given Anna with 400 points
    await ledger_helpers.give_available(anna.id, 400)

    # When a cashier adjusts her points with bad member ids
    payloads = []
    for n, member in enumerate(bad_ids("Member", anna.id)):
        variables = {"member": member, "amount": 10, "reasonCode": "GOODWILL", "idempotencyKey": f"k{n}"}
        result = await run_staff(ADJUST, cashier, {"input": variables})
        assert result.errors is None, (member, result.errors)
        payloads.append(result.data["pointsAdjust"])

    # Then each is MEMBER_NOT_FOUND, and neither points nor audit entries were written
    assert payloads == [
        {"adjustment": None, "member": None, "userErrors": [{"code": "MEMBER_NOT_FOUND", "field": ["input", "member"]}]}
    ] * len(payloads)
    assert await ledger_helpers.balances(anna.id) == (400, 0, 400)
    assert await AuditLog.all().count() == 0
