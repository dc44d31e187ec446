"""Who acts at the checkout or in the back office: a staff member or an integration (API key), with a role."""

from __future__ import annotations

from dataclasses import dataclass, field

from loyalty.checks import MAX_STORE_CODE
from loyalty.errors import DomainError
from loyalty.models import StaffRole

_RANK = {StaffRole.CASHIER: 0, StaffRole.MANAGER: 1, StaffRole.ADMIN: 2}


class Forbidden(DomainError):
    code = "FORBIDDEN"


@dataclass(frozen=True)
class Actor:
    """A signed-in staff member (`kind="staff"`), an integration (`kind="api_key"`) or klubb itself (`SYSTEM`)."""

    kind: str
    id: int
    role: StaffRole
    store_codes: tuple[str, ...] = field(default=())  # empty = every store
    name: str = ""
    # A staff member's sign-in session (one till or browser: the `sid` of its access token); None otherwise.
    session_id: str | None = None

    @property
    def attempt_subject(self) -> str:
        """Who this actor's guesses count against: its session (tills sharing a login are counted apart), its API
        key, or (for a staff actor without a session) its account."""
        if self.kind == "staff" and self.session_id is not None:
            return f"staff_session:{self.session_id}"
        return f"{self.kind}:{self.id}"

    def has_role(self, role: StaffRole) -> bool:
        """True if this actor's role is `role` or above (cashier < manager < admin)."""
        return _RANK[self.role] >= _RANK[role]

    def may_act_in(self, store_code: str | None) -> bool:
        """True if this actor may act in `store_code` (None: an action bound to no store)."""
        return not self.store_codes or store_code is None or store_code in self.store_codes

    def require(self, role: StaffRole, store_code: str | None = None) -> None:
        """Raise `Forbidden` unless this actor has `role` (or above) in `store_code`."""
        if not self.has_role(role):
            raise Forbidden(f"this needs the {role.value} role")
        if not self.may_act_in(store_code):
            raise Forbidden(f"not allowed in {store_name(store_code)}", field="store_code")


def store_name(store_code: str | None) -> str:
    """How a refusal's message names the store ("store S1"); a code no store can have (too long, unprintable) is
    not echoed back."""
    if store_code and len(store_code) <= MAX_STORE_CODE and store_code.isprintable():
        return f"store {store_code}"
    return "this store"


# klubb itself, for what no person or integration does: seeding the demo program, imports, periodic jobs.
SYSTEM = Actor(kind="system", id=0, role=StaffRole.ADMIN, name="klubb")
