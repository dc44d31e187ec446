"""Authorization in the domain: every `loyalty` function that takes an actor checks it before doing anything.

The rule is the staff API's (`schema.staff.context.StaffContext.require`): cashier < manager < admin, and an actor
bound to stores acts only in them. The schema and the console check first too; the domain checks again so that no
other caller (a job, an import, a new entry point) can skip it. `test_every_function_that_takes_an_actor_is_here`
finds those functions by introspection, so a new one fails until it has a case below.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.transactions import in_transaction

import loyalty
from loyalty import adjustments, campaigns, cashback, engagement, memberships, offers, purchases, referrals, vouchers
from loyalty.actors import SYSTEM, Actor, Forbidden
from loyalty.clock import FrozenClock
from loyalty.earning import LineInput
from loyalty.errors import DomainError
from loyalty.models import AuditLog, EngagementRule, Offer, OfferBenefit, PaymentOutcome, Program, StaffRole
from tests.conftest import START
from tests.loyalty.ledger_helpers import give_available, new_member, purchase


class _NoRights(Actor):
    """An actor below every rule: what the checks must refuse where no real role or store is refused (engagement is
    open to every cashier, in any store); everywhere else it proves the check comes before anything else."""

    def has_role(self, role: StaffRole) -> bool:
        return False

    def may_act_in(self, store_code: str | None) -> bool:
        return False


HERE = Actor(kind="staff", id=21, role=StaffRole.CASHIER, store_codes=("S1",), name="Cashier in S1")
ELSEWHERE = Actor(kind="staff", id=22, role=StaffRole.CASHIER, store_codes=("S2",), name="Cashier in S2")
MANAGER_ELSEWHERE = Actor(kind="api_key", id=23, role=StaffRole.MANAGER, store_codes=("S2",), name="POS in S2")
NO_RIGHTS = _NoRights(kind="staff", id=24, role=StaffRole.CASHIER, name="No rights")


@dataclass(frozen=True)
class Case:
    """A call of an actor-taking function on data `given` made: `may` (and SYSTEM) may make it — it succeeds, or
    fails with `outcome` for a reason that is not the actor — and every one of `may_not` is refused."""

    function: str  # module.function
    label: str
    given: Callable[[], Awaitable[dict[str, Any]]]
    act: Callable[[Actor, dict[str, Any]], Awaitable[object]]
    may: Actor
    may_not: tuple[Actor, ...]
    outcome: type[DomainError] | None = None


async def _member() -> dict[str, Any]:
    member = await new_member("uid-authz")
    await give_available(member.id, 1_000)
    return {"member": member.id}


async def _member_with_purchase() -> dict[str, Any]:
    data = await _member()
    await purchase(data["member"], "R1", 10_000, START, store_code="S1")
    return data


async def _member_with_voucher() -> dict[str, Any]:
    data = await _member()
    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, data["member"])
    data["code"], data["voucher"] = voucher.code, voucher.id
    return data


async def _member_and_offer() -> dict[str, Any]:
    data = await _member()
    offer = await Offer.create(
        name="Bonus",
        benefit=OfferBenefit.BONUS_POINTS,
        value=100,
        valid_from=START - timedelta(days=1),
        valid_until=START + timedelta(days=30),
    )
    return {**data, "offer": offer.id}


async def _member_and_rule() -> dict[str, Any]:
    await EngagementRule.create(event_type="review_written", points=25)
    return await _member()


async def _flagged_referral() -> dict[str, Any]:
    await referrals.apply_referral_config({"referee_points": 10, "referrer_points": 20})
    referrer = await new_member("uid-referrer")
    referee = await new_member("uid-referee")
    await referee.filter(id=referee.id).update(email_key=referrer.email_key)  # the same person
    referral = await referrals.apply_referral(referee.id, await referrals.code_of(referrer.id))
    return {"referral": referral.id}


def _receipt(data: dict[str, Any]) -> purchases.PurchaseRequest:
    return purchases.PurchaseRequest(
        member_id=data["member"],
        store_code="S1",
        receipt_id="R2",
        occurred_at=START,
        currency="EUR",
        total=5_000,
        lines=(LineInput(sku="ITEM", category="", quantity=1, amount=5_000),),
    )


async def _member_with_receipt_recorded() -> dict[str, Any]:
    data = await _member()
    await purchases.record_purchase(HERE, _receipt(data))
    return data


async def _member_with_refund_made() -> dict[str, Any]:
    data = await _member_with_purchase()
    await purchases.refund_purchase(HERE, store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000)
    return data


def _adjust(amount: int) -> Callable[[Actor, dict[str, Any]], Awaitable[object]]:
    async def act(actor: Actor, data: dict[str, Any]) -> object:
        return await adjustments.adjust_member_points(
            actor,
            data["member"],
            amount,
            reason=adjustments.AdjustmentReason.GOODWILL,
            idempotency_key="k1",
            store_code="S1",
        )

    return act


_CAMPAIGN = campaigns.CampaignSpec(name="Spring", title={"en": "Hi"}, body={"en": "Hello"})


async def _draft() -> dict[str, Any]:
    data = await _member()
    draft = await campaigns.create_campaign(SYSTEM, _CAMPAIGN)
    await AuditLog.all().delete()  # the draft's own audit entry is part of the given
    return {**data, "campaign": draft.id}


def _payment(data: dict[str, Any]) -> memberships.PaymentRequest:
    return memberships.PaymentRequest(
        data["member"], "PLUS", "p1", PaymentOutcome.SUCCEEDED, 4900, "EUR", START - timedelta(minutes=1)
    )


CASES = [
    Case(
        "loyalty.memberships.record_membership_payment",
        "a payment for a plan that does not exist (a manager's key bound to a store: payments belong to none)",
        _member,
        lambda actor, data: memberships.record_membership_payment(actor, _payment(data)),
        MANAGER_ELSEWHERE,
        (HERE, ELSEWHERE, NO_RIGHTS),
        outcome=memberships.PlanUnknown,
    ),
    Case(
        "loyalty.memberships.cancel_membership",
        "a member without a membership (any cashier, any store)",
        _member,
        lambda actor, data: memberships.cancel_membership(actor, data["member"]),
        ELSEWHERE,
        (NO_RIGHTS,),
        outcome=memberships.MembershipNotActive,
    ),
    Case(
        "loyalty.purchases.record_purchase",
        "a receipt in S1",
        _member,
        lambda actor, data: purchases.record_purchase(actor, _receipt(data)),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.purchases.record_purchase",
        "a retry of a receipt recorded in S1 (no replay of its answer)",
        _member_with_receipt_recorded,
        lambda actor, data: purchases.record_purchase(actor, _receipt(data)),
        HERE,
        (ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.purchases.refund_purchase",
        "a retry of a refund made in S1 (no replay of its answer)",
        _member_with_refund_made,
        lambda actor, data: purchases.refund_purchase(
            actor, store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000
        ),
        HERE,
        (ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.purchases.refund_purchase",
        "a refund in S1",
        _member_with_purchase,
        lambda actor, data: purchases.refund_purchase(
            actor, store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000
        ),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.vouchers.redeem_voucher",
        "a right code in S1",
        _member_with_voucher,
        lambda actor, data: vouchers.redeem_voucher(actor, code=data["code"], store_code="S1"),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.vouchers.redeem_voucher",
        "a wrong code in S1 (no attempt counted)",
        _member_with_voucher,
        lambda actor, data: vouchers.redeem_voucher(
            actor, code="0000000000000000", store_code="S1", member_id=data["member"]
        ),
        HERE,
        (ELSEWHERE, NO_RIGHTS),
        vouchers.InvalidCode,
    ),
    Case(
        "loyalty.vouchers.redeem_member_voucher",
        "a listed voucher in S1",
        _member_with_voucher,
        lambda actor, data: vouchers.redeem_member_voucher(
            actor, member_id=data["member"], voucher_id=data["voucher"], store_code="S1", idempotency_key="k1"
        ),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.offers.redeem_offer",
        "an offer in S1",
        _member_and_offer,
        lambda actor, data: offers.redeem_offer(
            actor,
            member_id=data["member"],
            offer_id=data["offer"],
            store_code="S1",
            purchase_total=None,
            idempotency_key="k1",
        ),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.adjustments.adjust_member_points",
        "an adjustment in S1",
        _member,
        _adjust(100),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.adjustments.adjust_member_points",
        "an adjustment above the cashiers' cap",
        _member,
        _adjust(501),
        Actor(kind="staff", id=25, role=StaffRole.MANAGER, store_codes=("S1",), name="Manager in S1"),
        (HERE,),
    ),
    Case(
        "loyalty.engagement.record_engagement",
        "an engagement event",
        _member_and_rule,
        lambda actor, data: engagement.record_engagement(
            actor, data["member"], event_type="review_written", external_id="rev-1", occurred_at=START
        ),
        ELSEWHERE,  # any cashier, in any store
        (NO_RIGHTS,),
    ),
    Case(
        "loyalty.campaigns.create_campaign",
        "a push campaign draft",
        _member,
        lambda actor, data: campaigns.create_campaign(actor, _CAMPAIGN),
        MANAGER_ELSEWHERE,  # bound to no store: any manager
        (HERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.campaigns.update_campaign",
        "a push campaign draft changed",
        _draft,
        lambda actor, data: campaigns.update_campaign(actor, data["campaign"], _CAMPAIGN),
        MANAGER_ELSEWHERE,
        (HERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.campaigns.schedule_campaign",
        "a push campaign scheduled",
        _draft,
        lambda actor, data: campaigns.schedule_campaign(actor, data["campaign"]),
        MANAGER_ELSEWHERE,
        (HERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.campaigns.cancel_campaign",
        "a push campaign cancelled",
        _draft,
        lambda actor, data: campaigns.cancel_campaign(actor, data["campaign"]),
        MANAGER_ELSEWHERE,
        (HERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.referrals.review_referral",
        "a flagged referral rejected",
        _flagged_referral,
        lambda actor, data: referrals.review_referral(actor, data["referral"], referrals.ReviewDecision.REJECT),
        MANAGER_ELSEWHERE,  # bound to no store: any manager
        (HERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.campaigns.list_campaigns",
        "the push campaigns listed",
        _draft,
        lambda actor, data: campaigns.list_campaigns(actor, limit=10),
        MANAGER_ELSEWHERE,
        (HERE, NO_RIGHTS),
    ),
    Case(
        "loyalty.cashback.spend_cashback",
        "cashback spent in S1 (the member has none: refused for that, after the actor)",
        _member,
        lambda actor, data: cashback.spend_cashback(
            actor, data["member"], store_code="S1", receipt_id="R1", amount=100, idempotency_key="k1"
        ),
        HERE,
        (ELSEWHERE, MANAGER_ELSEWHERE, NO_RIGHTS),
        cashback.InsufficientCashback,
    ),
    Case(
        "loyalty.cashback.payout_cashback",
        "cashback paid out (bound to no store; the member has none)",
        _member,
        lambda actor, data: cashback.payout_cashback(actor, data["member"], amount=100, reference="P1"),
        MANAGER_ELSEWHERE,  # any manager, or an API key with the manager role
        (HERE, NO_RIGHTS),
        cashback.InsufficientCashback,
    ),
]

# Functions that take an actor as data and act for no one: they are called by checked functions, with their actor.
NOT_ACTIONS = {
    "loyalty.audit.record_audit": "writes the audit entry of an action its caller has checked",
    "loyalty.staff.token_subject": "names a signed-in staff member in a token",
    # `actor` is the label a consent change records (who made it), not an `Actor` to authorize: the member changes
    # their own consent; a staff entry point (issue 14) checks its actor before calling these.
    "loyalty.consent.set_consent": "records who changed a consent; callers authorize",
    "loyalty.consent.apply_consent": "records who changed a consent; callers authorize",
}


def _takes_an_actor(function: Callable[..., object]) -> bool:
    return any(
        parameter.name == "actor" or re.search(r"\bActor\b", str(parameter.annotation))
        for parameter in inspect.signature(function).parameters.values()
    )


def _public_functions() -> Iterator[tuple[str, Callable[..., object]]]:
    """Every public function and public method defined in a `loyalty` module, by qualified name."""
    for info in pkgutil.walk_packages(loyalty.__path__, "loyalty."):
        if info.name.startswith("loyalty.migrations"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value):
                for attribute, member in vars(value).items():
                    method = getattr(member, "__func__", member)  # classmethods and staticmethods too
                    if not attribute.startswith("_") and inspect.isfunction(method):
                        yield f"{module.__name__}.{name}.{attribute}", method


async def _everything() -> dict[str, list[str]]:
    """Every row of every table: a refused call must leave all of them as they were (no insert, update or delete)."""
    return {
        name: sorted(repr(row) for row in await model.all().values())
        for name, model in sorted(Tortoise.apps["loyalty"].items())
    }


def _refusals() -> list[Any]:
    return [
        pytest.param(case, actor, id=f"{case.function.rsplit('.', 1)[1]}: {case.label}, by {actor.name}")
        for case in CASES
        for actor in case.may_not
    ]


def test_every_function_that_takes_an_actor_is_here() -> None:
    taking = {name for name, function in _public_functions() if _takes_an_actor(function)}

    assert taking - set(NOT_ACTIONS) == {case.function for case in CASES}
    assert set(NOT_ACTIONS) <= taking  # no stale exemptions


@pytest.mark.parametrize(("case", "actor"), _refusals())
async def test_an_actor_who_may_not_is_refused_and_nothing_is_written(
    program: Program, clock: FrozenClock, case: Case, actor: Actor
) -> None:
    # given
    data = await case.given()
    before = await _everything()

    # when / then
    with pytest.raises(Forbidden):
        await case.act(actor, data)
    assert await _everything() == before


def _allowed() -> list[Any]:
    return [
        pytest.param(case, actor, id=f"{case.function.rsplit('.', 1)[1]}: {case.label}, by {actor.name}")
        for case in CASES
        for actor in (case.may, SYSTEM)  # SYSTEM, klubb itself (seeding, jobs), is an admin in every store
    ]


@pytest.mark.parametrize(("case", "actor"), _allowed())
async def test_an_actor_who_may_gets_past_the_check(
    program: Program, clock: FrozenClock, case: Case, actor: Actor
) -> None:
    # given
    data = await case.given()

    # when / then
    if case.outcome is None:
        await case.act(actor, data)
    else:
        with pytest.raises(case.outcome):
            await case.act(actor, data)


@pytest.mark.parametrize(
    ("store_code", "message"),
    [
        ("S2", "not allowed in store S2"),
        ("S" * 5000, "not allowed in this store"),  # a code no store can have is not echoed back
        ("S2\x00", "not allowed in this store"),
    ],
)
def test_a_store_refusal_names_the_store_only_when_it_could_be_one(store_code: str | None, message: str) -> None:
    cashier = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",))

    with pytest.raises(Forbidden) as refused:
        cashier.require(StaffRole.CASHIER, store_code)

    assert (refused.value.message, refused.value.field) == (message, "store_code")
