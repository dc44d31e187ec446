"""Tortoise models of the `loyalty` app. Import models from here."""

from loyalty.models.earning import BonusRule, Campaign, EngagementEvent, EngagementRule, PurchaseLine
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
from loyalty.models.offers import (
    LifecycleStage,
    Offer,
    OfferActivation,
    OfferBenefit,
    OfferRedemption,
    StampCard,
    StampProgress,
)
from loyalty.models.outbox import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from loyalty.models.program import Program, Tier, TierMetric, TierPeriod
from loyalty.models.rewards import Reward, RewardKind, Voucher, VoucherStatus
from loyalty.models.staff import ApiKey, AuditLog, CardCodeUse, StaffRole, StaffUser, ThrottleEvent

__all__ = [
    "ApiKey",
    "AuditLog",
    "BonusRule",
    "Campaign",
    "CardCodeUse",
    "DeliveryStatus",
    "EngagementEvent",
    "EngagementRule",
    "EntryKind",
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
    "ThrottleEvent",
    "Tier",
    "TierMetric",
    "TierPeriod",
    "Voucher",
    "VoucherStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
