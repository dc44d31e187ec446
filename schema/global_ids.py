"""Global ids and the integer keys inside ids and cursors: one guarded decoder for every input that carries one.

A global id is base64 of `<TypeName>:<key>`, as strawberry's `relay.Node` encodes it (`NodeType.encode` gives the
same string). Decoding is strict about the key and lenient about the wrapping:

- the key is canonical ASCII digits: no sign, spaces, underscores or leading zeros (`Reward:007` is refused rather
  than read as 7, so every object has exactly one id), never another script's digits (`str.isdigit()` accepts `²`
  and Arabic-Indic digits, and `int()` reads some of them);
- the key fits the model's primary-key column (`loyalty.keys`: 32-bit `IntField` or 64-bit `BigIntField` on
  PostgreSQL) and is at least 1, so a key no row can have never reaches the database;
- missing or extra `=` padding is accepted, as strawberry's `relay.GlobalID` accepts extra padding;
- anything else (not base64, not UTF-8, no colon, another type's id) decodes to None, which every caller answers
  like a missing object: `node(id:)` with null, a mutation with its `*_NOT_FOUND` userError.

Cursors (`schema.types.pagination`) read their integers with the same `KeyRange.parse`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tortoise.models import Model

from loyalty import models
from loyalty.keys import KeyRange, global_id, primary_keys

T = TypeVar("T")
MAX_ENCODED = 200  # far above any id or cursor we issue: longer input is not decoded at all


def unbase64(text: str, *, urlsafe: bool = False) -> str | None:
    """The UTF-8 text inside base64 `text` (standard or URL-safe alphabet), tolerant of missing or extra padding."""
    body = text.rstrip("=")
    if len(body) > MAX_ENCODED or len(body) % 4 == 1 or not body.isascii():  # base64 is ASCII; no lone surrogate
        return None
    padded = (body + "=" * (-len(body) % 4)).encode()
    try:
        raw = base64.b64decode(padded.translate(bytes.maketrans(b"-_", b"+/")) if urlsafe else padded, validate=True)
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def split_global_id(global_id: str) -> tuple[str, str] | None:
    """(type name, key text) of a global id, or None when it is not one."""
    text = unbase64(global_id)
    if text is None or ":" not in text:
        return None
    type_name, key = text.split(":", 1)
    return type_name, key


@dataclass(frozen=True)
class NodeType:
    """An object type with global ids: its GraphQL name and the keys its table can hold."""

    name: str
    key_range: KeyRange

    @classmethod
    def of(cls, name: str, model: type[Model]) -> NodeType:
        return cls(name, primary_keys(model))

    def encode(self, key: int) -> str:
        return global_id(self.name, key)

    def decode(self, global_id: str) -> int | None:
        """The primary key in a global id of this type; None for anything else."""
        parts = split_global_id(global_id)
        return self.key(parts[1]) if parts is not None and parts[0] == self.name else None

    def key(self, node_id: str) -> int | None:
        """The primary key in the key part of an id of this type (what `resolve_nodes` receives), or None."""
        return self.key_range.parse(node_id)

    def keys(self, node_ids: Iterable[str]) -> list[int]:
        """The primary keys of those `node_ids` that can name a row: what `resolve_nodes` queries."""
        return [key for key in map(self.key, node_ids) if key is not None]

    def pick(self, found: Mapping[int, T], node_ids: Iterable[str]) -> list[T | None]:
        """For each of `node_ids`, its object in `found` (by primary key), or None like a missing one."""
        return [None if key is None else found.get(key) for key in map(self.key, node_ids)]


MEMBER = NodeType.of("Member", models.Member)
ACTIVITY_ENTRY = NodeType.of("ActivityEntry", models.LedgerEntry)
VOUCHER = NodeType.of("Voucher", models.Voucher)
OFFER = NodeType.of("Offer", models.Offer)
REWARD = NodeType.of("Reward", models.Reward)
INBOX_MESSAGE = NodeType.of("InboxMessage", models.PushMessage)
CASHBACK_ENTRY = NodeType.of("CashbackEntry", models.CashbackEntry)

NODE_TYPES = {t.name: t for t in (MEMBER, ACTIVITY_ENTRY, VOUCHER, OFFER, REWARD, INBOX_MESSAGE, CASHBACK_ENTRY)}
"""Every type `node(id:)` refetches, by GraphQL name."""
