"""The rows the hot reads return (`loyalty.sql.rows`): plain `NamedTuple`s, made straight from the driver's rows.

A row named after a model has that model's columns as fields, in the model's order and with the types the ORM
gives them (foreign keys as their `<name>_id` column), so code that only reads a model's columns reads its row
alike; `Any<Model>` names either. Extra fields after the columns carry what the same statement computed (a count,
a sum, a joined name). tests/loyalty/test_sql.py checks every row against its model and against the ORM.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from loyalty.models import (
    CashbackKind,
    EntryKind,
    LedgerEntry,
    Member,
    Offer,
    OfferBenefit,
    Reward,
    RewardKind,
    Voucher,
    VoucherStatus,
)


class MemberRow(NamedTuple):
    """Every column of `member`, then the qualifying value in the tier period of the read (the tier progress's) and
    the plan of the paid membership giving benefits at the read's time (`loyalty.memberships`; None without)."""

    id: int
    firebase_uid: str
    member_number: str
    email: str | None
    phone: str | None
    email_key: str | None
    referral_code: str | None
    display_name: str
    birthday: date | None
    interests: list[str]
    marketing_consent: bool
    marketing_consent_at: datetime | None
    timezone: str
    card_secret: str
    tier_id: int | None
    tier_since: datetime | None
    tier_held_until: datetime | None
    manual_tier_id: int | None
    manual_tier_until: datetime | None
    tier_upgraded_at: datetime | None
    tier_before_upgrade_id: int | None
    tier_before_upgrade_held_until: datetime | None
    points_available: int
    points_pending: int
    lifetime_earned: int
    cashback_balance: int
    next_settle_at: datetime | None
    last_purchase_at: datetime | None
    created_at: datetime
    updated_at: datetime
    qualifying_value: int
    membership_plan_id: int | None


class EntryRow(NamedTuple):
    """Every column of `ledger_entry`."""

    id: int
    member_id: int
    kind: EntryKind
    delta_available: int
    delta_pending: int
    delta_lifetime: int
    unrecovered: int
    description: str
    lot_id: int | None
    purchase_id: int | None
    reverses_id: int | None
    created_at: datetime
    occurred_at: datetime | None


class CashbackEntryRow(NamedTuple):
    """Every column of `cashback_entry`."""

    id: int
    member_id: int
    kind: CashbackKind
    amount: int
    currency: str
    voucher_id: int | None
    store_code: str | None
    receipt_id: str | None
    reference: str | None
    spend_id: int | None
    description: str
    created_at: datetime


class OfferRow(NamedTuple):
    """Every column of `offer`, then the member's redemptions of it and whether they activated it."""

    id: int
    name: str
    description: str
    benefit: OfferBenefit
    value: int
    sku: str | None
    valid_from: datetime
    valid_until: datetime
    per_member_limit: int
    requires_activation: bool
    tier_names: list[str]
    min_tier_rank: int | None
    min_membership_rank: int | None
    lifecycle_stages: list[str]
    birthday_month: bool
    interests: list[str]
    min_spend: int | None
    priority: int
    active: bool
    uses: int
    activated: bool


class VoucherRow(NamedTuple):
    """Every column of `voucher`."""

    id: int
    member_id: int
    code: str
    status: VoucherStatus
    reward_id: int | None
    offer_id: int | None
    stamp_card_id: int | None
    ledger_entry_id: int | None
    points_cost: int
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_store: str | None
    cancelled_at: datetime | None


class VoucherPageRow(NamedTuple):
    """Every column of `voucher`, then its part of the member's list: 0 usable, 1 the others."""

    id: int
    member_id: int
    code: str
    status: VoucherStatus
    reward_id: int | None
    offer_id: int | None
    stamp_card_id: int | None
    ledger_entry_id: int | None
    points_cost: int
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_store: str | None
    cancelled_at: datetime | None
    phase: int


class CheckoutVoucherRow(NamedTuple):
    """Every column of `voucher`, then what its source says it is for: its reward's name, kind, value and product,
    else its offer's name, benefit, value and product, else its stamp card's name (NULL where there is none)."""

    id: int
    member_id: int
    code: str
    status: VoucherStatus
    reward_id: int | None
    offer_id: int | None
    stamp_card_id: int | None
    ledger_entry_id: int | None
    points_cost: int
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_store: str | None
    cancelled_at: datetime | None
    reward_name: str | None
    reward_kind: RewardKind | None
    reward_value: int | None
    reward_sku: str | None
    offer_name: str | None
    offer_benefit: OfferBenefit | None
    offer_value: int | None
    offer_sku: str | None
    card_name: str | None


class RewardRow(NamedTuple):
    """Every column of `reward`, then how many of the member's vouchers count against its per-member limit."""

    id: int
    name: str
    description: str
    kind: RewardKind
    points_cost: int
    value: int
    sku: str | None
    cause: str | None
    min_tier_id: int | None
    min_membership_rank: int | None
    stock: int | None
    per_member_limit: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    voucher_valid_days: int
    active: bool
    sort_order: int
    used: int


class StampCardRow(NamedTuple):
    """An active stamp card (some columns of `stamp_card`) with the member's progress on it (0 without any)."""

    id: int
    name: str
    description: str
    stamps_required: int
    stamps: int
    completed: int


AnyMember = Member | MemberRow
AnyEntry = LedgerEntry | EntryRow
AnyOffer = Offer | OfferRow
AnyVoucher = Voucher | VoucherRow | VoucherPageRow | CheckoutVoucherRow
AnyReward = Reward | RewardRow

# The model each row reads its leading columns from (the test checks names and order).
MODEL_ROWS: dict[type[tuple[object, ...]], type[object]] = {
    MemberRow: Member,
    EntryRow: LedgerEntry,
    OfferRow: Offer,
    VoucherRow: Voucher,
    VoucherPageRow: Voucher,
    CheckoutVoucherRow: Voucher,
    RewardRow: Reward,
}


class InvitationRow(NamedTuple):
    """A referral landing page's read (`loyalty.invitations`): the program's configuration version, and the id of
    the member holding the code asked about (None: nobody, or no code)."""

    version: int
    holder: int | None
