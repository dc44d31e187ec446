"""Lifecycle stages: new, active, lapsing, lapsed — each boundary exactly, and the thresholds as configuration."""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.errors import InvalidInput
from loyalty.models import LifecycleStage, Member, Program
from loyalty.offers import lifecycle_stage
from loyalty.program import apply_program_config
from tests.conftest import TEST_PROGRAM

ENROLLED = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)
PROGRAM = Program(new_member_days=30, lapsing_after_days=60, lapsed_after_days=180)


def _member(last_purchase_at: datetime | None = None) -> Member:
    return Member(created_at=ENROLLED, last_purchase_at=last_purchase_at)


@pytest.mark.parametrize(
    ("after_enrollment", "stage"),
    [
        (timedelta(0), LifecycleStage.NEW),
        (timedelta(days=30) - SECOND, LifecycleStage.NEW),
        (timedelta(days=30), LifecycleStage.ACTIVE),
        (timedelta(days=60) - SECOND, LifecycleStage.ACTIVE),
        (timedelta(days=60), LifecycleStage.LAPSING),
        (timedelta(days=180) - SECOND, LifecycleStage.LAPSING),
        (timedelta(days=180), LifecycleStage.LAPSED),
        (timedelta(days=2000), LifecycleStage.LAPSED),
    ],
)
def test_without_a_purchase_the_clock_runs_from_enrollment(after_enrollment: timedelta, stage: LifecycleStage) -> None:
    assert lifecycle_stage(_member(), PROGRAM, ENROLLED + after_enrollment) == stage


@pytest.mark.parametrize(
    ("since_purchase", "stage"),
    [
        (timedelta(0), LifecycleStage.ACTIVE),
        (timedelta(days=60) - SECOND, LifecycleStage.ACTIVE),
        (timedelta(days=60), LifecycleStage.LAPSING),
        (timedelta(days=180) - SECOND, LifecycleStage.LAPSING),
        (timedelta(days=180), LifecycleStage.LAPSED),
    ],
)
def test_after_the_new_period_the_clock_runs_from_the_last_purchase(
    since_purchase: timedelta, stage: LifecycleStage
) -> None:
    bought = ENROLLED + timedelta(days=100)

    assert lifecycle_stage(_member(bought), PROGRAM, bought + since_purchase) == stage


def test_a_new_member_stays_new_whatever_they_buy() -> None:
    bought = ENROLLED + timedelta(days=1)

    assert lifecycle_stage(_member(bought), PROGRAM, ENROLLED + timedelta(days=30) - SECOND) == LifecycleStage.NEW


def test_a_purchase_slightly_ahead_of_the_business_clock_counts_as_active() -> None:
    # Tills may stamp a purchase a few minutes in the future (clock skew): a negative idle time is still active.
    at = ENROLLED + timedelta(days=200)

    assert lifecycle_stage(_member(at + timedelta(minutes=4)), PROGRAM, at) == LifecycleStage.ACTIVE


def test_zero_new_member_days_means_nobody_is_new() -> None:
    program = Program(new_member_days=0, lapsing_after_days=60, lapsed_after_days=180)

    assert lifecycle_stage(_member(), program, ENROLLED) == LifecycleStage.ACTIVE


async def test_thresholds_are_read_from_the_program_config(db: str) -> None:
    config = deepcopy(TEST_PROGRAM)
    config["program"] |= {"new_member_days": 7, "lapsing_after_days": 21, "lapsed_after_days": 90}

    program = await apply_program_config(config)

    assert (program.new_member_days, program.lapsing_after_days, program.lapsed_after_days) == (7, 21, 90)
    assert lifecycle_stage(_member(), program, ENROLLED + timedelta(days=7)) == LifecycleStage.ACTIVE
    assert lifecycle_stage(_member(), program, ENROLLED + timedelta(days=21)) == LifecycleStage.LAPSING
    assert lifecycle_stage(_member(), program, ENROLLED + timedelta(days=90)) == LifecycleStage.LAPSED


async def test_thresholds_default_when_the_config_leaves_them_out(db: str) -> None:
    program = await apply_program_config(TEST_PROGRAM)

    assert (program.new_member_days, program.lapsing_after_days, program.lapsed_after_days) == (30, 60, 180)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"new_member_days": -1}, "new_member_days"),
        ({"lapsing_after_days": "60"}, "lapsing_after_days"),
        ({"lapsing_after_days": 180, "lapsed_after_days": 180}, "lapsed_after_days"),
        ({"lapsing_after_days": 200}, "lapsed_after_days"),
    ],
)
async def test_bad_thresholds_are_refused_and_nothing_is_written(
    db: str, values: dict[str, object], field: str
) -> None:
    config = deepcopy(TEST_PROGRAM)
    config["program"] |= values

    with pytest.raises(InvalidInput) as refused:
        await apply_program_config(config)

    assert refused.value.field == field
    assert await Program.all().count() == 0
