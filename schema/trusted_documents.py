"""Trusted documents: in production the member endpoint runs only the app's own operations.

The allow-list is the text of each operation in `mobile-client-mock/operations/*.graphql`, by its SHA-256: the app
sends an operation's text exactly as its file holds it (the files ship inside the app), and the server hashes the
`query` it receives before anything else. A document that is not trusted is refused at the cost of one hash: it is
never parsed or validated (parsing and validating an 8 KB hostile document takes a good part of a second). Trusted
documents are parsed once, at start-up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

OPERATIONS_DIR = Path(__file__).resolve().parents[1] / "mobile-client-mock" / "operations"


def document_hash(text: str) -> str:
    """The hash a document is trusted by: SHA-256 of its text as sent (UTF-8), hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_trusted_documents(directory: Path = OPERATIONS_DIR) -> dict[str, DocumentNode]:
    """Every operation file in `directory`, parsed, by the hash of its text."""
    texts = (path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.graphql")))
    return {document_hash(text): parse(text) for text in texts}


class UntrustedDocument(GraphQLError):
    def __init__(self) -> None:
        super().__init__(
            "only the app's trusted documents are accepted here", extensions={"code": "UNTRUSTED_DOCUMENT"}
        )


class TrustedDocuments(SchemaExtension):
    """Replaces parsing: a trusted document's text gives its parsed document, any other text is refused.

    Listed before every other extension, so the refusal comes before any parsing or validation.
    """

    def __init__(self, documents: Mapping[str, DocumentNode]) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        document = self.documents.get(document_hash(self.execution_context.query or ""))
        if document is None:
            raise UntrustedDocument
        self.execution_context.graphql_document = document
        yield
