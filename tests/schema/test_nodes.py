"""The member schema's nodes keep relay's `resolve_nodes` contract: with `required`, every id must resolve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from schema.types.node import VisibleNode


class _OnlyOne(VisibleNode):
    """Sees only id "1" (not a strawberry type: only the classmethods are exercised)."""

    @classmethod
    async def resolve_visible(cls, info: Any, node_ids: Sequence[str]) -> list[_OnlyOne | None]:
        return [ONE if node_id == "1" else None for node_id in node_ids]


ONE = _OnlyOne()


async def test_an_id_not_seen_resolves_as_missing() -> None:
    # given ids, one not seen, as a one-shot iterable (resolve_visible gets a list it may read more than once)
    node_ids = iter(["1", "2"])

    # when they are resolved without `required`
    nodes = await _OnlyOne.resolve_nodes(info=None, node_ids=node_ids)

    # then the one not seen is None
    assert nodes == [ONE, None]


async def test_required_ids_all_resolve_or_raise() -> None:
    # when every id resolves, they are the nodes
    assert await _OnlyOne.resolve_nodes(info=None, node_ids=["1", "1"], required=True) == [ONE, ONE]

    # and when some do not, nothing is returned: the error names them
    with pytest.raises(LookupError, match=r"^no _OnlyOne with id 2, 3$"):
        await _OnlyOne.resolve_nodes(info=None, node_ids=["1", "2", "3"], required=True)
