"""The app's operations are valid against the member schema, and in production they are the only ones allowed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from graphql import parse, print_ast, validate

from schema.member_schema import build_member_schema
from schema.trusted_documents import OPERATIONS_DIR, document_hash, load_trusted_documents

OPERATIONS = sorted(OPERATIONS_DIR.glob("*.graphql"))


def test_the_app_has_operations() -> None:
    assert {p.stem for p in OPERATIONS} >= {"Home", "SessionCreate", "SessionRefresh", "ProfileUpdate", "Program"}


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_every_app_operation_is_valid_against_the_member_schema(path: Path) -> None:
    schema = build_member_schema(production=True)

    errors = validate(schema._schema, parse(path.read_text()))

    assert errors == []


def test_documents_are_trusted_by_the_hash_of_their_exact_text() -> None:
    # The app sends each operation's file text as is; anything else, even reformatted, is another document.
    text = "query A { program { name } }"
    trusted = document_hash(text)

    assert trusted == hashlib.sha256(text.encode()).hexdigest()
    assert document_hash("query A {\n  program {\n    name\n  }\n}\n") != trusted
    assert document_hash("query A { program { name currency } }") != trusted


def test_the_trusted_documents_are_the_app_operations_parsed_once() -> None:
    documents = load_trusted_documents()

    assert len(documents) == len(OPERATIONS)
    assert {document_hash(path.read_text()) for path in OPERATIONS} == set(documents)
    assert all(
        print_ast(documents[document_hash(p.read_text())]) == print_ast(parse(p.read_text())) for p in OPERATIONS
    )
