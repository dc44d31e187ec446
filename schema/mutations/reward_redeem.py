"""rewardRedeem: the member spends points on a reward and gets a voucher."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import models
from loyalty.errors import DomainError
from loyalty.rewards import RewardNotFound, redeem_reward
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.global_ids import REWARD
from schema.types.member import Member
from schema.types.voucher import Voucher


@strawberry.enum
class RewardRedeemErrorCode(Enum):
    INVALID = "INVALID"
    REWARD_NOT_FOUND = "REWARD_NOT_FOUND"
    NOT_AVAILABLE = "NOT_AVAILABLE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    MEMBERSHIP_REQUIRED = "MEMBERSHIP_REQUIRED"
    LIMIT_REACHED = "LIMIT_REACHED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class RewardRedeemUserError(UserError):
    code: RewardRedeemErrorCode


@strawberry.input
class RewardRedeemInput:
    reward_id: strawberry.ID = strawberry.field(description="A `Reward` id from `rewards`.")
    idempotency_key: str = strawberry.field(description="Unique per attempt; a retry with it returns the same voucher.")


@strawberry.type
class RewardRedeemPayload:
    voucher: Voucher | None
    member: Member | None = strawberry.field(description="With the new balance.")
    user_errors: list[RewardRedeemUserError]


async def reward_redeem(info: Info, input: RewardRedeemInput) -> RewardRedeemPayload:
    member_id = info.context.require_member()
    try:
        reward_id = REWARD.decode(input.reward_id)
        if reward_id is None:  # garbage or the id of another type: as unknown as a missing reward
            raise RewardNotFound("no such reward", field="reward_id")
        voucher_id = await redeem_reward(member_id, reward_id, idempotency_key=input.idempotency_key)
    except DomainError as error:
        return RewardRedeemPayload(
            voucher=None,
            member=None,
            user_errors=[to_user_error(RewardRedeemUserError, RewardRedeemErrorCode, error)],
        )
    member = await models.Member.get(id=member_id)
    voucher = await models.Voucher.get(id=voucher_id)
    return RewardRedeemPayload(
        voucher=Voucher.from_model(voucher, info.context.now), member=Member.from_model(member), user_errors=[]
    )
