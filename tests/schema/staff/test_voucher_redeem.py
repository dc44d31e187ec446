"""voucherRedeem at the checkout: single use, expiry, foreign codes, throttled guessing, authorization, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tortoise.transactions import in_transaction

from loyalty import vouchers
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import AuditLog, Member, Program, Reward, RewardKind, StaffRole, ThrottleCounter, Voucher
from loyalty.models import VoucherStatus as Status
from schema.global_ids import MEMBER
from schema.staff.context import StaffContext
from schema.staff.schema import build_staff_schema
from tests.schema.staff.conftest import run_staff

REDEEM = """
mutation Redeem($input: VoucherRedeemInput!) {
  voucherRedeem(input: $input) {
    voucher { code kind name value sku storeCode redeemedAt }
    member { memberNumber }
    userErrors { code message field }
  }
}
"""
WRONG = "0000000000000000"


async def issue(member: Member, reward: Reward | None = None) -> Voucher:
    async with in_transaction() as conn:
        return await vouchers.issue_voucher(conn, member.id, reward=reward)


async def redeem(actor: Actor | None, code: str, store: str = "S1", member: Member | None = None) -> Any:
    variables = {"input": {"code": code, "storeCode": store, "member": MEMBER.encode(member.id) if member else None}}
    result = await run_staff(REDEEM, actor, variables)
    assert result.errors is None, result.errors
    return result.data["voucherRedeem"]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def test_a_cashier_redeems_a_scanned_voucher_once_and_it_is_audited(
    program: Program, clock: FrozenClock, cashier: Actor
) -> None:
    anna, _ = await enroll_member("uid-anna", display_name="Anna")
    five_off = await Reward.create(name="5 EUR off", kind=RewardKind.AMOUNT_OFF, points_cost=50, value=500)
    voucher = await issue(anna, five_off)

    payload = await redeem(cashier, vouchers.barcode_value(voucher.code), member=anna)

    assert payload == {
        "voucher": {
            "code": vouchers.display_code(voucher.code),
            "kind": "amount_off",
            "name": "5 EUR off",
            "value": 500,
            "sku": None,
            "storeCode": "S1",
            "redeemedAt": clock.now().isoformat(),
        },
        "member": {"memberNumber": anna.member_number},
        "userErrors": [],
    }
    stored = await Voucher.get(id=voucher.id)
    assert (stored.status, stored.redeemed_at, stored.redeemed_store) == (Status.REDEEMED, clock.now(), "S1")
    audit = await AuditLog.get(action="voucher.redeem")
    assert (audit.actor_type, audit.actor_id, audit.store_code, audit.member_id, audit.target) == (
        "staff",
        1,
        "S1",
        anna.id,
        f"voucher:{voucher.id}",
    )
    assert (audit.before, audit.after) == ({"status": "active"}, {"status": "redeemed"})

    again = await redeem(cashier, vouchers.display_code(voucher.code).lower())

    assert (again["voucher"], codes(again)) == (None, ["ALREADY_REDEEMED"])
    assert await AuditLog.filter(action="voucher.redeem").count() == 1


async def test_expired_cancelled_unknown_and_foreign_codes_have_precise_errors_and_change_nothing(
    program: Program, clock: FrozenClock, cashier: Actor
) -> None:
    anna, _ = await enroll_member("uid-anna")
    bo, _ = await enroll_member("uid-bo")
    expired = await issue(anna)
    clock.advance(timedelta(days=30))  # exactly at its expiry
    cancelled = await issue(anna)
    await Voucher.filter(id=cancelled.id).update(status=Status.CANCELLED)
    bos = await issue(bo)

    results = {
        "expired": codes(await redeem(cashier, expired.code)),
        "cancelled": codes(await redeem(cashier, cancelled.code)),
        "unknown": codes(await redeem(cashier, WRONG)),
        "garbage": codes(await redeem(cashier, "not a code")),
        "foreign": codes(await redeem(cashier, bos.code, member=anna)),
    }

    assert results == {
        "expired": ["VOUCHER_EXPIRED"],
        "cancelled": ["ALREADY_CANCELLED"],
        "unknown": ["INVALID_CODE"],
        "garbage": ["INVALID_CODE"],
        "foreign": ["INVALID_CODE"],
    }
    assert [v.status for v in await Voucher.all().order_by("id")] == [Status.EXPIRED, Status.CANCELLED, Status.ACTIVE]
    assert await AuditLog.all().count() == 0


async def test_authorization_cashier_only_in_own_store_managers_anywhere(
    program: Program, cashier: Actor, manager: Actor, admin: Actor
) -> None:
    anna, _ = await enroll_member("uid-anna")
    first, second = await issue(anna), await issue(anna)

    anonymous = await run_staff(REDEEM, None, {"input": {"code": first.code, "storeCode": "S1"}})
    elsewhere = await run_staff(REDEEM, cashier, {"input": {"code": first.code, "storeCode": "S2"}})

    assert anonymous.errors is not None
    assert anonymous.errors[0].extensions == {"code": "UNAUTHENTICATED"}
    assert elsewhere.errors is not None
    assert elsewhere.errors[0].extensions == {"code": "FORBIDDEN"}
    assert (await Voucher.get(id=first.id)).status == Status.ACTIVE
    assert codes(await redeem(manager, first.code, store="S2")) == []
    assert codes(await redeem(admin, second.code, store="S9")) == []


async def test_bad_input_is_refused_before_anything_is_counted(program: Program, manager: Actor) -> None:
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)

    not_a_member = await run_staff(
        REDEEM, manager, {"input": {"code": voucher.code, "storeCode": "S1", "member": "garbage"}}
    )
    no_store = await redeem(manager, voucher.code, store="")

    assert codes(not_a_member.data["voucherRedeem"]) == ["MEMBER_NOT_FOUND"]
    assert [(e["code"], e["field"]) for e in no_store["userErrors"]] == [("INVALID", ["input", "storeCode"])]
    assert (await Voucher.get(id=voucher.id)).status == Status.ACTIVE
    assert await ThrottleCounter.all().count() == 0


async def test_after_5_wrong_codes_even_the_right_code_is_refused_for_15_minutes(
    program: Program, clock: FrozenClock, cashier: Actor
) -> None:
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)

    wrong = [codes(await redeem(cashier, f"{n:016d}")) for n in range(5)]
    right = codes(await redeem(cashier, voucher.code))
    clock.advance(timedelta(minutes=15))
    after_the_window = codes(await redeem(cashier, voucher.code))

    assert wrong == [["INVALID_CODE"]] * 5
    assert right == ["TOO_MANY_ATTEMPTS"]
    assert after_the_window == []


async def test_wrong_codes_for_a_member_count_against_the_member_across_tills(
    program: Program, cashier: Actor, manager: Actor
) -> None:
    anna, _ = await enroll_member("uid-anna")
    bo, _ = await enroll_member("uid-bo")
    annas, bos = await issue(anna), await issue(bo)
    for n in range(5):
        await redeem(cashier, f"{n:016d}", member=anna)

    # another till (manager) guessing for the same member is refused; for another member it is not
    assert codes(await redeem(manager, annas.code, member=anna)) == ["TOO_MANY_ATTEMPTS"]
    assert codes(await redeem(manager, bos.code, member=bo)) == []
    # an API key is its own subject
    pos = Actor(kind="api_key", id=1, role=StaffRole.CASHIER, store_codes=("S1",))
    assert codes(await redeem(pos, annas.code)) == []
    counted = await ThrottleCounter.filter(attempts__gt=0).order_by("subject").values_list("subject", "attempts")
    assert counted == [("member:1", 5), ("staff:1", 5)]  # the right codes were not counted


async def test_50_aliased_guesses_in_one_request_get_at_most_5_answers(program: Program, cashier: Actor) -> None:
    # The alias limit would refuse this document outright; the throttle must hold even without it.
    schema = build_staff_schema(production=False, max_aliases=100, max_tokens=10_000)
    anna, _ = await enroll_member("uid-anna")
    voucher = await issue(anna)
    guesses = [f"{n:016d}" for n in range(49)] + [voucher.code]
    document = (
        "mutation {\n"
        + "\n".join(
            f'  a{n}: voucherRedeem(input: {{code: "{code}", storeCode: "S1"}}) {{ userErrors {{ code }} }}'
            for n, code in enumerate(guesses)
        )
        + "\n}"
    )

    result = await schema.execute(document, context_value=StaffContext(request=None, response=None, actor=cashier))

    assert result.errors is None
    answers = [codes(result.data[f"a{n}"]) for n in range(50)]
    assert answers == [["INVALID_CODE"]] * 5 + [["TOO_MANY_ATTEMPTS"]] * 45
    assert (await Voucher.get(id=voucher.id)).status == Status.ACTIVE


async def test_the_default_alias_limit_refuses_50_aliases(program: Program, cashier: Actor) -> None:
    document = (
        "mutation {"
        + " ".join(
            f'a{n}: voucherRedeem(input: {{code: "{n:016d}", storeCode: "S1"}}) {{ userErrors {{ code }} }}'
            for n in range(50)
        )
        + "}"
    )

    result = await run_staff(document, cashier)

    assert result.errors is not None
    assert await ThrottleCounter.all().count() == 0
