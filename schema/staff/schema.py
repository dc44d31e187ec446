"""The staff schema at /staff/graphql. Query and Mutation are composed from one class per feature."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema.member_schema import query_limits
from schema.staff.context import StaffInfo


@strawberry.type(description="The signed-in staff member or integration.")
class StaffActor:
    kind: str = strawberry.field(description="`staff` or `api_key`.")
    role: str
    name: str
    store_codes: list[str] = strawberry.field(description="Stores this actor may act in; empty: every store.")


@strawberry.type
class StaffMeQuery:
    @strawberry.field
    def staff_me(self, info: StaffInfo) -> StaffActor:
        actor = info.context.require()
        return StaffActor(kind=actor.kind, role=actor.role.value, name=actor.name, store_codes=list(actor.store_codes))


@strawberry.type
class Query(StaffMeQuery):
    pass


def build_staff_schema(
    *, production: bool, max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 2000
) -> strawberry.Schema:
    """The staff schema (no trusted-document allow-list: the console and integrations send their own queries)."""
    return strawberry.Schema(
        query=Query,
        extensions=query_limits(
            production=production, max_depth=max_depth, max_aliases=max_aliases, max_tokens=max_tokens
        ),
        config=StrawberryConfig(disable_field_suggestions=production),
    )
