"""Tortoise models of the `loyalty` app. Import models from here."""

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
from loyalty.models.outbox import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from loyalty.models.program import Program, Tier, TierMetric, TierPeriod

__all__ = [
    "DeliveryStatus",
    "EntryKind",
    "IdempotencyRecord",
    "LedgerEntry",
    "LotAllocation",
    "LotStatus",
    "Member",
    "OutboxEvent",
    "PointsLot",
    "Program",
    "Purchase",
    "QualifyingCredit",
    "RefreshToken",
    "Refund",
    "Tier",
    "TierMetric",
    "TierPeriod",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
