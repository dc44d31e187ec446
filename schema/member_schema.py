"""The member schema served at /graphql: what the member app may ask and do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from loyalty.ledger import settle_member_if_due
from loyalty.program import cached_program
from schema.context import Info
from schema.errors import NotAuthenticated, is_public
from schema.mutations.profile_update import ProfileUpdatePayload, profile_update
from schema.mutations.sessions import SessionPayload, session_create, session_refresh
from schema.trusted_documents import load_trusted_hashes, trusted_documents
from schema.types.activity import ActivityEntry
from schema.types.member import Member
from schema.types.program import Program


@strawberry.type
class Query:
    @strawberry.field(description="Refetch an object by its global id (yours only).")
    async def node(self, info: Info, id: relay.GlobalID) -> relay.Node | None:
        # A plain resolver rather than relay.node(): its field extension cannot be applied to two schemas.
        try:
            return await id.resolve_node(info, required=False)
        except (KeyError, ValueError):  # an id of an unknown type or with a non-numeric key
            return None

    @strawberry.field(description="The signed-in member.")
    async def me(self, info: Info) -> Member:
        member_id = info.context.require_member()
        member = await info.context.loaders.member.load(member_id)
        if member is None:  # deleted since the token was issued
            raise NotAuthenticated("this member no longer exists")
        member = await settle_member_if_due(member)
        return Member.from_model(member)

    @strawberry.field(description="The loyalty programme: name, currency and tiers.")
    async def program(self) -> Program:
        return Program.from_model(await cached_program())


@strawberry.type
class Mutation:
    session_create: SessionPayload = strawberry.mutation(
        resolver=session_create, description="Sign in with a Firebase ID token; enrols on first sign-in."
    )
    session_refresh: SessionPayload = strawberry.mutation(
        resolver=session_refresh, description="Rotate the refresh token; a reused one ends the session family."
    )
    profile_update: ProfileUpdatePayload = strawberry.mutation(resolver=profile_update)


def query_limits(*, production: bool, max_depth: int, max_aliases: int, max_tokens: int) -> list[Callable[[], Any]]:
    """Extensions every schema gets: parser/validation caches and limits; in production, no introspection and
    masked unexpected errors."""
    extensions: list[Callable[[], Any]] = [
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
    ]
    if production:
        extensions += [
            lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]),
            lambda: MaskErrors(should_mask_error=lambda error: not is_public(error)),
        ]
    return extensions


def build_member_schema(
    *, production: bool, max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 2000
) -> strawberry.Schema:
    """The member schema. Production accepts only the app's trusted documents, refuses introspection, gives no
    field suggestions and masks unexpected errors."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[ActivityEntry],
        extensions=[
            *query_limits(production=production, max_depth=max_depth, max_aliases=max_aliases, max_tokens=max_tokens),
            *([trusted_documents(load_trusted_hashes())] if production else []),
        ],
        config=StrawberryConfig(disable_field_suggestions=production),
    )
