"""The staff request context: the acting staff member or integration, with the request's instant, program and
DataLoaders (`RequestContext`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.types import Info as StrawberryInfo

from loyalty.actors import Actor, store_name
from loyalty.models import StaffRole
from schema.context import RequestContext
from schema.errors import NotAuthenticated, PublicError
from schema.staff.ports import StaffSessionIssuer


class NotAllowed(PublicError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "FORBIDDEN")


@dataclass
class StaffContext(RequestContext):
    request: Any
    response: Any
    actor: Actor | None
    # Staff sign-in (`staffSessionCreate`) is served by the API layer, which owns password checks and tokens.
    staff_sessions: StaffSessionIssuer | None = None

    def require(self, role: StaffRole = StaffRole.CASHIER, store_code: str | None = None) -> Actor:
        """The acting staff member/integration if they hold `role` (in `store_code`); else a top-level error.

        Function-level authorization: every staff resolver calls this first.
        """
        if self.actor is None:
            raise NotAuthenticated("staff sign-in required: send a staff access token or an API key")
        if not self.actor.has_role(role):
            raise NotAllowed(f"this needs the {role.value} role")
        if not self.actor.may_act_in(store_code):
            raise NotAllowed(f"not allowed in {store_name(store_code)}")
        return self.actor


StaffInfo = StrawberryInfo[StaffContext, None]
