"""The GraphQL contract, pinned: both schemas print exactly as the committed SDL in `tests/schema/sdl/`.

A difference is a change of the API the app and the tills rely on. When it is on purpose, rewrite the file:
`.venv/bin/python -c 'from tests.schema.test_sdl import sdl; print(sdl("member"))' > tests/schema/sdl/member.graphql`
(the same with "staff").
"""

from pathlib import Path

import pytest
from strawberry.printer import print_schema

from schema.member_schema import build_member_schema
from schema.staff.schema import build_staff_schema

SDL = Path(__file__).parent / "sdl"
BUILDERS = {"member": build_member_schema, "staff": build_staff_schema}


def sdl(name: str, production: bool = False) -> str:
    return print_schema(BUILDERS[name](production=production))


@pytest.mark.parametrize("production", [False, True])
@pytest.mark.parametrize("name", ["member", "staff"])
def test_schema_prints_as_the_pinned_sdl(name: str, production: bool) -> None:
    # Given the pinned contract, when the schema is built (in development and in production mode)
    pinned = (SDL / f"{name}.graphql").read_text()

    # Then it prints exactly as pinned (production changes what is allowed, never the types)
    assert sdl(name, production) + "\n" == pinned
