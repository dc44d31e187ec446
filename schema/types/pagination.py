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


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The key inside an opaque cursor of this `kind`; a malformed cursor is a bad request."""
    if cursor is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix != kind or not key.isdigit():
            raise ValueError(cursor)
        return int(key)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("`after` is not a cursor from this list") from exc
