"""Keyset pagination helpers for Relay connections (`first`/`after`, at most 100 per page)."""

from __future__ import annotations

import base64
import binascii

from schema.errors import BadRequest

MAX_PAGE = 100


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise BadRequest(f"`first` must be between 1 and {MAX_PAGE}")
    return first


def encode_cursor(kind: str, *key: int) -> str:
    """An opaque cursor for a list position `key` (one or more integers) in a list of this `kind`."""
    return base64.urlsafe_b64encode(":".join([kind, *map(str, key)]).encode()).decode()


def decode_cursor_key(kind: str, cursor: str | None, length: int) -> tuple[int, ...] | None:
    """The `length` integers inside an opaque cursor of this `kind`; a malformed cursor is a bad request."""
    if cursor is None:
        return None
    try:
        prefix, *parts = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        if prefix != kind or len(parts) != length:
            raise ValueError(cursor)
        return tuple(int(part) for part in parts)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("`after` is not a cursor from this list") from exc


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The single integer key inside an opaque cursor of this `kind`."""
    key = decode_cursor_key(kind, cursor, 1)
    return None if key is None else key[0]
