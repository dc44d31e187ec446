"""The integers our tables' keys can hold, and reading one from text: canonical decimal or nothing.

Every adapter that takes a key from outside (GraphQL global ids and cursors, the console's URLs) checks it against
its column here first: on PostgreSQL a key above a 32-bit `IntField` or 64-bit `BigIntField` is a database error,
not a miss, so it must answer "not found" before it reaches a query.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from tortoise.models import Model


@dataclass(frozen=True)
class KeyRange:
    """The integers a key may take; `parse` reads one in canonical decimal, or None."""

    low: int
    high: int

    def parse(self, text: str) -> int | None:
        """`text` as an integer of this range if it is canonical decimal: ASCII digits, no leading zero, and a `-`
        only before a negative number of a range that has them. Else None."""
        negative = text.startswith("-") and self.low < 0
        digits = text[1:] if negative else text
        if not (digits.isascii() and digits.isdigit()) or (digits.startswith("0") and (negative or digits != "0")):
            return None
        if len(digits) > len(str(max(-self.low, self.high))):  # bounded before int() reads thousands of digits
            return None
        value = int(text)
        return value if value in self else None

    def __contains__(self, value: int) -> bool:
        return self.low <= value <= self.high


INT32 = KeyRange(-(2**31), 2**31 - 1)
INT64 = KeyRange(-(2**63), 2**63 - 1)


def primary_keys(model: type[Model]) -> KeyRange:
    """The keys a row of `model` can have: 1 up to its primary-key column's maximum."""
    return KeyRange(1, model.describe()["pk_field"]["constraints"]["le"])


def global_id(type_name: str, key: int) -> str:
    """The API's global id of object `key` of GraphQL type `type_name`: base64 of `<TypeName>:<key>`, as strawberry's
    `relay.Node` encodes it. Here, not in `schema`, because the domain writes ids too (the inbox's deep links);
    `schema.global_ids` decodes them."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()
