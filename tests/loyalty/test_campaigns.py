"""Push campaigns: drafts and their checks, scheduling, the dry run, writing the audience's messages in resumable
batches (10,000 members, a worker killed mid-campaign), and the figures."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from loyalty import campaigns
from loyalty.actors import Actor, Forbidden
from loyalty.campaigns import (
    CampaignNotCancellable,
    CampaignNotEditable,
    CampaignsIncomplete,
    CampaignSpec,
    DryRun,
    Figures,
    InvalidSchedule,
    OfferNotRunning,
)
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, InvalidInput
from loyalty.jobs import get_jobs
from loyalty.messages import Outgoing
from loyalty.messages import schedule as real_schedule
from loyalty.models import (
    AuditLog,
    MessagePurpose,
    MessageStatus,
    OfferRedemption,
    Program,
    PushCampaign,
    PushCampaignStatus,
    PushMessage,
    PushPolicy,
    StaffRole,
)
from loyalty.offers import OfferNotFound
from tests.conftest import START
from tests.loyalty.push_helpers import add_devices, bulk_members
from tests.loyalty.test_offers import new_offer
from tests.schema.conftest import SQLCounter

MANAGER = Actor(kind="staff", id=2, role=StaffRole.MANAGER, name="Max")
CASHIER = Actor(kind="staff", id=1, role=StaffRole.CASHIER, name="Cass")


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL statements Tortoise sends while the test runs."""
    logger = logging.getLogger("tortoise.db_client")
    counter, previous = SQLCounter(), logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    yield counter.statements
    logger.removeHandler(counter)
    logger.setLevel(previous)


def spec(**changes: Any) -> CampaignSpec:
    values: dict[str, Any] = {
        "name": "Spring",
        "title": {"en": "Spring is here", "sv": "Våren är här"},
        "body": {"en": "New season, new offers.", "sv": "Ny säsong, nya erbjudanden."},
    }
    return CampaignSpec(**{**values, **changes})


async def scheduled(**changes: Any) -> PushCampaign:
    campaign = await campaigns.create_campaign(MANAGER, spec(**changes))
    return await campaigns.schedule_campaign(MANAGER, campaign.id)


# --- drafts and scheduling ----------------------------------------------------------------------


async def test_a_manager_creates_and_schedules_a_campaign_audited(program: Program, clock: FrozenClock) -> None:
    # given an offer running for the next month
    offer = await new_offer(name="Spring offer")

    # when a manager creates a campaign with it and schedules it for tomorrow
    draft = await campaigns.create_campaign(MANAGER, spec(offer_id=offer.id, tier_names=["Gold", "Gold"]))
    done = await campaigns.schedule_campaign(MANAGER, draft.id, START + timedelta(days=1))

    # then it waits for its time, and every step is in the audit log
    stored = await PushCampaign.get(id=draft.id)
    assert (stored.status, stored.scheduled_at, stored.offer_id, stored.tier_names) == (
        PushCampaignStatus.SCHEDULED,
        START + timedelta(days=1),
        offer.id,
        ["Gold"],
    )
    assert done.status == PushCampaignStatus.SCHEDULED
    assert await AuditLog.all().order_by("id").values_list("action", "target", "actor_id") == [
        ("push_campaign.create", f"push_campaign:{draft.id}", 2),
        ("push_campaign.schedule", f"push_campaign:{draft.id}", 2),
    ]


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"title": {"sv": "Hej"}}, InvalidInput, "title"),  # the default locale (en) missing
        ({"body": {"en": "  ", "sv": "Hej"}}, InvalidInput, "body"),
        ({"title": {"en": "x" * 201}}, InvalidInput, "title"),
        ({"title": {"english": "Hello"}}, InvalidInput, "title"),
        ({"title": {}}, InvalidInput, "title"),
        ({"name": ""}, InvalidInput, "name"),
        ({"tier_names": ["Platinum"]}, InvalidInput, "tier_names"),
        ({"min_tier_rank": 3}, InvalidInput, "min_tier_rank"),
        ({"min_tier_rank": -1}, InvalidInput, "min_tier_rank"),
        ({"lifecycle_stages": ["sleeping"]}, InvalidInput, "lifecycle_stages"),
        ({"interests": ["x" * 65]}, InvalidInput, "interests"),
        ({"interests": ["a\x00"]}, InvalidInput, "interests"),
        ({"min_spend": 0}, InvalidInput, "min_spend"),
        ({"conversion_days": 0}, InvalidInput, "conversion_days"),
        ({"conversion_days": 91}, InvalidInput, "conversion_days"),
        ({"offer_id": 999}, OfferNotFound, "offer_id"),
    ],
)
async def test_a_bad_draft_is_refused_naming_its_field(
    program: Program, changes: dict[str, Any], error: type[DomainError], field: str
) -> None:
    # when a manager creates a campaign with one bad value
    with pytest.raises(error) as refused:
        await campaigns.create_campaign(MANAGER, spec(**changes))

    # then it names the field and nothing is written
    assert refused.value.field == field
    assert await PushCampaign.all().count() == 0


async def test_the_default_locale_is_the_push_policys(program: Program, clock: FrozenClock) -> None:
    # given a Swedish program
    await PushPolicy.create(default_locale="sv", updated_at=clock.now())

    # then a campaign without Swedish texts is refused, one with them accepted
    with pytest.raises(InvalidInput, match="default locale sv"):
        await campaigns.create_campaign(MANAGER, spec(title={"en": "Hello"}, body={"en": "Hi"}))
    created = await campaigns.create_campaign(MANAGER, spec(title={"sv": "Hej"}, body={"sv": "Hej"}))
    assert created.title == {"sv": "Hej"}


async def test_an_offer_must_be_running_at_the_scheduled_time(program: Program, clock: FrozenClock) -> None:
    # given an offer ending in 30 days and a campaign with it
    offer = await new_offer()
    draft = await campaigns.create_campaign(MANAGER, spec(offer_id=offer.id))

    # then it cannot be scheduled at or after the offer's end, nor in the past; just before the end it can
    with pytest.raises(OfferNotRunning):
        await campaigns.schedule_campaign(MANAGER, draft.id, offer.valid_until)
    with pytest.raises(InvalidSchedule):
        await campaigns.schedule_campaign(MANAGER, draft.id, START - timedelta(minutes=2))
    done = await campaigns.schedule_campaign(MANAGER, draft.id, offer.valid_until - timedelta(seconds=1))
    assert done.status == PushCampaignStatus.SCHEDULED


async def test_only_drafts_change_and_only_unsent_campaigns_cancel(program: Program, clock: FrozenClock) -> None:
    # given a scheduled campaign
    campaign = await scheduled()

    # then it can no longer be changed; it can be cancelled once
    with pytest.raises(CampaignNotEditable):
        await campaigns.update_campaign(MANAGER, campaign.id, spec(name="Changed"))
    cancelled = await campaigns.cancel_campaign(MANAGER, campaign.id)
    assert cancelled.status == PushCampaignStatus.CANCELLED
    with pytest.raises(CampaignNotCancellable):
        await campaigns.cancel_campaign(MANAGER, campaign.id)
    with pytest.raises(CampaignNotEditable):
        await campaigns.schedule_campaign(MANAGER, campaign.id)


async def test_a_draft_is_updated_whole(program: Program, clock: FrozenClock) -> None:
    # given a draft
    draft = await campaigns.create_campaign(MANAGER, spec(interests=["coffee"]))

    # when it is updated
    updated = await campaigns.update_campaign(MANAGER, draft.id, spec(name="Summer", lifecycle_stages=["lapsing"]))

    # then every field is the new spec's
    stored = await PushCampaign.get(id=draft.id)
    assert (stored.name, stored.interests, stored.lifecycle_stages) == ("Summer", [], ["lapsing"])
    assert updated.name == "Summer"


async def test_a_cashier_may_do_nothing_with_campaigns(program: Program) -> None:
    # given a draft
    draft = await campaigns.create_campaign(MANAGER, spec())

    # then a cashier is refused every action
    with pytest.raises(Forbidden):
        await campaigns.create_campaign(CASHIER, spec())
    with pytest.raises(Forbidden):
        await campaigns.update_campaign(CASHIER, draft.id, spec())
    with pytest.raises(Forbidden):
        await campaigns.schedule_campaign(CASHIER, draft.id)
    with pytest.raises(Forbidden):
        await campaigns.cancel_campaign(CASHIER, draft.id)
    with pytest.raises(Forbidden):
        await campaigns.list_campaigns(CASHIER, limit=10)
    assert await AuditLog.all().count() == 1


# --- writing the audience's messages --------------------------------------------------------------


def _consent_every_other(i: int) -> dict[str, Any]:
    return {"marketing_consent": i % 2 == 0}


async def test_a_campaign_to_10000_members_writes_one_message_per_consenting_member(
    program: Program, clock: FrozenClock, statements: list[str]
) -> None:
    # given 10,000 members: every other one consents; every fourth has a device, half of those Swedish
    members = await bulk_members(10_000, program, _consent_every_other)
    await add_devices(members[0::8], "en")
    await add_devices(members[4::8], "sv-SE")
    await add_devices(members[1::8], "sv")  # without consent: no message
    offer = await new_offer(name="Spring offer")
    campaign = await scheduled(offer_id=offer.id)

    # when it is dry-run, then the job runs (and runs again)
    statements.clear()
    dry = await campaigns.dry_run(campaign)
    dry_statements = len(statements)
    statements.clear()
    written = await campaigns.send_due_campaigns()
    job_statements = len(statements)
    again = await campaigns.send_due_campaigns()

    # then the dry run counted in one statement after the program; one message per consenting member was written,
    # in their language
    assert dry == DryRun(reach=10_000, consenting=5_000, with_device=2_500)
    assert dry_statements == 3  # the program and its tiers, then one count over the members
    # the due campaigns, the claim, program and tiers, policy, offer; per batch of 1,000: the audience's next ids,
    # their devices, the INSERT, the cursor's UPDATE (5 batches, then an empty read); the SENT update
    assert job_statements == 6 + 5 * 4 + 1 + 1
    assert (written, again) == (5_000, 0)
    stored = await PushCampaign.get(id=campaign.id)
    assert (stored.status, stored.targeted, stored.cursor_member_id, stored.locked_until) == (
        PushCampaignStatus.SENT,
        5_000,
        members[-2],
        None,
    )
    assert await PushMessage.filter(campaign_id=campaign.id).count() == 5_000
    titles = await PushMessage.filter(title="Våren är här").order_by("member_id").values_list("member_id", flat=True)
    assert titles == members[4::8]
    first = await PushMessage.get(member_id=members[0])
    assert (
        first.occasion,
        first.purpose,
        first.status,
        first.target,
        first.offer_id,
        first.collapse_key,
        first.expires_at,
        first.due_at,
    ) == (
        f"campaign:{campaign.id}",
        MessagePurpose.MARKETING,
        MessageStatus.SCHEDULED,
        f"offer:{offer.id}",
        offer.id,
        f"campaign:{campaign.id}",
        offer.valid_until,
        START,
    )


async def test_a_campaign_waits_for_its_time(program: Program, clock: FrozenClock) -> None:
    # given a campaign scheduled in an hour
    await bulk_members(3, program, lambda i: {"marketing_consent": True})
    draft = await campaigns.create_campaign(MANAGER, spec())
    await campaigns.schedule_campaign(MANAGER, draft.id, START + timedelta(hours=1))

    # when the job runs before and at its time
    before = await campaigns.send_due_campaigns()
    clock.advance(timedelta(hours=1))
    at = await campaigns.send_due_campaigns()

    # then it is written at its time only
    assert (before, at) == (0, 3)


async def test_a_worker_killed_mid_campaign_resumes_after_its_lease_and_writes_each_member_once(
    program: Program, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 2,500 consenting members and a campaign, and a worker that dies writing its second batch
    members = await bulk_members(2_500, program, lambda i: {"marketing_consent": True})
    campaign = await scheduled()
    calls: list[int] = []

    async def dies_on_the_second_batch(conn: Any, messages: list[Outgoing], now: Any) -> None:
        calls.append(len(messages))
        await real_schedule(conn, messages, now)
        if len(calls) == 2:
            raise ConnectionError("killed")

    monkeypatch.setattr(campaigns, "schedule", dies_on_the_second_batch)

    # when it runs, then another worker runs at once (the lease is live), then after the lease ends
    with pytest.raises(CampaignsIncomplete):
        await campaigns.send_due_campaigns(batch_size=1_000)
    monkeypatch.setattr(campaigns, "schedule", real_schedule)
    stopped = await PushCampaign.get(id=campaign.id)
    too_soon = await campaigns.send_due_campaigns(batch_size=1_000)
    clock.advance(campaigns.LEASE + timedelta(seconds=1))
    resumed = await campaigns.send_due_campaigns(batch_size=1_000)

    # then the first batch stayed, the second was rolled back, and the rest came once
    assert (stopped.status, stopped.cursor_member_id, stopped.targeted) == (
        PushCampaignStatus.SENDING,
        members[999],
        1_000,
    )
    assert (too_soon, resumed) == (0, 1_500)
    written = (
        await PushMessage.filter(campaign_id=campaign.id).order_by("member_id").values_list("member_id", flat=True)
    )
    assert written == members
    done = await PushCampaign.get(id=campaign.id)
    assert (done.status, done.targeted) == (PushCampaignStatus.SENT, 2_500)


async def test_a_campaign_cancelled_while_sending_writes_no_further_batch(
    program: Program, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a campaign whose worker died after its first batch
    await bulk_members(30, program, lambda i: {"marketing_consent": True})
    campaign = await scheduled()
    calls: list[int] = []

    async def dies_on_the_second_batch(conn: Any, messages: list[Outgoing], now: Any) -> None:
        calls.append(len(messages))
        if len(calls) == 2:
            raise ConnectionError("killed")
        await real_schedule(conn, messages, now)

    monkeypatch.setattr(campaigns, "schedule", dies_on_the_second_batch)
    with pytest.raises(CampaignsIncomplete):
        await campaigns.send_due_campaigns(batch_size=10)
    monkeypatch.setattr(campaigns, "schedule", real_schedule)

    # when a manager cancels it, and the job runs after the lease ended
    cancelled = await campaigns.cancel_campaign(MANAGER, campaign.id)
    clock.advance(campaigns.LEASE + timedelta(seconds=1))
    written = await campaigns.send_due_campaigns(batch_size=10)

    # then nothing more is written, and the first batch (not released yet) is withdrawn
    assert (cancelled.status, written) == (PushCampaignStatus.CANCELLED, 0)
    assert await PushMessage.all().values_list("status", "suppressed_reason") == [("suppressed", "cancelled")] * 10
    assert (await PushCampaign.get(id=campaign.id)).status == PushCampaignStatus.CANCELLED


async def test_the_job_is_registered(program: Program) -> None:
    # then the worker and `klubb jobs run send-push-campaigns` find it
    [job] = get_jobs(["send-push-campaigns"])
    assert (job.run, job.counts) == (campaigns.send_due_campaigns, "campaign messages written")


async def test_a_campaign_whose_offer_ended_is_sent_to_nobody(program: Program, clock: FrozenClock) -> None:
    # given a campaign with an offer, scheduled just before the offer ends, and a worker late past the end
    await bulk_members(3, program, lambda i: {"marketing_consent": True})
    offer = await new_offer()
    draft = await campaigns.create_campaign(MANAGER, spec(offer_id=offer.id))
    await campaigns.schedule_campaign(MANAGER, draft.id, offer.valid_until - timedelta(minutes=1))
    clock.set(offer.valid_until)

    # when the job runs
    written = await campaigns.send_due_campaigns()

    # then every message would have expired unread: none is written
    stored = await PushCampaign.get(id=draft.id)
    assert (written, stored.status, stored.targeted) == (0, PushCampaignStatus.SENT, 0)


# --- figures ------------------------------------------------------------------------------------


async def test_figures_count_sent_delivered_opened_and_conversions_within_the_window(
    program: Program, clock: FrozenClock
) -> None:
    # given a campaign with an offer, written to four members and released (as the sender does) an hour later
    members = await bulk_members(4, program, lambda i: {"marketing_consent": True})
    offer = await new_offer()
    other = await new_offer(name="Other")
    campaign = await scheduled(offer_id=offer.id, conversion_days=7)
    await campaigns.send_due_campaigns()
    sent_at = START + timedelta(hours=1)
    await PushMessage.filter(member_id__in=members[:3]).update(status=MessageStatus.SENT, sent_at=sent_at)
    await PushMessage.filter(member_id__in=members[:2]).update(delivered_at=sent_at)
    await PushMessage.filter(member_id=members[0]).update(opened_at=sent_at + timedelta(minutes=5))

    # and redemptions: in the window's last second, at its end, before the message, of another offer, unsent
    for member, redeemed_at, which in [
        (members[0], sent_at + timedelta(days=7, seconds=-1), offer),
        (members[1], sent_at + timedelta(days=7), offer),
        (members[2], sent_at - timedelta(seconds=1), offer),
        (members[2], sent_at + timedelta(days=1), other),
        (members[3], sent_at + timedelta(days=1), offer),
    ]:
        await OfferRedemption.create(member_id=member, offer_id=which.id, store_code="S1", redeemed_at=redeemed_at)

    # when the figures are read
    figures = await campaigns.campaign_figures(campaign.id)

    # then only the first member converted
    assert figures == Figures(targeted=4, sent=3, delivered=2, opened=1, converted=1)
