"""Live updates for an open app: which outbox events change what a member's app shows, as one notice per member.

A notice says only *what* changed (points, tier, vouchers, offers), never the values: the subscriber reads the
member's state fresh when a notice arrives, so a duplicate, a reordered or a stale notice is harmless (the outbox
delivers at least once) and nothing private travels through the broker. `encode`/`decode` are the wire format the
brokers carry (`api.live`); `decode` refuses anything else without raising.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from loyalty import events


class Change(StrEnum):
    POINTS = "points"
    TIER = "tier"
    VOUCHERS = "vouchers"
    OFFERS = "offers"


# Every event type either changes something the app shows or is listed in IGNORED (tests/loyalty/test_live.py
# fails for an event type that is neither, so a new event is decided on, not silently dropped).
CHANGES: dict[str, frozenset[Change]] = {
    events.POINTS_EARNED: frozenset({Change.POINTS}),
    events.POINTS_MATURED: frozenset({Change.POINTS}),
    events.POINTS_REDEEMED: frozenset({Change.POINTS}),
    events.POINTS_REDEMPTION_CANCELLED: frozenset({Change.POINTS}),
    events.POINTS_EXPIRED: frozenset({Change.POINTS}),
    events.POINTS_ADJUSTED: frozenset({Change.POINTS}),
    events.POINTS_REFUNDED: frozenset({Change.POINTS}),
    events.TIER_CHANGED: frozenset({Change.TIER}),
    events.VOUCHER_ISSUED: frozenset({Change.VOUCHERS}),
    events.VOUCHER_REDEEMED: frozenset({Change.VOUCHERS}),
    events.VOUCHER_CANCELLED: frozenset({Change.VOUCHERS}),
    events.VOUCHER_EXPIRED: frozenset({Change.VOUCHERS}),
    events.OFFER_ACTIVATED: frozenset({Change.OFFERS}),
    events.OFFER_REDEEMED: frozenset({Change.OFFERS}),
    # The referrer's pending bonus (the referee's comes with the purchase's own points.earned / points.refunded).
    events.REFERRAL_CONVERTED: frozenset({Change.POINTS}),
    events.REFERRAL_CANCELLED: frozenset({Change.POINTS}),
    # A paid membership's benefits decide which offers apply (included offers, early access).
    events.MEMBERSHIP_STARTED: frozenset({Change.OFFERS}),
    events.MEMBERSHIP_RENEWED: frozenset({Change.OFFERS}),
    events.MEMBERSHIP_GRACE: frozenset({Change.OFFERS}),
    events.MEMBERSHIP_LAPSED: frozenset({Change.OFFERS}),
    events.MEMBERSHIP_CANCELLED: frozenset({Change.OFFERS}),
}
# Events the open app has no live view of: enrollment precedes any session, a profile edit is the app's own doing,
# the wallet events concern the wallet apps; a referral's application and review change no balance, and its reward is
# the lots maturing (points.matured); a refund of a membership payment changes what the app shows only through the
# membership events it leads to.
# Cashback has no live change of its own yet (the app reads `me.cashback` when it opens the screen).
IGNORED = frozenset(
    {
        events.MEMBER_ENROLLED,
        events.MEMBER_UPDATED,
        events.WALLET_ADDED,
        events.WALLET_REMOVED,
        events.REFERRAL_APPLIED,
        events.REFERRAL_FLAGGED,
        events.REFERRAL_REWARDED,
        events.REFERRAL_REJECTED,
        events.MEMBERSHIP_PAYMENT_REFUNDED,
        events.CASHBACK_CREDITED,
        events.CASHBACK_SPENT,
        events.CASHBACK_PAID_OUT,
        events.CASHBACK_RETURNED,
    }
)

MAX_ENCODED_BYTES = 128  # a member id and every change fit in far less; a longer message is not ours


@dataclass(frozen=True)
class MemberNotice:
    member_id: int
    changes: frozenset[Change]

    def encode(self) -> bytes:
        """`<member id> <change>,<change>…`, changes sorted (ASCII)."""
        return f"{self.member_id} {','.join(sorted(self.changes))}".encode("ascii")


def decode(data: bytes | str) -> MemberNotice | None:
    """The notice `data` holds, or None for anything that is not one (a broker is shared: never trust its input)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if len(data) > MAX_ENCODED_BYTES:
        return None
    member, _, names = data.decode("ascii", "replace").partition(" ")
    if not member.isascii() or not member.isdigit() or len(member) > 19:
        return None
    try:
        changes = frozenset(Change(name) for name in names.split(","))
    except ValueError:
        return None
    return MemberNotice(int(member), changes)


def notices(outbox: Iterable[tuple[str, int | None]]) -> list[MemberNotice]:
    """One notice per member for a batch of `(event type, member id)`: the union of what the events changed,
    members in the order they first appear; events without a member or without a live view give none."""
    merged: dict[int, set[Change]] = {}
    for event_type, member_id in outbox:
        changes = CHANGES.get(event_type)
        if member_id is None or not changes:
            continue
        merged.setdefault(member_id, set()).update(changes)
    return [MemberNotice(member_id, frozenset(changes)) for member_id, changes in merged.items()]
