"""Keyset pagination helpers for Relay connections (`first`/`after`, at most 100 per page)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Protocol

from strawberry import relay

from loyalty.keys import KeyRange
from schema.errors import BadRequest
from schema.global_ids import unbase64

MAX_PAGE = 100


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise BadRequest(f"`first` must be between 1 and {MAX_PAGE}")
    return first


def encode_cursor(kind: str, *key: int) -> str:
    """An opaque cursor for a list position `key` (one or more integers) in a list of this `kind`."""
    return base64.urlsafe_b64encode(":".join([kind, *map(str, key)]).encode()).decode()


def decode_cursor_key(kind: str, cursor: str | None, *ranges: KeyRange) -> tuple[int, ...] | None:
    """The integers inside an opaque cursor of this `kind`, one in each of `ranges`.

    A malformed cursor, another list's, or one whose integers are out of range or not canonical decimal (the rules
    of `schema.global_ids`) is a bad request.
    """
    if cursor is None:
        return None
    prefix, *parts = (unbase64(cursor, urlsafe=True) or "").split(":")
    if prefix != kind or len(parts) != len(ranges):
        raise _not_a_cursor()
    key = []
    for keys, part in zip(ranges, parts, strict=True):
        value = keys.parse(part)
        if value is None:
            raise _not_a_cursor()
        key.append(value)
    return tuple(key)


def _not_a_cursor() -> BadRequest:
    return BadRequest("`after` is not a cursor from this list")


def decode_cursor(kind: str, cursor: str | None, keys: KeyRange) -> int | None:
    """The single integer key inside an opaque cursor of this `kind`."""
    key = decode_cursor_key(kind, cursor, keys)
    return None if key is None else key[0]


class _Edge(Protocol):
    @property
    def cursor(self) -> str: ...


def forward_page_info(shown: Sequence[_Edge], *, has_next_page: bool) -> relay.PageInfo:
    """The `pageInfo` of a forward-only page (`first`/`after`): `shown` are the edges on it, in order."""
    return relay.PageInfo(
        has_next_page=has_next_page,
        has_previous_page=False,
        start_cursor=shown[0].cursor if shown else None,
        end_cursor=shown[-1].cursor if shown else None,
    )
