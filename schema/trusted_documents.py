"""Trusted documents: in production the member endpoint runs only the app's own operations.

The allow-list is the set of operations in `mobile-client-mock/operations/*.graphql`, compared after parsing and
printing, so formatting differences do not matter but any other field, argument or operation does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from graphql import DocumentNode, GraphQLError, ValidationContext, ValidationRule, parse, print_ast

OPERATIONS_DIR = Path(__file__).resolve().parents[1] / "mobile-client-mock" / "operations"


def document_hash(document: DocumentNode) -> str:
    return hashlib.sha256(print_ast(document).encode()).hexdigest()


def load_trusted_hashes(directory: Path = OPERATIONS_DIR) -> frozenset[str]:
    """Hashes of every operation file in `directory`."""
    return frozenset(document_hash(parse(path.read_text())) for path in sorted(directory.glob("*.graphql")))


def trusted_documents_rule(trusted: frozenset[str]) -> type[ValidationRule]:
    """A validation rule refusing any document that is not one of `trusted`."""

    class TrustedDocumentsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            if document_hash(context.document) not in trusted:
                context.report_error(
                    GraphQLError(
                        "only the app's trusted documents are accepted here",
                        extensions={"code": "UNTRUSTED_DOCUMENT"},
                    )
                )

    return TrustedDocumentsRule
