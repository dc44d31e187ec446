"""The strawberry seam: the private members of `strawberry.Schema` the compiler runs a plan through still exist and
take what `schema/compiled/seam.py` passes them. A strawberry upgrade that renames or changes one fails here, by name
(and pyproject.toml's range says which versions passed)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from pathlib import Path

import strawberry
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.arguments import convert_arguments
from strawberry.types.fields.resolver import StrawberryResolver

from schema.compiled import seam


@strawberry.type
class Query:
    hello: str = "hi"

    @strawberry.field
    def greet(self, info: strawberry.Info, name: str) -> str:
        return f"hello {name}"


def test_every_private_member_the_seam_calls_exists_with_its_parameters() -> None:
    for name, parameters in seam.SEAM.items():
        member = getattr(strawberry.Schema, name, None)
        assert callable(member), f"strawberry.Schema.{name} is gone: adapt schema/compiled/seam.py"
        accepted = inspect.signature(member).parameters
        missing = [p for p in parameters if p not in accepted]
        assert missing == [], f"strawberry.Schema.{name} no longer takes {missing}: adapt schema/compiled/seam.py"


def test_what_a_directly_called_resolver_is_given_is_what_strawberry_gives() -> None:
    # The resolver's parameters strawberry inspects, argument conversion, the scalar registry and the Info class
    schema = strawberry.Schema(query=Query)
    resolver = StrawberryResolver(Query.greet)
    for name in seam.RESOLVER_PARAMETERS:
        assert hasattr(resolver, name), f"StrawberryResolver.{name} is gone: adapt schema/compiled/planning.py"
    assert resolver.self_parameter is not None
    assert resolver.info_parameter is not None
    accepted = inspect.signature(convert_arguments).parameters
    assert [p for p in seam.CONVERT_ARGUMENTS if p not in accepted] == []
    assert isinstance(schema.schema_converter.scalar_registry, Mapping)
    assert issubclass(schema.config.info_class, Info)
    assert schema.exception_handlers == ()
    field = schema.get_field_for_type("greet", "Query")
    assert field is not None
    assert seam.argument_converter(schema, field)({"name": "Ann"}) == {"name": "Ann"}


async def test_the_seam_runs_a_document_through_strawberrys_own_steps() -> None:
    # Given a schema, when a document is prepared and its result handled through the seam
    schema = strawberry.Schema(query=Query)
    assert seam.graphql_schema(schema).query_type is not None
    context = seam.execution_context(schema, "{ hello }", variables={}, context=None)
    assert isinstance(context, ExecutionContext)
    runner = seam.extensions_runner(schema, context, schema.get_extensions(sync=True))
    with runner.operation():
        assert seam.prepare_sync(schema, context, runner) is None  # it parses and validates
    assert context.graphql_document is not None
    failing = seam.execution_context(schema, "{ nosuch }")
    assert seam.prepare_sync(schema, failing, seam.extensions_runner(schema, failing, [])) is not None
    # Then the result is strawberry's, its errors on the context
    result = await seam.handle_result(
        schema, context, seam.PreExecutionError(data=None, errors=[]), runner, errors_processed=False
    )
    assert isinstance(result, ExecutionResult)
    assert context.result is result


def test_no_other_module_calls_strawberrys_private_members() -> None:
    root = Path(__file__).resolve().parents[2]
    private = re.compile(r"\.(" + "|".join(map(re.escape, [*seam.SEAM, "_schema"])) + r")\b")
    users = [
        f"{path.relative_to(root)}:{number}"
        for package in ("schema", "api", "admin", "worker")
        for path in sorted((root / package).rglob("*.py"))
        if path != root / "schema/compiled/seam.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert users == [], "strawberry's private API goes through schema/compiled/seam.py"
