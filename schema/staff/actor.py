"""StaffActor: the signed-in staff member or integration, as the staff schema shows it."""

from __future__ import annotations

import strawberry

from loyalty.actors import Actor


@strawberry.type(description="The signed-in staff member or integration.")
class StaffActor:
    kind: str = strawberry.field(description="`staff` or `api_key`.")
    role: str
    name: str
    store_codes: list[str] = strawberry.field(description="Stores this actor may act in; empty: every store.")

    @classmethod
    def from_actor(cls, actor: Actor) -> StaffActor:
        return cls(kind=actor.kind, role=actor.role.value, name=actor.name, store_codes=list(actor.store_codes))
