"""The member schema's relay Nodes: each type refetches by id only what the signed-in member may see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, Self, overload

from strawberry import relay

from schema.context import Info


class VisibleNode(relay.Node):
    """A `relay.Node` whose ids resolve through `resolve_visible`: an id of something the member may not see
    resolves exactly like a missing one.

    `resolve_nodes` keeps relay's contract, and its typing: with `required`, every id must resolve or it raises
    (`node(id:)` asks with `required=False`, so a missing object is null there).
    """

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[Self | None]:
        """For each of `node_ids`, its object, or None if it is missing or not the member's to see."""
        raise NotImplementedError

    @overload
    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: Literal[True]) -> list[Self]: ...

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: Literal[False] = ...
    ) -> list[Self | None]: ...

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool
    ) -> list[Self] | list[Self | None]: ...

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self] | list[Self | None]:
        ids = list(node_ids)
        nodes = await cls.resolve_visible(info, ids)
        if not required:
            return nodes
        found = [node for node in nodes if node is not None]
        if len(found) < len(nodes):
            missing = [node_id for node_id, node in zip(ids, nodes, strict=True) if node is None]
            raise LookupError(f"no {cls.__name__} with id {', '.join(missing)}")
        return found
