"""Which events change what the open app shows, and the notices' wire format."""

from __future__ import annotations

import pytest

from loyalty import events
from loyalty.live import CHANGES, IGNORED, Change, MemberNotice, decode, notices


def test_every_event_type_is_either_a_change_or_ignored() -> None:
    # a new event type fails here until someone decides whether the open app hears of it
    assert sorted(set(CHANGES) | IGNORED) == sorted(events.EVENT_TYPES)
    assert set(CHANGES) & IGNORED == set()


def test_notices_merge_a_batch_per_member_in_first_seen_order() -> None:
    batch = [
        (events.POINTS_EARNED, 7),
        (events.TIER_CHANGED, 3),
        (events.VOUCHER_ISSUED, 7),
        (events.POINTS_EARNED, 7),
        (events.MEMBER_UPDATED, 9),  # ignored: no notice for member 9
        (events.POINTS_ADJUSTED, None),  # no member
        (events.OFFER_REDEEMED, 3),
    ]

    assert notices(batch) == [
        MemberNotice(7, frozenset({Change.POINTS, Change.VOUCHERS})),
        MemberNotice(3, frozenset({Change.TIER, Change.OFFERS})),
    ]


def test_a_notice_round_trips_through_its_wire_format() -> None:
    notice = MemberNotice(12345, frozenset({Change.TIER, Change.POINTS}))

    assert notice.encode() == b"12345 points,tier"
    assert decode(notice.encode()) == notice
    assert decode("12345 points,tier") == notice


@pytest.mark.parametrize(
    "data",
    [b"", b"12", b"x points", b"-1 points", b"12 points,bogus", b"12 ", "١٢ points".encode(), b"1" * 20 + b" points",
     b"12 " + b"points," * 30, b"\xff\xfe points"],
)  # fmt: skip
def test_anything_else_is_not_a_notice(data: bytes) -> None:
    assert decode(data) is None
