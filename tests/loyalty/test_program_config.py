"""The program is configuration: TOML values land in the database, and bad values are refused whole."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import InvalidInput
from loyalty.models import Member, Program, Reward, StaffRole, StaffUser, StampCard, Tier
from loyalty.program import apply_program_config
from loyalty.seeding import seed_from_config
from loyalty.staff import authenticate_staff
from tests.conftest import TEST_PROGRAM

DEMO = Path(__file__).parents[2] / "demo" / "program.toml"


def _with(**program: Any) -> dict[str, Any]:
    config = copy.deepcopy(TEST_PROGRAM)
    config["program"].update(program)
    return config


async def test_the_demo_program_file_is_valid(db: str) -> None:
    program = await apply_program_config(tomllib.loads(DEMO.read_text()))

    assert (program.name, program.currency, program.adjustment_cap, program.birthday_points) == (
        "Klubb Demo Club",
        "EUR",
        500,
        200,
    )
    assert [t.name for t in await Tier.all().order_by("rank")] == ["Member", "Silver", "Gold"]


async def test_the_adjustment_cap_is_configurable(db: str) -> None:
    program = await apply_program_config(_with(adjustment_cap=50))

    assert program.adjustment_cap == 50


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"adjustment_cap": -1}, "adjustment_cap"),
        ({"birthday_points": -5}, "birthday_points"),
        ({"currency": "eur"}, "currency"),
        ({"excluded_categories": "gift_card"}, "excluded_categories"),
        ({"earn_rate": "1.5"}, "earn_rate"),
    ],
)
async def test_bad_values_are_refused_and_nothing_is_written(db: str, change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await apply_program_config(_with(**change))

    assert refused.value.field == field
    assert await Program.all().count() == 0


async def test_the_demo_seed_has_the_catalog_stamp_card_and_staff_and_can_run_twice(db: str) -> None:
    config = tomllib.loads(DEMO.read_text())

    await seed_from_config(config)
    await seed_from_config(config)

    costs = await Reward.all().order_by("points_cost").values_list("points_cost", flat=True)
    assert costs == [25, 60, 80, 100, 200, 400]
    card = await StampCard.get().prefetch_related("reward")
    assert (card.name, card.stamps_required, card.reward.name) == ("Coffee card", 8, "Free coffee")
    assert await StaffUser.all().order_by("email").values_list("email", "role") == [
        ("cashier@example.com", StaffRole.CASHIER),
        ("manager@example.com", StaffRole.MANAGER),
    ]
    assert (await authenticate_staff("cashier@example.com", "demo-cashier-123")).store_codes == ("DEMO",)
    assert await Member.all().count() == 5
