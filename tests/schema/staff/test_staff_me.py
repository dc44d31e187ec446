from __future__ import annotations

from loyalty.actors import Actor
from tests.schema.staff.conftest import run_staff


async def test_staff_me_describes_the_actor(cashier: Actor) -> None:
    result = await run_staff("{ staffMe { kind role name storeCodes } }", cashier)

    assert result.errors is None
    assert result.data == {
        "staffMe": {"kind": "staff", "role": "cashier", "name": "Cass Cashier", "storeCodes": ["S1"]}
    }


async def test_staff_me_needs_a_signed_in_actor() -> None:
    result = await run_staff("{ staffMe { kind } }", None)

    assert result.data is None
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAUTHENTICATED"}
