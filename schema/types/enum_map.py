"""How an API enum stands for a domain enum: member by member, written out.

The API's enums are declared in the schema layer, never derived from the domain's, so a new domain value (a ledger
kind, a voucher status, a reward kind, …) does not silently become API: the API shows it only once someone maps it
here, or lists it as hidden. `tests/schema/test_enums.py` fails while a domain value is neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

D = TypeVar("D", bound=Enum)
A = TypeVar("A", bound=Enum)


@dataclass(frozen=True)
class EnumMap(Generic[D, A]):
    """Which API member each domain member is shown as; `hidden` are the domain members the API never shows."""

    domain_enum: type[D]
    api_enum: type[A]
    pairs: Mapping[D, A]
    hidden: frozenset[D] = frozenset()
    _to_domain: Mapping[A, D] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_to_domain", {api: domain for domain, api in self.pairs.items()})

    def to_api(self, value: D) -> A:
        """The API member for a domain value; KeyError for a hidden one (callers filter those out before)."""
        return self.pairs[value]

    def to_domain(self, value: A) -> D:
        """The domain member an API input stands for."""
        return self._to_domain[value]
