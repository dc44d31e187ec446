"""The per-request context: who is calling, and the request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as StrawberryInfo

from schema.errors import NotAuthenticated
from schema.loaders import Loaders
from schema.ports import SessionIssuer


@dataclass
class Context:
    request: Any
    response: Any
    member_id: int | None
    sessions: SessionIssuer
    loaders: Loaders = field(default_factory=Loaders)

    def require_member(self) -> int:
        """The signed-in member's id, or a top-level UNAUTHENTICATED error."""
        if self.member_id is None:
            raise NotAuthenticated()
        return self.member_id


Info = StrawberryInfo[Context, None]
