"""Push campaigns on the staff endpoint (manager and above): the campaign type with its dry run and figures, the
queries `pushCampaign(id)` / `pushCampaigns`, and what the four mutations share (the input's fields, id decoding)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay
from strawberry.utils.str_converters import to_camel_case

from loyalty import campaigns, models
from loyalty.campaigns import CampaignNotFound, CampaignSpec
from loyalty.errors import DomainError, InvalidInput
from loyalty.keys import primary_keys
from loyalty.models import StaffRole
from loyalty.offers import OfferNotFound
from schema.global_ids import OFFER, NodeType
from schema.staff.context import StaffInfo
from schema.types.enum_map import EnumMap
from schema.types.offer import LIFECYCLE_STAGES, LifecycleStage
from schema.types.pagination import decode_cursor, encode_cursor, forward_page_info, page_size

PUSH_CAMPAIGN = NodeType.of("PushCampaign", models.PushCampaign)


@strawberry.enum(name="PushCampaignStatus")
class PushCampaignStatus(Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


PUSH_CAMPAIGN_STATUSES = EnumMap(
    models.PushCampaignStatus,
    PushCampaignStatus,
    {
        models.PushCampaignStatus.DRAFT: PushCampaignStatus.DRAFT,
        models.PushCampaignStatus.SCHEDULED: PushCampaignStatus.SCHEDULED,
        models.PushCampaignStatus.SENDING: PushCampaignStatus.SENDING,
        models.PushCampaignStatus.SENT: PushCampaignStatus.SENT,
        models.PushCampaignStatus.CANCELLED: PushCampaignStatus.CANCELLED,
    },
)


@strawberry.type(description="A text in one locale.")
class LocalisedText:
    locale: str
    text: str


@strawberry.input
class LocalisedTextInput:
    locale: str = strawberry.field(description='A locale such as "en" or "sv-SE".')
    text: str


@strawberry.type(description="Who a campaign reaches, as offers target: empty or null means anyone.")
class PushAudience:
    tier_names: list[str]
    min_tier_rank: int | None
    lifecycle_stages: list[LifecycleStage]
    birthday_month: bool
    interests: list[str]
    min_spend: int | None = strawberry.field(
        description="Net spend (minor units) in the current tier qualification period."
    )


@strawberry.type(description="A campaign's reach now.")
class PushCampaignDryRun:
    reach: int = strawberry.field(description="Members the audience matches.")
    consenting: int = strawberry.field(description="Of them, members who consent to marketing pushes.")
    with_device: int = strawberry.field(description="Of those, members with a registered device.")


@strawberry.type
class PushCampaignFigures:
    targeted: int = strawberry.field(description="Messages written (consenting members when sending started).")
    sent: int = strawberry.field(description="Messages released to the inbox.")
    delivered: int = strawberry.field(description="Messages FCM accepted for at least one device.")
    opened: int
    converted: int = strawberry.field(
        description="Members who redeemed the attached offer within the conversion window of their message."
    )


@strawberry.type(description="The offer a campaign's message opens.")
class PushCampaignOffer:
    id: strawberry.ID
    name: str
    valid_from: datetime
    valid_until: datetime


@strawberry.type
class PushCampaign:
    model: strawberry.Private[models.PushCampaign]
    id: strawberry.ID
    name: str
    status: PushCampaignStatus
    title: list[LocalisedText]
    body: list[LocalisedText]
    audience: PushAudience
    conversion_days: int
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    targeted: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, campaign: models.PushCampaign) -> PushCampaign:
        return cls(
            model=campaign,
            id=strawberry.ID(PUSH_CAMPAIGN.encode(campaign.id)),
            name=campaign.name,
            status=PUSH_CAMPAIGN_STATUSES.to_api(campaign.status),
            title=[LocalisedText(locale=k, text=v) for k, v in sorted(campaign.title.items())],
            body=[LocalisedText(locale=k, text=v) for k, v in sorted(campaign.body.items())],
            audience=PushAudience(
                tier_names=list(campaign.tier_names),
                min_tier_rank=campaign.min_tier_rank,
                lifecycle_stages=[LIFECYCLE_STAGES.to_api(models.LifecycleStage(s)) for s in campaign.lifecycle_stages],
                birthday_month=campaign.birthday_month,
                interests=list(campaign.interests),
                min_spend=campaign.min_spend,
            ),
            conversion_days=campaign.conversion_days,
            scheduled_at=campaign.scheduled_at,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            targeted=campaign.targeted,
            created_at=campaign.created_at,
            updated_at=campaign.updated_at,
        )

    @strawberry.field(description="The attached offer, if any.")
    async def offer(self) -> PushCampaignOffer | None:
        if self.model.offer_id is None:
            return None
        offer = await models.Offer.get_or_none(id=self.model.offer_id)
        if offer is None:
            return None
        return PushCampaignOffer(
            id=strawberry.ID(OFFER.encode(offer.id)),
            name=offer.name,
            valid_from=offer.valid_from,
            valid_until=offer.valid_until,
        )

    @strawberry.field(description="How many members the campaign reaches now, and how many of them consent.")
    async def dry_run(self, info: StaffInfo) -> PushCampaignDryRun:
        info.context.require(StaffRole.MANAGER)
        result = await campaigns.dry_run(self.model, info.context.now)
        return PushCampaignDryRun(reach=result.reach, consenting=result.consenting, with_device=result.with_device)

    @strawberry.field(description="What the campaign achieved so far.")
    async def figures(self, info: StaffInfo) -> PushCampaignFigures:
        info.context.require(StaffRole.MANAGER)
        result = await campaigns.campaign_figures(self.model.id)
        return PushCampaignFigures(
            targeted=result.targeted,
            sent=result.sent,
            delivered=result.delivered,
            opened=result.opened,
            converted=result.converted,
        )


@strawberry.type
class PushCampaignEdge:
    cursor: str
    node: PushCampaign


@strawberry.type(description="Push campaigns, newest first.")
class PushCampaignConnection:
    page_info: relay.PageInfo
    edges: list[PushCampaignEdge]

    @classmethod
    def from_page(cls, rows: list[models.PushCampaign], size: int) -> PushCampaignConnection:
        edges = [
            PushCampaignEdge(node=PushCampaign.from_model(c), cursor=encode_cursor("push_campaigns", c.id))
            for c in rows
        ]
        shown = edges[:size]
        return cls(
            edges=shown,
            page_info=forward_page_info(shown, has_next_page=len(rows) > size),
        )


# --- what the mutations share -----------------------------------------------------------------------


def campaign_id_of(global_id: str) -> int:
    """The campaign's key in its global id; `CampaignNotFound` for anything else."""
    key = PUSH_CAMPAIGN.decode(global_id)
    if key is None:
        raise CampaignNotFound("no such push campaign", field="campaign_id")
    return key


def input_field(error: DomainError, *, nested: bool) -> list[str] | None:
    """The input path of the field a campaign error names: the campaign's id is `input.id`, its fields are under
    `input.campaign` (create, update)."""
    if error.field is None:
        return None
    if error.field == "campaign_id":
        return ["input", "id"]
    return ["input", "campaign", to_camel_case(error.field)] if nested else ["input", to_camel_case(error.field)]


def texts_of(entries: list[LocalisedTextInput], field: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    for entry in entries:
        if entry.locale in texts:
            raise InvalidInput(f"{field}: the locale {entry.locale[:20]!r} appears twice", field=field)
        texts[entry.locale] = entry.text
    return texts


@strawberry.input(description="A campaign's message, attached offer and audience (a draft is replaced whole).")
class PushCampaignFields:
    name: str
    title: list[LocalisedTextInput] = strawberry.field(description="The program's default locale is required.")
    body: list[LocalisedTextInput]
    offer_id: strawberry.ID | None = strawberry.field(default=None, description="The offer's global id.")
    tier_names: list[str] = strawberry.field(default_factory=list)
    min_tier_rank: int | None = None
    lifecycle_stages: list[LifecycleStage] = strawberry.field(default_factory=list)
    birthday_month: bool = False
    interests: list[str] = strawberry.field(default_factory=list)
    min_spend: int | None = strawberry.field(
        default=None, description="Net spend (minor units) in the current tier qualification period."
    )
    conversion_days: int = strawberry.field(
        default=7, description="The attached offer redeemed within this many days of the message converts."
    )


def spec_of(fields: PushCampaignFields) -> CampaignSpec:
    """The domain's spec; `OfferNotFound` for an offer id of another type, `InvalidInput` for a repeated locale."""
    offer_id = None
    if fields.offer_id is not None:
        offer_id = OFFER.decode(fields.offer_id)
        if offer_id is None:
            raise OfferNotFound("no such offer", field="offer_id")
    return CampaignSpec(
        name=fields.name,
        title=texts_of(fields.title, "title"),
        body=texts_of(fields.body, "body"),
        offer_id=offer_id,
        tier_names=tuple(fields.tier_names),
        min_tier_rank=fields.min_tier_rank,
        lifecycle_stages=tuple(LIFECYCLE_STAGES.to_domain(s).value for s in fields.lifecycle_stages),
        birthday_month=fields.birthday_month,
        interests=tuple(fields.interests),
        min_spend=fields.min_spend,
        conversion_days=fields.conversion_days,
    )


@strawberry.type
class PushCampaignQuery:
    @strawberry.field(description="A push campaign by id (manager and above); null for an unknown id.")
    async def push_campaign(self, info: StaffInfo, id: strawberry.ID) -> PushCampaign | None:
        info.context.require(StaffRole.MANAGER)
        key = PUSH_CAMPAIGN.decode(id)
        campaign = await models.PushCampaign.get_or_none(id=key) if key is not None else None
        return PushCampaign.from_model(campaign) if campaign is not None else None

    @strawberry.field(description="Push campaigns, newest first (manager and above).")
    async def push_campaigns(
        self, info: StaffInfo, first: int = 20, after: str | None = None, status: PushCampaignStatus | None = None
    ) -> PushCampaignConnection:
        actor = info.context.require(StaffRole.MANAGER)
        size = page_size(first)
        before_id = decode_cursor("push_campaigns", after, primary_keys(models.PushCampaign))
        rows = await campaigns.list_campaigns(
            actor,
            limit=size + 1,
            before_id=before_id,
            status=PUSH_CAMPAIGN_STATUSES.to_domain(status) if status is not None else None,
        )
        return PushCampaignConnection.from_page(rows, size)
