"""The member schema served at /graphql: what the member app may ask and do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Required, TypedDict, Unpack

import strawberry
from graphql import ValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import relay
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache
from strawberry.extensions.max_aliases import create_validator as alias_limit_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit_rule
from strawberry.schema.config import StrawberryConfig

from loyalty.members import settled
from schema.context import Info
from schema.errors import LoggedSchema, MaskFaults, NotAuthenticated
from schema.global_ids import NODE_TYPES, split_global_id
from schema.mutations.consent_update import ConsentUpdatePayload, consent_update
from schema.mutations.device_register import DeviceRegisterPayload, device_register
from schema.mutations.device_unregister import DeviceUnregisterPayload, device_unregister
from schema.mutations.inbox_mark_read import InboxMarkReadPayload, inbox_mark_read
from schema.mutations.membership_cancel import MembershipCancelPayload, membership_cancel
from schema.mutations.offer_activate import OfferActivatePayload, offer_activate
from schema.mutations.profile_update import ProfileUpdatePayload, profile_update
from schema.mutations.push_opened import PushOpenedPayload, push_opened
from schema.mutations.referral_apply import ReferralApplyPayload, referral_apply
from schema.mutations.reward_redeem import RewardRedeemPayload, reward_redeem
from schema.mutations.session_create import session_create
from schema.mutations.session_refresh import session_refresh
from schema.mutations.voucher_cancel import VoucherCancelPayload, voucher_cancel
from schema.request_guards import BoundedValidation, HideSuggestions, RequestErrorCodes
from schema.subscriptions.member_updated import Subscription
from schema.trusted_documents import TrustedDocuments, load_trusted_documents
from schema.types.activity import ActivityEntry
from schema.types.cashback import CashbackEntry
from schema.types.member import Member
from schema.types.pagination import page_size
from schema.types.program import Program
from schema.types.reward import RewardConnection
from schema.types.session import SessionPayload


@strawberry.type
class Query:
    @strawberry.field(description="Refetch an object by its global id (yours only).")
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        # A plain resolver rather than relay.node(): its field extension cannot be applied to two schemas. The id
        # is a plain ID, decoded here, so a malformed one is answered like a missing object, not with an error.
        parts = split_global_id(id)
        node_type = NODE_TYPES.get(parts[0]) if parts else None
        if parts is None or node_type is None or node_type.key(parts[1]) is None:
            return None
        return await relay.GlobalID(node_type.name, parts[1]).resolve_node(info, required=False)

    @strawberry.field(description="The signed-in member.")
    async def me(self, info: Info) -> Member:
        member_id = info.context.require_member()
        member = await info.context.loaders.member.load(member_id)
        if member is None:  # deleted since the token was issued
            raise NotAuthenticated("this member no longer exists")
        return Member.from_model(await settled(member, info.context.now))

    @strawberry.field(description="The loyalty program: name, currency and tiers.")
    async def program(self, info: Info) -> Program:
        return Program.from_model(await info.context.program())

    @strawberry.field(
        description="The reward catalog: everything you can see, in catalog order, each saying whether you can "
        "redeem it now and if not, why."
    )
    async def rewards(self, info: Info, first: int = 20, after: str | None = None) -> RewardConnection:
        size = page_size(first)
        member = await info.context.loaders.member.load(info.context.require_member())
        if member is None:
            raise NotAuthenticated("this member no longer exists")
        return await RewardConnection.load(info, await settled(member, info.context.now), size, after)


@strawberry.type
class Mutation:
    session_create: SessionPayload = strawberry.mutation(
        resolver=session_create, description="Sign in with a Firebase ID token; enrolls on first sign-in."
    )
    session_refresh: SessionPayload = strawberry.mutation(
        resolver=session_refresh, description="Rotate the refresh token; a reused one ends the session family."
    )
    profile_update: ProfileUpdatePayload = strawberry.mutation(resolver=profile_update)
    offer_activate: OfferActivatePayload = strawberry.mutation(
        resolver=offer_activate, description="Activate an offer that applies to you, to use it at the checkout."
    )
    reward_redeem: RewardRedeemPayload = strawberry.mutation(
        resolver=reward_redeem, description="Spend points on a reward: debits them and issues a voucher."
    )
    voucher_cancel: VoucherCancelPayload = strawberry.mutation(
        resolver=voucher_cancel, description="Cancel an unused voucher: its points and stock are given back."
    )
    device_register: DeviceRegisterPayload = strawberry.mutation(
        resolver=device_register,
        description="Register this device for pushes (at every app start): a token another member had moves to you.",
    )
    device_unregister: DeviceUnregisterPayload = strawberry.mutation(
        resolver=device_unregister, description="Stop pushes to this device (signing out)."
    )
    consent_update: ConsentUpdatePayload = strawberry.mutation(
        resolver=consent_update,
        description="Grant or withdraw a consent; withdrawing marketing consent stops offer pushes at once.",
    )
    inbox_mark_read: InboxMarkReadPayload = strawberry.mutation(
        resolver=inbox_mark_read, description="Mark inbox messages read."
    )
    referral_apply: ReferralApplyPayload = strawberry.mutation(
        resolver=referral_apply,
        description="Use a friend's referral code (once, within the program's days after joining).",
    )
    push_opened: PushOpenedPayload = strawberry.mutation(
        resolver=push_opened, description="Report that a push notification was opened (also marks its message read)."
    )
    membership_cancel: MembershipCancelPayload = strawberry.mutation(
        resolver=membership_cancel,
        description="Cancel your paid membership: no renewal; the benefits stay until the period ends.",
    )


class QueryLimits(TypedDict, total=False):
    """What both schemas are built with: `build_member_schema(**limits)`, `build_staff_schema(**limits)`."""

    production: Required[bool]
    max_depth: int  # default 12
    max_aliases: int  # default 30
    max_tokens: int  # default 2000
    max_fields: int  # default 300: fields selected with fragments expanded (introspection takes 230)


def query_limits(
    limits: QueryLimits,
    extra_rules: Sequence[type[ValidationRule]] = (),
    first: Sequence[Callable[[], Any]] = (),
) -> list[Callable[[], Any]]:
    """Extensions every schema gets, after `first`: parser/validation caches and query limits (tokens, depth,
    aliases, fields with fragments expanded); in production also no introspection, no suggestions and masked
    unexpected errors."""
    production = limits["production"]
    max_tokens = limits.get("max_tokens", 2000)
    max_fields = limits.get("max_fields", 300)
    # The rule classes are made once per schema: ValidationCache keys on them, so rules made per request
    # (e.g. `lambda: QueryDepthLimiter(...)`) would make every request miss the cache and re-validate.
    rules = [
        depth_limit_rule(limits.get("max_depth", 12), should_ignore=None),
        alias_limit_rule(limits.get("max_aliases", 30)),
        *extra_rules,
        *([NoSchemaIntrospectionCustomRule] if production else []),
    ]
    extensions: list[Callable[[], Any]] = [
        *first,
        lambda: ParserCache(maxsize=512),
        lambda: BoundedValidation(max_fields=max_fields, maxsize=512),
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        RequestErrorCodes,
    ]
    if production:
        extensions.append(MaskFaults)
        extensions.append(HideSuggestions)
    return extensions


def build_member_schema(**limits: Unpack[QueryLimits]) -> strawberry.Schema:
    """The member schema. Production accepts only the app's trusted documents (refused by hash before parsing),
    refuses introspection, gives no suggestions and masks unexpected errors."""
    production = limits["production"]
    trusted = load_trusted_documents() if production else {}
    return LoggedSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[ActivityEntry, CashbackEntry],
        extensions=query_limits(limits, first=[lambda: TrustedDocuments(trusted)] if production else []),
        config=StrawberryConfig(disable_field_suggestions=production),
    )
