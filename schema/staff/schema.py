"""The staff schema at /staff/graphql. Query and Mutation are composed from one class per feature."""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema.errors import LoggedSchema
from schema.member_schema import QueryLimits, query_limits
from schema.staff.actor import StaffActor
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberLookupQuery
from schema.staff.mutations.cashback_payout import CashbackPayoutMutation
from schema.staff.mutations.cashback_spend import CashbackSpendMutation
from schema.staff.mutations.engagement_record import EngagementRecordMutation
from schema.staff.mutations.membership_payment_record import MembershipPaymentRecordMutation
from schema.staff.mutations.offer_redeem import OfferRedeemMutation
from schema.staff.mutations.points_adjust import PointsAdjustMutation
from schema.staff.mutations.purchase_preview import PurchasePreviewQuery
from schema.staff.mutations.purchase_record import PurchaseRecordMutation
from schema.staff.mutations.purchase_refund import PurchaseRefundMutation
from schema.staff.mutations.push_campaign_cancel import PushCampaignCancelMutation
from schema.staff.mutations.push_campaign_create import PushCampaignCreateMutation
from schema.staff.mutations.push_campaign_schedule import PushCampaignScheduleMutation
from schema.staff.mutations.push_campaign_update import PushCampaignUpdateMutation
from schema.staff.mutations.referral_review import ReferralReviewMutation
from schema.staff.mutations.staff_membership_cancel import StaffMembershipCancelMutation
from schema.staff.mutations.staff_session_create import StaffSessionCreateMutation
from schema.staff.mutations.voucher_redeem import VoucherRedeemMutation
from schema.staff.push_campaigns import PushCampaignQuery
from schema.staff.referrals import ReferralQuery

# The till's reference operations (README, "Staff endpoint"): compiled at start-up like the member app's trusted
# queries; any other document the staff endpoint accepts (integrations send their own) runs through strawberry.
OPERATIONS_DIR = Path(__file__).resolve().parent / "operations"


@strawberry.type
class StaffMeQuery:
    @strawberry.field
    def staff_me(self, info: StaffInfo) -> StaffActor:
        return StaffActor.from_actor(info.context.require())


@strawberry.type
class Query(StaffMeQuery, MemberLookupQuery, PurchasePreviewQuery, PushCampaignQuery, ReferralQuery):
    pass


@strawberry.type
class Mutation(
    StaffSessionCreateMutation,
    PointsAdjustMutation,
    VoucherRedeemMutation,
    OfferRedeemMutation,
    PurchaseRecordMutation,
    PurchaseRefundMutation,
    EngagementRecordMutation,
    PushCampaignCreateMutation,
    PushCampaignUpdateMutation,
    PushCampaignScheduleMutation,
    PushCampaignCancelMutation,
    ReferralReviewMutation,
    MembershipPaymentRecordMutation,
    StaffMembershipCancelMutation,
    CashbackSpendMutation,
    CashbackPayoutMutation,
):
    pass


def build_staff_schema(**limits: Unpack[QueryLimits]) -> strawberry.Schema:
    """The staff schema (no trusted-document allow-list: the console and integrations send their own queries)."""
    return LoggedSchema(
        query=Query,
        mutation=Mutation,
        extensions=query_limits(limits),
        config=StrawberryConfig(disable_field_suggestions=limits["production"]),
    )
