"""The app's operations are valid against the member schema, and in production they are the only ones allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import parse, validate

from schema.member_schema import build_member_schema
from schema.trusted_documents import OPERATIONS_DIR, document_hash

OPERATIONS = sorted(OPERATIONS_DIR.glob("*.graphql"))


def test_the_app_has_operations() -> None:
    assert {p.stem for p in OPERATIONS} >= {"Home", "SessionCreate", "SessionRefresh", "ProfileUpdate", "Program"}


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_every_app_operation_is_valid_against_the_member_schema(path: Path) -> None:
    schema = build_member_schema(production=True)

    errors = validate(schema._schema, parse(path.read_text()))

    assert errors == []


def test_trusted_hashes_ignore_formatting_but_not_content() -> None:
    trusted = frozenset({document_hash(parse("query A { program { name } }"))})

    reformatted = document_hash(parse("query A {\n  program {\n    name # the club\n  }\n}\n"))
    extended = document_hash(parse("query A { program { name currency } }"))

    assert reformatted in trusted
    assert extended not in trusted
