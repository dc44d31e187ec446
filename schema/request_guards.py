"""Guards both schemas run around parsing and validation: a bounded validation cost, coded request errors, and in
production error messages without schema suggestions.

Validation rules (graphql-core's overlapping-fields check above all) cost time that grows with the fields a document
selects once its fragments are expanded: quadratically for repeated fields, exponentially for fragments that spread
each other several times. `BoundedValidation` counts those fields first, in time linear in the document, and refuses
a document over the limit (code DOCUMENT_TOO_COMPLEX) before any rule runs; the rest is strawberry's validation cache.

graphql-core appends "Did you mean …?" to many messages (unknown fields, types, arguments, input fields, enum
values; in validation and when coercing variables). Production must not list schema names to a stranger, so
`HideSuggestions` strips that suffix from every error the operation returns, wherever it was built.

`RequestErrorCodes` gives graphql-core's own refusals a code like ours: GRAPHQL_VALIDATION_FAILED for a document
that breaks a rule, BAD_USER_INPUT for variables that do not fit their types.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension, ValidationCache

# graphql-core's did_you_mean(): " Did you mean 'a', 'b', or 'c'?" (names never contain "?")
SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def _own_selections(selection_set: SelectionSetNode) -> tuple[int, Counter[str]]:
    """The fields a selection set selects itself (inline fragments included) and how often it spreads each named
    fragment. Iterative: the parser bounds nesting, but this must not recurse either way."""
    fields = 0
    spreads: Counter[str] = Counter()
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                fields += 1
                if selection.selection_set is not None:
                    stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                spreads[selection.name.value] += 1
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
    return fields, spreads


def expanded_field_count(document: DocumentNode, cap: int) -> int:
    """How many fields the document's operations select with every fragment spread expanded, or `cap + 1` if more.

    Each fragment is counted once (memoized, iteratively), so this is linear in the document however its fragments
    multiply. A fragment cycle or an unknown fragment counts as no fields: validation refuses those anyway.
    """
    fragments: dict[str, tuple[int, Counter[str]]] = {}
    operations: list[tuple[int, Counter[str]]] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = _own_selections(definition.selection_set)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(_own_selections(definition.selection_set))

    totals: dict[str, int] = {}

    def expanded(own: tuple[int, Counter[str]]) -> int:
        fields, spreads = own
        return min(cap + 1, fields + sum(times * totals.get(name, 0) for name, times in spreads.items()))

    # post-order over the fragments: a fragment's total once those it spreads have theirs
    for root in fragments:
        stack: list[tuple[str, bool]] = [(root, False)]
        open_fragments: set[str] = set()  # being expanded (ancestors of the current one): spreading one is a cycle
        while stack:
            name, children_done = stack.pop()
            if children_done:
                totals[name] = expanded(fragments[name])
                open_fragments.discard(name)
            elif name not in totals and name not in open_fragments:
                open_fragments.add(name)
                stack.append((name, True))
                stack.extend((child, False) for child in fragments[name][1] if child in fragments)
    return min(cap + 1, sum(expanded(own) for own in operations))


class BoundedValidation(ValidationCache):
    """Strawberry's validation cache, behind a limit on the fields a document selects with fragments expanded."""

    def __init__(self, max_fields: int, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_fields = max_fields

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        assert document is not None  # parsed before validation
        if expanded_field_count(document, self.max_fields) > self.max_fields:
            self.execution_context.pre_execution_errors = [
                GraphQLError(
                    f"the document selects more than {self.max_fields} fields (with its fragments expanded)",
                    extensions={"code": "DOCUMENT_TOO_COMPLEX"},
                )
            ]
            yield
            return
        yield from super().on_validate()


def without_suggestions(message: str) -> str:
    return SUGGESTION.sub("", message)


class HideSuggestions(SchemaExtension):
    """Production: no "Did you mean …?" in any error of the result (validation, parsing or execution)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            # in place, as strawberry's own field-suggestion removal does: the error may sit in the validation cache
            error.message = without_suggestions(error.message)


class RequestErrorCodes(SchemaExtension):
    """A code for each refusal graphql-core made before any resolver ran: GRAPHQL_VALIDATION_FAILED for a broken
    validation rule, BAD_USER_INPUT for a variable's value that does not fit its type. (A syntax error escapes the
    extensions: the HTTP view codes it GRAPHQL_PARSE_FAILED.)"""

    def on_operation(self) -> Iterator[None]:
        yield
        refused = self.execution_context.pre_execution_errors or ()
        for error in getattr(self.execution_context.result, "errors", None) or ():
            if error.extensions and "code" in error.extensions:
                continue
            if error.path is None and type(error.original_error) is GraphQLError:  # a variable's value refused
                error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
            elif any(error is other for other in refused):
                error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
