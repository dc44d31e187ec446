"""The member's vouchers: code and barcode for the till, what it gives, status and expiry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay

from loyalty import models, vouchers
from loyalty.errors import InvalidInput
from loyalty.rows import AnyVoucher
from schema.context import Info
from schema.errors import BadRequest
from schema.global_ids import VOUCHER
from schema.types.enum_map import EnumMap
from schema.types.node import VisibleNode
from schema.types.pagination import decode_cursor, encode_cursor, forward_page_info, page_size
from schema.types.reward import Reward, tier_names


@strawberry.enum(name="VoucherStatus", description="ACTIVE vouchers can be used at the till until `expiresAt`.")
class VoucherStatus(Enum):
    ACTIVE = "ACTIVE"
    REDEEMED = "REDEEMED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


# Both ways: shown on vouchers, and taken as the `me.vouchers(status:)` filter.
VOUCHER_STATUSES = EnumMap(
    models.VoucherStatus,
    VoucherStatus,
    {
        models.VoucherStatus.ACTIVE: VoucherStatus.ACTIVE,
        models.VoucherStatus.REDEEMED: VoucherStatus.REDEEMED,
        models.VoucherStatus.CANCELLED: VoucherStatus.CANCELLED,
        models.VoucherStatus.EXPIRED: VoucherStatus.EXPIRED,
    },
)


@strawberry.type(name="Voucher")
class Voucher(VisibleNode):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="For the cashier to type, grouped: XXXX-XXXX-XXXX-XXXX.")
    barcode_value: str = strawberry.field(description="What the till scans.")
    barcode_format: str
    status: VoucherStatus
    points_cost: int = strawberry.field(description="Points it took; cancelling an ACTIVE voucher gives them back.")
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    model: strawberry.Private[AnyVoucher]

    @classmethod
    def from_model(cls, voucher: AnyVoucher, now: datetime) -> Voucher:
        """The voucher as of the request's instant `now` (an ACTIVE one past its expiry shows EXPIRED)."""
        return cls(
            id=voucher.id,
            code=vouchers.display_code(voucher.code),
            barcode_value=vouchers.barcode_value(voucher.code),
            barcode_format=vouchers.BARCODE_FORMAT,
            status=VOUCHER_STATUSES.to_api(vouchers.effective_status(voucher, now)),
            points_cost=voucher.points_cost,
            issued_at=voucher.issued_at,
            expires_at=voucher.expires_at,
            redeemed_at=voucher.redeemed_at,
            model=voucher,
        )

    @strawberry.field(
        description="What it gives: the reward redeemed, or a stamp card's reward; null for offer vouchers."
    )
    async def reward(self, info: Info) -> Reward | None:
        if self.model.reward_id is None:
            return None
        member = await info.context.loaders.member.load(self.model.member_id)
        if member is None:
            return None
        item = await info.context.loaders.reward_items(member).load(self.model.reward_id)
        return Reward.from_item(item, tier_names(await info.context.program())) if item else None

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[Voucher | None]:
        # Only the signed-in member's vouchers: someone else's id looks exactly like a missing one.
        member_id = info.context.require_member()
        ids = VOUCHER.keys(node_ids)
        found = await models.Voucher.filter(id__in=ids, member_id=member_id) if ids else []
        return VOUCHER.pick({v.id: cls.from_model(v, info.context.now) for v in found}, node_ids)


# Two cursor kinds, one per part of the list (see `loyalty.vouchers.voucher_page`); both carry a voucher id.
_CURSOR_KINDS = ("voucher", "voucher-past")


def encode_voucher_cursor(key: vouchers.VoucherKey) -> str:
    return encode_cursor(_CURSOR_KINDS[key.phase], key.id)


def decode_voucher_cursor(cursor: str | None) -> vouchers.VoucherKey | None:
    """The list position in `cursor`; a cursor from another list is a bad request."""
    if cursor is None:
        return None
    for phase, kind in enumerate(_CURSOR_KINDS):
        try:
            voucher_id = decode_cursor(kind, cursor, VOUCHER.key_range)
        except BadRequest:
            continue
        assert voucher_id is not None
        return vouchers.VoucherKey(phase, voucher_id)
    raise BadRequest("`after` is not a cursor from this list")


@strawberry.type(name="VoucherConnection")
class VoucherConnection(relay.Connection[Voucher]):
    @classmethod
    async def load(
        cls, info: Info, member_id: int, first: int, after: str | None, status: VoucherStatus | None
    ) -> VoucherConnection:
        """A page of the member's vouchers through the request's DataLoader."""
        size = page_size(first)
        key = decode_voucher_cursor(after)
        wanted = VOUCHER_STATUSES.to_domain(status) if status is not None else None
        try:
            page = await info.context.loaders.vouchers.load((member_id, size + 1, key, wanted))
        except InvalidInput as error:  # a cursor of a voucher that is not this member's
            raise BadRequest(error.message) from error
        return cls.from_page(page, size, info.context.now)

    @classmethod
    def from_page(
        cls, page: Sequence[tuple[vouchers.VoucherKey, AnyVoucher]], size: int, now: datetime
    ) -> VoucherConnection:
        edges = [
            relay.Edge(node=Voucher.from_model(v, now), cursor=encode_voucher_cursor(key)) for key, v in page[:size]
        ]
        return cls(
            edges=edges,
            page_info=forward_page_info(edges, has_next_page=len(page) > size),
        )
