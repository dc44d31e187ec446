"""me.stampCards in the member app."""

from __future__ import annotations

from typing import Any

from loyalty.clock import FrozenClock
from loyalty.models import Member, StampCard
from tests.loyalty.purchase_helpers import buy, line, stamp_card
from tests.schema.conftest import SQLCounter

QUERY = "{ me { stampCards { name description stamps stampsRequired completed } } }"


async def test_me_shows_progress_on_every_active_card(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    # given a coffee card filled once with 1 stamp over, an untouched visits card and a retired card
    await stamp_card("Coffee card", 3, match_category="coffee")
    await StampCard.filter(name="Coffee card").update(description="Every 4th coffee free")
    await stamp_card("Lunch", 5, counts="visits", min_spend=10_000)
    retired = await stamp_card("Old", 2)
    await StampCard.filter(id=retired.id).update(active=False)
    await buy(anna.id, "R1", [line("LATTE", 1_600, category="coffee", quantity=4)])

    # when
    result = await as_member(anna).execute(QUERY)

    # then
    assert result == {
        "data": {
            "me": {
                "stampCards": [
                    {
                        "name": "Coffee card",
                        "description": "Every 4th coffee free",
                        "stamps": 1,
                        "stampsRequired": 3,
                        "completed": 1,
                    },
                    {"name": "Lunch", "description": "", "stamps": 0, "stampsRequired": 5, "completed": 0},
                ]
            }
        }
    }


async def test_stamp_cards_cost_the_same_sql_however_many_cards(
    anna: Member, as_member: Any, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    # given one card, then five
    await stamp_card("Card 0", 3)
    await as_member(anna).execute(QUERY)
    sql_counter.statements.clear()
    await as_member(anna).execute(QUERY)
    one = len(sql_counter.statements)
    for i in range(1, 5):
        await stamp_card(f"Card {i}", 3)
    await buy(anna.id, "R1", [line("A", 100)])

    # when
    sql_counter.statements.clear()
    result = await as_member(anna).execute(QUERY)

    # then
    assert len(result["data"]["me"]["stampCards"]) == 5
    assert len(sql_counter.statements) == one
