"""The configuration snapshot and `program.version`: triggers bump it on every configuration write (migration 0005),
whoever writes, and `current_configuration` reloads exactly then."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from tortoise import connections

from loyalty.clock import FrozenClock
from loyalty.errors import ProgramNotConfigured
from loyalty.models import BonusRule, Campaign, Program, Reward, StampCard, Tier
from loyalty.program import PROGRAM_ID, apply_program_config, current_configuration
from tests.conftest import TEST_PROGRAM
from tests.loyalty.purchase_helpers import stamp_card


async def version() -> int:
    return (await Program.get(id=PROGRAM_ID)).version


async def test_every_write_to_a_configuration_table_bumps_the_version(program: Program, clock: FrozenClock) -> None:
    # given the configured program
    start = await version()
    now = clock.now()

    # when each configuration table is inserted into, updated and deleted from
    campaign = await Campaign.create(name="C", multiplier=Decimal(2), starts_at=now, ends_at=now + timedelta(days=1))
    await Campaign.filter(id=campaign.id).update(multiplier=Decimal(3))
    rule = await BonusRule.create(name="B", match_type="sku", match_value="X", points_per_item=1)
    await BonusRule.filter(id=rule.id).update(active=False)
    await BonusRule.filter(id=rule.id).delete()
    await Campaign.filter(id=campaign.id).delete()
    card = await stamp_card()  # a reward (no bump) and a card (one)
    await StampCard.filter(id=card.id).update(stamps_required=7)
    await Tier.filter(program_id=PROGRAM_ID, rank=2).update(threshold=2_500)
    await Program.filter(id=PROGRAM_ID).update(name="Renamed")

    # then one bump per statement
    assert await version() == start + 10


async def test_an_update_that_sets_the_version_itself_is_not_bumped_again(program: Program) -> None:
    # given
    start = await version()

    # when a writer sets the version explicitly
    await Program.filter(id=PROGRAM_ID).update(version=start + 5)

    # then it stands
    assert await version() == start + 5


async def test_reward_stock_moves_without_invalidating_the_snapshot(program: Program) -> None:
    # given a loaded snapshot and a reward with stock
    reward = await Reward.create(name="Mug", kind="free_product", points_cost=100, stock=3)
    snapshot = await current_configuration()

    # when a redemption takes one from the stock
    await Reward.filter(id=reward.id).update(stock=2)

    # then the same snapshot answers
    assert await current_configuration() is snapshot


async def test_the_snapshot_is_reused_while_the_version_stands_and_reloaded_after_any_writer(
    program: Program, clock: FrozenClock
) -> None:
    # given a snapshot
    now = clock.now()
    await Campaign.create(name="Double", multiplier=Decimal(2), starts_at=now, ends_at=now + timedelta(days=1))
    snapshot = await current_configuration()
    assert [c.multiplier for c in snapshot.campaigns] == [Decimal(2)]
    assert await current_configuration() is snapshot

    # when another process changes the campaign with plain SQL (no Python code of ours runs)
    await connections.get("default").execute_query('UPDATE "campaign" SET "multiplier" = 3')

    # then the next call sees it
    reloaded = await current_configuration()
    assert reloaded is not snapshot
    assert (reloaded.version, [c.multiplier for c in reloaded.campaigns]) == (snapshot.version + 1, [Decimal(3)])


async def test_the_snapshot_holds_only_active_campaigns_rules_and_cards(program: Program, clock: FrozenClock) -> None:
    # given active and inactive ones of each
    now = clock.now()
    later = now + timedelta(days=1)
    on = await Campaign.create(name="On", multiplier=Decimal(2), starts_at=now, ends_at=later)
    await Campaign.create(name="Off", multiplier=Decimal(2), starts_at=now, ends_at=later, active=False)
    rule = await BonusRule.create(name="On", match_type="sku", match_value="X")
    await BonusRule.create(name="Off", match_type="sku", match_value="X", active=False)
    card = await stamp_card("On")
    off = await stamp_card("Off")
    await StampCard.filter(id=off.id).update(active=False)

    # when
    snapshot = await current_configuration()

    # then
    assert [c.id for c in snapshot.campaigns] == [on.id]
    assert [r.id for r in snapshot.bonus_rules] == [rule.id]
    assert [c.id for c in snapshot.stamp_cards] == [card.id]
    assert [t.name for t in snapshot.program.tiers] == ["Member", "Silver", "Gold"]


async def test_reapplying_the_program_config_invalidates_the_snapshot(program: Program) -> None:
    # given
    snapshot = await current_configuration()

    # when the program's earn rate changes through the config
    await apply_program_config({**TEST_PROGRAM, "program": {**TEST_PROGRAM["program"], "earn_rate": 2}})

    # then
    reloaded = await current_configuration()
    assert reloaded.version > snapshot.version
    assert reloaded.program.earn_rate == Decimal(2)


async def test_without_a_program_the_snapshot_is_refused(db: str) -> None:
    # given an empty database; when / then
    with pytest.raises(ProgramNotConfigured):
        await current_configuration()
