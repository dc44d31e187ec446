"""Tortoise models of the `loyalty` app. Import models from here.

Each foreign key `x` is typed (`fields.ForeignKeyRelation[...]`, or `ForeignKeyNullableRelation` with `null=True`)
and followed by a bare annotation of its `x_id` column: Tortoise adds that field itself at start-up, and an
annotation without a value is no field, so the schema (and the migrations) stay as they are.
"""

from loyalty.models.earning import BonusRule, Campaign, EngagementEvent, EngagementRule, PurchaseLine
from loyalty.models.google_wallet import GoogleWalletCallback, GoogleWalletObject
from loyalty.models.identity import RefreshToken
from loyalty.models.ledger import (
    EntryKind,
    IdempotencyRecord,
    LedgerEntry,
    LotAllocation,
    LotStatus,
    PointsLot,
    Purchase,
    QualifyingCredit,
    Refund,
)
from loyalty.models.members import Member
from loyalty.models.offers import LifecycleStage, Offer, OfferActivation, OfferBenefit, OfferRedemption
from loyalty.models.outbox import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from loyalty.models.program import Program, Tier, TierMetric, TierPeriod
from loyalty.models.rewards import (
    DonationTotal,
    Reward,
    RewardKind,
    StampCard,
    StampProgress,
    Voucher,
    VoucherStatus,
)
from loyalty.models.staff import ApiKey, AuditLog, CardCodeUse, StaffRole, StaffUser, ThrottleCounter
from loyalty.models.wallet import (
    WalletBarcode,
    WalletDesign,
    WalletLinkUse,
    WalletPass,
    WalletPlatform,
    WalletPush,
    WalletRegistration,
)

__all__ = [
    "ApiKey",
    "AuditLog",
    "BonusRule",
    "Campaign",
    "CardCodeUse",
    "DeliveryStatus",
    "DonationTotal",
    "EngagementEvent",
    "EngagementRule",
    "EntryKind",
    "GoogleWalletCallback",
    "GoogleWalletObject",
    "IdempotencyRecord",
    "LedgerEntry",
    "LifecycleStage",
    "LotAllocation",
    "LotStatus",
    "Member",
    "Offer",
    "OfferActivation",
    "OfferBenefit",
    "OfferRedemption",
    "OutboxEvent",
    "PointsLot",
    "Program",
    "Purchase",
    "PurchaseLine",
    "QualifyingCredit",
    "RefreshToken",
    "Refund",
    "Reward",
    "RewardKind",
    "StaffRole",
    "StaffUser",
    "StampCard",
    "StampProgress",
    "ThrottleCounter",
    "Tier",
    "TierMetric",
    "TierPeriod",
    "Voucher",
    "VoucherStatus",
    "WalletBarcode",
    "WalletDesign",
    "WalletLinkUse",
    "WalletPass",
    "WalletPlatform",
    "WalletPush",
    "WalletRegistration",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
