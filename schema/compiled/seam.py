"""The one place the compiler touches strawberry's private execution API.

`strawberry.Schema.execute` runs a request in steps that are not public: it builds an `ExecutionContext`, parses and
validates in its extensions' parsing and validation hooks (`_prepare_operation_sync`), logs errors before any hook
masks them (`_process_errors`) and builds the result with the extensions' results (`_handle_execution_result`). A
compiled plan runs inside the same steps, so that masking, error codes, logging and limits act on it exactly as on
strawberry's own execution; these wrappers are the only callers. A resolver that a plan calls directly (a field
without field extensions: strawberry's per-call wrapper would only convert its arguments and build its `Info`) gets
them as that wrapper gives them (`argument_converter`, `info`). The operation and execution hooks are entered as
strawberry's `ExtensionContextManagerBase` enters them (`Hooks`), with each class's hook prepared once; the hook
tests of `tests/schema/test_compiler.py` run every hook shape through both paths. `SEAM`, `RESOLVER_PARAMETERS` and
`CONVERT_ARGUMENTS` list what these rely on and `tests/schema/test_strawberry_seam.py` checks them against the
installed strawberry, so an upgrade that renames or changes one fails there, by name, rather than somewhere inside a
request (pyproject.toml pins the tested range).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.arguments import convert_arguments
from strawberry.types.execution import PreExecutionError
from strawberry.types.field import StrawberryField
from strawberry.types.graphql import OperationType

# strawberry.Schema's private members used here, with the parameters they are called with.
SEAM: dict[str, tuple[str, ...]] = {
    "_create_execution_context": (
        "query",
        "allowed_operation_types",
        "variable_values",
        "context_value",
        "root_value",
        "operation_name",
        "operation_extensions",
    ),
    "_prepare_operation_sync": ("context", "extensions_runner"),
    "_process_errors": ("errors", "execution_context"),
    "_handle_execution_result": ("context", "result", "extensions_runner", "skip_process_errors"),
}
# What a resolver is called with, as strawberry's own wrapper (`GraphQLCoreConverter.from_resolver`) does it: the
# arguments converted by `convert_arguments`, the source as `self`, `root` or `parent`, an `Info` if asked for.
RESOLVER_PARAMETERS = ("self_parameter", "parent_parameter", "root_parameter", "info_parameter")
CONVERT_ARGUMENTS = ("value", "arguments", "scalar_registry", "config", "info")
QUERIES_ONLY = frozenset({OperationType.QUERY})

__all__ = ["QUERIES_ONLY", "SEAM", "PreExecutionError"]


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built."""
    return schema._schema


def execution_context(
    schema: strawberry.Schema,
    query: str,
    *,
    variables: dict[str, Any] | None = None,
    context: Any = None,
    root_value: Any = None,
    operation_name: str | None = None,
    operation_extensions: dict[str, Any] | None = None,
    allowed: Iterable[OperationType] = QUERIES_ONLY,
) -> ExecutionContext:
    return schema._create_execution_context(
        query=query,
        allowed_operation_types=allowed,
        variable_values=variables,
        context_value=context,
        root_value=root_value,
        operation_name=operation_name,
        operation_extensions=operation_extensions,
    )


# The hooks an extension may act through while a compiled plan runs (parsing and validation ran at compile time).
_REQUEST_HOOKS = ("on_operation", "on_execute", "get_results")


class RequestExtensions:
    """Builds, per request, the schema's extensions that act while a plan runs: those that override
    `on_operation`, `on_execute` or `get_results`, in the schema's order, each a new instance as strawberry makes
    them. An extension that only parses or validates has done its work at compile time; building and entering it
    for every request would be the per-request cost of a hook that does nothing."""

    def __init__(self, schema: strawberry.Schema) -> None:
        compiled = schema.get_extensions()  # one instance of each, in the order of `schema.extensions`
        self.factories = [
            factory
            for factory, instance in zip(self._sources(schema), compiled, strict=True)
            if any(_overrides(instance, hook) for hook in _REQUEST_HOOKS)
        ]
        # Whether any of them has an execution hook: without one, entering the (empty) hook stack is skipped.
        self.on_execute = any(_overrides(instance, "on_execute") for instance in compiled)

    @staticmethod
    def _sources(schema: strawberry.Schema) -> list[Any]:
        # `get_extensions` adds the directives extension when the schema has directives: it has a `resolve` hook,
        # so such a schema is never compiled, and it is not listed here.
        return list(schema.extensions) + ([None] if schema.directives else [])

    def __call__(self) -> list[SchemaExtension]:
        return [f if isinstance(f, SchemaExtension) else f() for f in self.factories]

    @staticmethod
    def operation(extensions: list[SchemaExtension]) -> Hooks:
        """What `SchemaExtensionsRunner.operation()` enters: each extension's `on_operation`."""
        return Hooks("on_operation", extensions)

    @staticmethod
    def executing(extensions: list[SchemaExtension]) -> Hooks:
        """What `SchemaExtensionsRunner.executing()` enters: each extension's `on_execute`."""
        return Hooks("on_execute", extensions)


class Hooks:
    """strawberry's `ExtensionContextManagerBase`, step for step (each extension's hook entered in order on one exit
    stack, left in reverse; a hook's exception propagates, none is suppressed), but with each class's hook made a
    context-manager factory once (`_hook`) rather than wrapped anew for every request and extension."""

    __slots__ = ("entries", "stack")

    def __init__(self, name: str, extensions: list[SchemaExtension]) -> None:
        self.entries = [(hook, extension) for extension in extensions if (hook := _hook(type(extension), name))]

    async def __aenter__(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        await self.stack.__aenter__()
        for (factory, is_async), extension in self.entries:
            if is_async:
                await self.stack.enter_async_context(factory(extension))
            else:
                self.stack.enter_context(factory(extension))

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stack.__aexit__(*exc_info)


_HOOKS: dict[tuple[type[SchemaExtension], str], tuple[Callable[..., Any], bool] | None] = {}


def _hook(extension_type: type[SchemaExtension], name: str) -> tuple[Callable[..., Any], bool] | None:
    key = (extension_type, name)
    if key not in _HOOKS:
        _HOOKS[key] = _hook_factory(extension_type, name)
    return _HOOKS[key]


def _hook_factory(extension_type: type[SchemaExtension], name: str) -> tuple[Callable[..., Any], bool] | None:
    """A class's hook as a context-manager factory taking the extension, and whether it is async: strawberry's
    `ExtensionContextManagerBase.get_hook` (generator, async generator or plain callable), once per class."""
    hook = getattr(extension_type, name)
    if hook is getattr(SchemaExtension, name):
        return None
    if inspect.isgeneratorfunction(hook):
        return contextlib.contextmanager(hook), False
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), True
    if not callable(hook):
        raise ValueError(f"Hook {name} on {extension_type} must be callable, received {hook!r}")
    if asyncio.iscoroutinefunction(hook):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook(extension)
            yield

        return awaited, True

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return called, False


def argument_converter(schema: strawberry.Schema, field: StrawberryField) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The field's arguments as its resolver takes them (Python names and types), from graphql-core's coerced values.
    Only for arguments of scalar and enum types: input types may build themselves with the request's info."""
    registry = schema.schema_converter.scalar_registry
    arguments, config = field.arguments, schema.config

    def convert(values: dict[str, Any]) -> dict[str, Any]:
        return convert_arguments(values, arguments, scalar_registry=registry, config=config, info=None)

    return convert


def info(schema: strawberry.Schema, raw: GraphQLResolveInfo, field: StrawberryField) -> Info:
    """strawberry's `Info` for a resolver that asks for it."""
    return schema.config.info_class(_raw_info=raw, _field=field)


def _overrides(extension: SchemaExtension, hook: str) -> bool:
    return getattr(type(extension), hook) is not getattr(SchemaExtension, hook)


def extensions_runner(
    schema: strawberry.Schema, context: ExecutionContext, extensions: list[SchemaExtension]
) -> SchemaExtensionsRunner:
    """The runner of the request's extension instances, each told the request's execution context (as
    `Schema.execute` does)."""
    for extension in extensions:
        extension.execution_context = context
    return schema.create_extensions_runner(context, extensions)


def prepare_sync(
    schema: strawberry.Schema, context: ExecutionContext, runner: SchemaExtensionsRunner
) -> ExecutionResult | None:
    """Parse and validate in the extensions' hooks: None when the document is fine (in `context.graphql_document`),
    else the errors' result. Raises if the operation is not one of the allowed types."""
    return schema._prepare_operation_sync(context, runner)


def process_errors(schema: strawberry.Schema, errors: list[GraphQLError], context: ExecutionContext) -> None:
    """The schema's `process_errors` (logging), before any hook masks the errors."""
    schema._process_errors(errors, context)


async def handle_result(
    schema: strawberry.Schema,
    context: ExecutionContext,
    result: Any,
    runner: SchemaExtensionsRunner,
    *,
    errors_processed: bool,
) -> ExecutionResult:
    """The request's `ExecutionResult`: errors on the context, the extensions' results added."""
    return await schema._handle_execution_result(context, result, runner, skip_process_errors=errors_processed)
