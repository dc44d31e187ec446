"""A push campaign to 10,000 members end to end, through the real pieces: the `send-push-campaigns` job writes the
consenting audience's messages, the push consumer's `deliver_due` releases them (consent re-checked, the inbox, one
delivery per device) and sends them through the real firebase-admin SDK to the fake FCM over HTTP/2 (as FCM is
reached in production), until nothing is due; then opens and a redemption of the attached offer give the figures.
Both engines: about 6,700 pushes, ~15 s each on this machine."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from loyalty import campaigns, inbox
from loyalty.clock import FrozenClock
from loyalty.consent import member_actor, set_consent
from loyalty.jobs import get_jobs
from loyalty.models import (
    ConsentChannel,
    ConsentPurpose,
    ConsentSource,
    Device,
    DevicePlatform,
    MessageStatus,
    OfferRedemption,
    Program,
    PushDelivery,
    PushDeliveryStatus,
    PushMessage,
)
from push.consumer import PushSending
from push.fake import FakeFcm, self_signed_certificate, tls_context
from push.fcm import FcmSender
from tests.conftest import START
from tests.loyalty.push_helpers import bulk_members
from tests.loyalty.test_campaigns import MANAGER, spec
from tests.loyalty.test_offers import new_offer
from tests.push.conftest import PROJECT, config_for

MEMBERS = 10_000


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


@pytest.fixture
async def h2_fake(certificate: tuple[Path, Path]) -> AsyncIterator[FakeFcm]:
    """The fake FCM over HTTP/2 with TLS (the sender trusts its certificate: `FcmConfig.fake_certificate`)."""
    server = FakeFcm(project=PROJECT)
    await server.start(tls=tls_context(*certificate))
    yield server
    await server.stop()


def _consents(i: int) -> bool:
    return i % 4 != 3  # three members in four: 7,500


def _tokens(member_id: int, i: int) -> list[str]:
    return [f"tok-{member_id}-{n}" for n in range(i % 3)]  # 0, 1 or 2 devices, in turn


async def test_a_campaign_to_10000_members_reaches_each_consenting_device_once_and_counts_its_figures(
    program: Program, clock: FrozenClock, h2_fake: FakeFcm, certificate: tuple[Path, Path]
) -> None:
    # given 10,000 members: three in four consent; in turn 0, 1 or 2 devices each
    members = await bulk_members(MEMBERS, program, lambda i: {"marketing_consent": _consents(i)})
    tokens = {m: _tokens(m, i) for i, m in enumerate(members)}
    await Device.bulk_create(
        [
            Device(member_id=m, token=t, platform=DevicePlatform.ANDROID, created_at=START, last_seen_at=START)
            for m, owned in tokens.items()
            for t in owned
        ],
        batch_size=1000,
    )
    consenting = [m for i, m in enumerate(members) if _consents(i)]
    # and FCM reporting 12 consenting members' tokens UNREGISTERED: 6 who have one device (none left), and the
    # second device of 6 who have two (one left)
    single = [m for m in consenting if len(tokens[m]) == 1][:6]
    double = [m for m in consenting if len(tokens[m]) == 2][:6]
    dead = {tokens[m][0] for m in single} | {tokens[m][1] for m in double}
    h2_fake.unregistered |= dead
    # and a campaign with an offer (conversion within 7 days), due now
    offer = await new_offer(name="Spring offer")
    draft = await campaigns.create_campaign(MANAGER, spec(offer_id=offer.id, conversion_days=7))
    await campaigns.schedule_campaign(MANAGER, draft.id)

    # when the job writes it, 5 consenting members with two devices then opt out, and the consumer delivers until
    # nothing is due (and once more)
    written = await get_jobs(["send-push-campaigns"])[0].run()
    withdrawn = [m for m in consenting if len(tokens[m]) == 2][-5:]
    for member in withdrawn:
        await set_consent(
            member, ConsentChannel.PUSH, ConsentPurpose.MARKETING, False, ConsentSource.APP, member_actor(member)
        )
    async with FcmSender(config_for(h2_fake, fake_certificate=str(certificate[0]))) as sender:
        consumer = PushSending(sender, batch_size=500)
        attempts = await consumer.deliver_due(None)
        again = await consumer.deliver_due(None)

    # then one message per consenting member was written; the 5 who opted out were suppressed, the rest are SENT
    # (in the inbox, with or without a device)
    assert written == 7_500
    statuses = Counter(await PushMessage.filter(campaign_id=draft.id).values_list("status", "suppressed_reason"))
    assert statuses == {(MessageStatus.SENT, ""): 7_495, (MessageStatus.SUPPRESSED, "consent"): 5}
    assert await inbox.unread_count(single[-1], clock.now()) == 1
    assert await inbox.unread_count(withdrawn[0], clock.now()) == 0
    # and each device of a member still consenting got the push exactly once, over one HTTP/2 connection: the
    # consenting members' 7,500 devices (2,500 with one, 2,500 with two, 2,500 with none) less the 5 members' 10
    owed = {t for m in consenting if m not in withdrawn for t in tokens[m]}
    assert len(owed) == 7_490
    assert attempts == 7_490
    assert again == 0
    answered = Counter((r.message["token"], r.status) for r in h2_fake.received)
    assert answered == {(t, 404 if t in dead else 200): 1 for t in owed}
    assert h2_fake.h2_connections == 1
    # and the 12 dead tokens' devices are deleted, their deliveries dropped; every other delivery is SENT
    assert await Device.filter(token__in=sorted(dead)).count() == 0
    assert await Device.all().count() == 3_333 + 2 * 3_333 - 12  # 3,333 members in all with one device, 3,333 with two
    deliveries = Counter(await PushDelivery.all().values_list("status", flat=True))
    assert deliveries == {PushDeliveryStatus.SENT: 7_478, PushDeliveryStatus.DROPPED: 12}
    # and a message counts delivered when a device got it: not for members without a device or whose only one died
    assert await PushMessage.filter(campaign_id=draft.id, delivered_at=START).count() == 2_494 + 2_495

    # when three members open it and four redeem the offer: two within the 7 days, one after, one before the push
    opened = [m for m in consenting if len(tokens[m]) == 1][10:13]
    by_member = dict(
        await PushMessage.filter(campaign_id=draft.id, member_id__in=opened + consenting[:4]).values_list(
            "member_id", "id"
        )
    )
    for member in opened:
        await inbox.record_open(member, by_member[member])
    days = [timedelta(days=1), timedelta(days=7, seconds=-1), timedelta(days=7), timedelta(days=-1)]
    for member, after in zip(consenting[:4], days, strict=True):
        redeemed_at = START + after
        await OfferRedemption.create(member_id=member, offer_id=offer.id, store_code="S1", redeemed_at=redeemed_at)

    # then the figures count them
    figures = await campaigns.campaign_figures(draft.id)
    assert figures == campaigns.Figures(targeted=7_500, sent=7_495, delivered=4_989, opened=3, converted=2)
