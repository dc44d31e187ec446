"""Seeding a program (and optionally demo members who live a story) from a parsed TOML document.

The demo members (`[[members]]`) have no rules of their own, as the bench seeder has none: each one's `steps`
(enrolment, purchases, rewards, the till, offer activations, days back from the seeding time) run through the
production entry points under a frozen business clock (`loyalty.clock.FrozenClock`), in time order over all the
members, with the periodic jobs after every step as the worker would have run them. So points are pending or
available, tiers held, vouchers expired and members lapsing exactly as the rules make them. A member already
enrolled is left as it is, so seeding again changes nothing. `demo_members` reads back what each member shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loyalty import clock, jobs
from loyalty.actors import SYSTEM
from loyalty.automations import apply_push_config
from loyalty.earning import LineInput, apply_earning_config
from loyalty.errors import DomainError, InvalidInput
from loyalty.ledger import settle_member_if_due
from loyalty.members import enroll_member
from loyalty.memberships import apply_membership_config
from loyalty.models import Member, Offer, OfferActivation, Reward, Voucher, VoucherStatus
from loyalty.offers import activate_offer, apply_offer_config, lifecycle_stage
from loyalty.program import apply_program_config, load_program, tiers_of
from loyalty.purchases import PurchaseRequest, record_purchase
from loyalty.referrals import apply_referral_config
from loyalty.rewards import apply_reward_config, redeem_reward
from loyalty.staff import StaffEmailTaken, create_staff
from loyalty.stamps import apply_stamp_card_config, stamp_cards_for_members
from loyalty.vouchers import effective_status, redeem_voucher
from loyalty.wallet import apply_wallet_design

DEMO_STORE = "DEMO"
DEMO_UID_PREFIX = "demo:"
STEP_KINDS = ("purchase", "reward", "redeem_voucher", "activate")


async def seed_from_config(config: dict[str, Any]) -> str:
    """Apply the program config, `[[offers]]`, campaigns, rewards, stamp cards, membership plans and staff, then let
    the `[[members]]` live their stories (idempotent)."""
    program = await apply_program_config(config)
    offers = await apply_offer_config(config.get("offers", []))
    rules = await apply_earning_config(config.get("campaigns", []), config.get("bonus_rules", []))
    rewards = await apply_reward_config(config.get("rewards", []))
    cards = await apply_stamp_card_config(config.get("stamp_cards", []))
    await apply_wallet_design(config.get("wallet", {}))
    automations = await apply_push_config(config.get("push", {}))
    await apply_referral_config(config.get("referrals", {}))
    plans = await apply_membership_config(config.get("membership_plans", []))
    staff = await _seed_staff(config.get("staff", []))
    members = config.get("members", [])
    await seed_members(members)
    return (
        f"program {program.name!r} with {len(program.tiers)} tiers, {len(members)} demo members, {offers} offers, "
        f"{rules} campaigns and bonus rules, {rewards} rewards, {cards} stamp cards, {staff} staff accounts, "
        f"{automations} push automations, {plans} membership plans"
    )


async def _seed_staff(specs: list[dict[str, Any]]) -> int:
    # Demo logins only: a real program creates staff with `klubb staff create` (no passwords in files).
    for spec in specs:
        try:
            await create_staff(
                spec["email"], spec["password"], spec["role"], spec.get("stores", []), spec.get("name", "")
            )
        except StaffEmailTaken:
            continue  # seeding is idempotent
        except (KeyError, DomainError) as exc:
            raise DomainError(f"staff config {spec.get('email')!r}: {exc}") from exc
    return len(specs)


# --- demo members' stories -----------------------------------------------------------------------


@dataclass
class _Story:
    """One member's story as it runs: the member once enrolled, and a counter for its keys and receipt ids."""

    spec: dict[str, Any]
    member: Member | None = None
    made: int = 0

    @property
    def member_id(self) -> int:
        assert self.member is not None, "a step before the enrolment"
        return self.member.id

    def next_key(self) -> str:
        self.made += 1
        return f"{self.member.member_number if self.member else 'new'}-{self.made}"


Action = Callable[[], Awaitable[object]]


def _days_ago(value: object, where: str) -> timedelta:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{where}: days_ago must be a whole number of days, 0 or more", field="days_ago")
    return timedelta(days=value)


def _lines(raw: object, where: str) -> tuple[LineInput, ...]:
    """`[[sku, category, quantity, amount in minor units], ...]`."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{where}: a purchase lists its lines", field="purchase")
    lines = []
    for line in raw:
        if not (isinstance(line, list) and len(line) == 4):
            raise InvalidInput(f"{where}: a line is [sku, category, quantity, amount]", field="purchase")
        sku, category, quantity, amount = line
        lines.append(LineInput(sku=str(sku), category=str(category), quantity=int(quantity), amount=int(amount)))
    return tuple(lines)


async def _by_name(model: type[Reward] | type[Offer], name: object, where: str) -> int:
    found = await model.get_or_none(name=name)
    if found is None:
        raise InvalidInput(f"{where}: no {model.__name__.lower()} named {name!r}", field="steps")
    return int(found.id)


async def _step_action(story: _Story, step: dict[str, Any], where: str) -> Action:
    """The step as an action to run later; what can be checked now (its kind, lines, the reward or offer it names)
    is checked now, so a malformed story writes nothing."""
    kinds = [kind for kind in STEP_KINDS if kind in step]
    if len(kinds) != 1:
        raise InvalidInput(f"{where}: a step does one of {', '.join(STEP_KINDS)}", field="steps")
    kind = kinds[0]
    if kind == "purchase":
        lines = _lines(step["purchase"], where)

        async def purchase() -> object:
            program = await load_program()
            return await record_purchase(
                SYSTEM,
                PurchaseRequest(
                    member_id=story.member_id,
                    store_code=DEMO_STORE,
                    receipt_id=story.next_key(),
                    occurred_at=clock.now(),
                    currency=program.currency,
                    total=sum(line.amount for line in lines),
                    lines=lines,
                ),
            )

        return purchase
    if kind == "reward":
        reward_id = await _by_name(Reward, step["reward"], where)

        async def reward() -> object:
            return await redeem_reward(story.member_id, reward_id, idempotency_key=f"demo-{story.next_key()}")

        return reward
    if kind == "redeem_voucher":
        voucher_reward_id = await _by_name(Reward, step["redeem_voucher"], where)

        async def at_the_till() -> object:
            voucher = await Voucher.filter(
                member_id=story.member_id, reward_id=voucher_reward_id, status=VoucherStatus.ACTIVE
            ).first()
            if voucher is None:
                raise InvalidInput(f"{where}: no active voucher for {step['redeem_voucher']!r}", field="steps")
            return await redeem_voucher(SYSTEM, code=voucher.code, store_code=DEMO_STORE, member_id=story.member_id)

        return at_the_till

    offer_id = await _by_name(Offer, step["activate"], where)

    async def activate() -> object:
        return await activate_offer(story.member_id, offer_id)

    return activate


async def seed_members(specs: list[dict[str, Any]]) -> int:
    """Let each demo member not enrolled yet live their story up to now (see the module docstring); returns how
    many did. Raises `InvalidInput` (naming the member) for a malformed story, before anything is written; a step
    the rules refuse (a reward the member cannot afford yet) raises its `DomainError` with its code, naming the
    member and the day, and the steps before it stay."""
    seeded_at = clock.now()
    timeline: list[tuple[datetime, int, str, Action]] = []
    stories = 0
    for spec in specs:
        email = str(spec.get("email", ""))
        uid = f"{DEMO_UID_PREFIX}{email.lower()}"
        if await Member.get_or_none(firebase_uid=uid) is not None:
            continue  # seeded before: seeding again changes nothing
        story = _Story(spec)
        stories += 1
        where = f"demo member {email!r}"
        enrolled = seeded_at - _days_ago(spec.get("enrolled_days_ago", 0), where)

        async def enroll(story: _Story = story, uid: str = uid, email: str = email) -> object:
            story.member, _ = await enroll_member(uid, email=email, display_name=str(story.spec.get("name", "")))
            return story.member

        timeline.append((enrolled, len(timeline), where, enroll))
        for step in spec.get("steps", []):
            at = seeded_at - _days_ago(step.get("days_ago"), where)
            if at < enrolled:
                raise InvalidInput(f"{where}: a step before the enrolment", field="steps")
            timeline.append((at, len(timeline), where, await _step_action(story, step, where)))
    if not timeline:
        return 0
    timeline.sort(key=lambda item: (item[0], item[1]))
    frozen = clock.FrozenClock(timeline[0][0])
    previous = clock.use_clock(frozen)
    try:
        for at, _, where, action in timeline:
            frozen.set(at)
            try:
                await action()
            except DomainError as exc:
                # The same code, and which member and day refused (a refusal's own class may take other arguments).
                failed = DomainError(f"{where}, {at:%Y-%m-%d}: {exc.message}", field=exc.field)
                failed.code = exc.code
                raise failed from exc
            for job in jobs.JOBS:  # what the worker would have done by now
                await job.run()
        frozen.set(seeded_at)
        for job in jobs.JOBS:
            await job.run()
    finally:
        clock.use_clock(previous)
    return stories


# --- what the demo shows -------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoMember:
    """What a demo member shows now: the states a demo walks through."""

    email: str
    name: str
    member_number: str
    tier: str
    stage: str  # lifecycle: new, active, lapsing, lapsed
    points_available: int
    points_pending: int
    vouchers: dict[str, int]  # by effective status: active, redeemed, expired, cancelled
    activated_offers: list[str]
    stamp_cards: list[str] = field(default_factory=list)  # "Coffee card 4/8", cards with stamps only

    def describe(self) -> str:
        vouchers = ", ".join(f"{n} {status}" for status, n in sorted(self.vouchers.items())) or "none"
        parts = [
            f"{self.tier}, {self.stage}",
            f"{self.points_available} points available, {self.points_pending} pending",
            f"vouchers: {vouchers}",
        ]
        if self.activated_offers:
            parts.append(f"activated: {', '.join(self.activated_offers)}")
        if self.stamp_cards:
            parts.append(f"stamps: {', '.join(self.stamp_cards)}")
        return "; ".join(parts)


async def demo_members(at: datetime | None = None) -> list[DemoMember]:
    """Every demo member (enrolled by `seed_members`) as of `at` (default now), in enrolment order."""
    at = at or clock.now()
    program = await load_program()
    tiers = {tier.id: tier.name for tier in tiers_of(program)}
    shown = []
    for stored in await Member.filter(firebase_uid__startswith=DEMO_UID_PREFIX).order_by("id"):
        member = await settle_member_if_due(stored, at)
        vouchers: dict[str, int] = {}
        for voucher in await Voucher.filter(member_id=member.id):
            status = effective_status(voucher, at).value
            vouchers[status] = vouchers.get(status, 0) + 1
        activated: list[int] = [a.offer_id for a in await OfferActivation.filter(member_id=member.id).order_by("id")]
        offers = {o.id: o.name for o in await Offer.filter(id__in=list(activated))} if activated else {}
        cards = (await stamp_cards_for_members([member.id]))[member.id]
        shown.append(
            DemoMember(
                email=member.email or "",
                name=member.display_name,
                member_number=member.member_number,
                tier=tiers.get(member.tier_id, "?") if member.tier_id is not None else "?",
                stage=lifecycle_stage(member, program, at).value,
                points_available=member.points_available,
                points_pending=member.points_pending,
                vouchers=vouchers,
                activated_offers=[offers[offer_id] for offer_id in activated if offer_id in offers],
                stamp_cards=[f"{c.name} {c.stamps}/{c.stamps_required}" for c in cards if c.stamps],
            )
        )
    return shown
