"""Push campaigns on the staff endpoint: create, update, schedule and cancel with their userErrors, and the campaign
with its dry run and figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import Program, PushCampaign
from schema.global_ids import OFFER
from schema.staff.push_campaigns import PUSH_CAMPAIGN
from tests.conftest import START
from tests.loyalty.push_helpers import add_devices, bulk_members
from tests.loyalty.test_offers import new_offer
from tests.schema.staff.conftest import run_staff

CREATE = """mutation($c: PushCampaignFields!) { pushCampaignCreate(input: {campaign: $c}) {
  pushCampaign { id name status title { locale text } audience { tierNames lifecycleStages minSpend }
    offer { name } }
  userErrors { code field message } } }"""
SCHEDULE = """mutation($id: ID!, $at: DateTime) { pushCampaignSchedule(input: {id: $id, scheduledAt: $at}) {
  pushCampaign { status scheduledAt } userErrors { code field } } }"""
CANCEL = "mutation($id: ID!) { pushCampaignCancel(input: {id: $id}) { pushCampaign { status } userErrors { code } } }"
UPDATE = """mutation($id: ID!, $c: PushCampaignFields!) { pushCampaignUpdate(input: {id: $id, campaign: $c}) {
  pushCampaign { name } userErrors { code field } } }"""
READ = """query($id: ID!) { pushCampaign(id: $id) { name status targeted
  dryRun { reach consenting withDevice } figures { targeted sent delivered opened converted } } }"""
LIST = """query($after: String) { pushCampaigns(first: 2, after: $after) {
  edges { node { name } } pageInfo { hasNextPage endCursor } } }"""


def fields(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Spring",
        "title": [{"locale": "en", "text": "Spring is here"}, {"locale": "sv", "text": "Våren är här"}],
        "body": [{"locale": "en", "text": "New season."}],
        **changes,
    }


async def test_a_manager_drafts_schedules_and_reads_a_campaign(
    program: Program, clock: FrozenClock, manager: Actor
) -> None:
    # given an offer and three members, two consenting, one of them with a device
    offer = await new_offer(name="Spring offer")
    members = await bulk_members(3, program, lambda i: {"marketing_consent": i < 2})
    await add_devices(members[:1])

    # when a manager drafts a campaign for Members who are new, schedules it, and reads it
    created = await run_staff(
        CREATE,
        manager,
        {"c": fields(offerId=OFFER.encode(offer.id), tierNames=["Member"], lifecycleStages=["NEW"], minSpend=None)},
    )
    campaign = created.data["pushCampaignCreate"]["pushCampaign"]
    scheduled = await run_staff(SCHEDULE, manager, {"id": campaign["id"], "at": None})
    read = await run_staff(READ, manager, {"id": campaign["id"]})

    # then
    assert created.errors is None
    assert campaign == {
        "id": PUSH_CAMPAIGN.encode((await PushCampaign.get()).id),
        "name": "Spring",
        "status": "DRAFT",
        "title": [{"locale": "en", "text": "Spring is here"}, {"locale": "sv", "text": "Våren är här"}],
        "audience": {"tierNames": ["Member"], "lifecycleStages": ["NEW"], "minSpend": None},
        "offer": {"name": "Spring offer"},
    }
    assert scheduled.data["pushCampaignSchedule"] == {
        "pushCampaign": {"status": "SCHEDULED", "scheduledAt": START.isoformat()},
        "userErrors": [],
    }
    assert read.data["pushCampaign"] == {
        "name": "Spring",
        "status": "SCHEDULED",
        "targeted": 0,
        "dryRun": {"reach": 3, "consenting": 2, "withDevice": 1},
        "figures": {"targeted": 0, "sent": 0, "delivered": 0, "opened": 0, "converted": 0},
    }


async def test_refusals_are_user_errors_naming_the_input(program: Program, clock: FrozenClock, manager: Actor) -> None:
    # given a scheduled campaign with an offer ending in 30 days
    offer = await new_offer()
    created = await run_staff(CREATE, manager, {"c": fields(offerId=OFFER.encode(offer.id))})
    campaign_id = created.data["pushCampaignCreate"]["pushCampaign"]["id"]

    # when bad drafts and schedules are sent
    no_default = await run_staff(CREATE, manager, {"c": fields(title=[{"locale": "sv", "text": "Hej"}])})
    twice = await run_staff(CREATE, manager, {"c": fields(body=[{"locale": "en", "text": "a"}] * 2)})
    bad_tier = await run_staff(CREATE, manager, {"c": fields(tierNames=["Platinum"])})
    late = await run_staff(SCHEDULE, manager, {"id": campaign_id, "at": (START + timedelta(days=30)).isoformat()})
    unknown = await run_staff(SCHEDULE, manager, {"id": PUSH_CAMPAIGN.encode(999), "at": None})
    await run_staff(SCHEDULE, manager, {"id": campaign_id, "at": None})
    not_draft = await run_staff(UPDATE, manager, {"id": campaign_id, "c": fields()})
    cancelled = await run_staff(CANCEL, manager, {"id": campaign_id})
    again = await run_staff(CANCEL, manager, {"id": campaign_id})

    # then each is a userError with its code and input path
    def first(result: Any, name: str) -> Any:
        errors = result.data[name]["userErrors"]
        return {k: v for k, v in errors[0].items() if k != "message"} if errors else None

    assert first(no_default, "pushCampaignCreate") == {"code": "INVALID", "field": ["input", "campaign", "title"]}
    assert first(twice, "pushCampaignCreate") == {"code": "INVALID", "field": ["input", "campaign", "body"]}
    assert first(bad_tier, "pushCampaignCreate") == {"code": "INVALID", "field": ["input", "campaign", "tierNames"]}
    assert first(late, "pushCampaignSchedule") == {"code": "OFFER_NOT_RUNNING", "field": ["input", "offerId"]}
    assert first(unknown, "pushCampaignSchedule") == {"code": "CAMPAIGN_NOT_FOUND", "field": ["input", "id"]}
    assert first(not_draft, "pushCampaignUpdate") == {"code": "CAMPAIGN_NOT_EDITABLE", "field": ["input", "id"]}
    assert cancelled.data["pushCampaignCancel"] == {"pushCampaign": {"status": "CANCELLED"}, "userErrors": []}
    assert again.data["pushCampaignCancel"]["userErrors"] == [{"code": "CAMPAIGN_NOT_CANCELLABLE"}]


async def test_campaigns_are_listed_newest_first_in_pages(program: Program, manager: Actor) -> None:
    # given three campaigns
    for name in ("A", "B", "C"):
        await run_staff(CREATE, manager, {"c": fields(name=name)})

    # when they are read two at a time
    page = (await run_staff(LIST, manager, {"after": None})).data["pushCampaigns"]
    rest = (await run_staff(LIST, manager, {"after": page["pageInfo"]["endCursor"]})).data["pushCampaigns"]

    # then
    assert [e["node"]["name"] for e in page["edges"]] == ["C", "B"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["name"] for e in rest["edges"]] == ["A"]
    assert rest["pageInfo"]["hasNextPage"] is False
