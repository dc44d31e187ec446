"""The entry point: which documents are compiled, finding one by its text, and running it inside the schema's
extension hooks as strawberry runs graphql-core."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import strawberry
from graphql import DocumentNode, FragmentDefinitionNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues
from strawberry.types import ExecutionResult

from schema.compiled import seam
from schema.compiled.execution import ObjectOf, Operation, coerce_variables, execute_plan
from schema.compiled.planning import Unsupported, condition_variables, plan_operation, refuse_middleware

logger = logging.getLogger("schema.compiled")


@dataclass(eq=False)
class CompiledOperation:
    """One known query (a trusted document, a till's reference operation), compiled. `execute` answers like
    `schema.execute` would (same data, same errors)."""

    name: str | None
    strawberry_schema: strawberry.Schema
    document: DocumentNode
    operation: Operation
    text: str
    extensions: seam.RequestExtensions
    # The variables @skip/@include read: the plan depends on their values, so one is built per combination.
    condition_variables: tuple[str, ...]
    _plans: dict[tuple[Any, ...], ObjectOf] = field(default_factory=dict)

    def plan(self, variables: VariableValues) -> ObjectOf:
        key = tuple(variables.coerced.get(name) for name in self.condition_variables)
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_operation(self.strawberry_schema, self.operation, variables)
            self._plans[key] = plan
        return plan

    async def execute(
        self,
        context: Any,
        raw_variables: Mapping[str, Any] | None,
        root_value: Any = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """The plan run inside the schema's own extension hooks, as `strawberry.Schema.execute` runs graphql-core:
        the operation and execution hooks per request (error masking, codes, logging see the same result), the
        parsing and validation hooks once, at compile time."""
        schema = self.strawberry_schema
        execution_context = seam.execution_context(
            schema,
            self.text,
            variables=dict(raw_variables) if raw_variables is not None else None,
            context=context,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
        extensions = self.extensions()
        runner = seam.extensions_runner(schema, execution_context, extensions)
        try:
            async with self.extensions.operation(extensions):
                execution_context.graphql_document = self.document
                async with self.extensions.executing(extensions) if self.extensions.on_execute else _NO_HOOKS:
                    result = await self._run(context, raw_variables, root_value)
                    execution_context.result = result
                    if result.errors:
                        execution_context.pre_execution_errors = result.errors
                        seam.process_errors(schema, result.errors, execution_context)  # before any hook masks them
        except Exception as error:  # as strawberry: an error outside any field is the result's one error
            located = error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
            failed = seam.PreExecutionError(data=None, errors=[located])
            return await seam.handle_result(schema, execution_context, failed, runner, errors_processed=False)
        return await seam.handle_result(schema, execution_context, result, runner, errors_processed=True)

    async def _run(
        self, context: Any, raw_variables: Mapping[str, Any] | None, root_value: Any
    ) -> GraphQLExecutionResult:
        coerced = coerce_variables(self.operation, raw_variables)
        if isinstance(coerced, list):  # bad variables: the errors graphql-core gives, and no execution
            return GraphQLExecutionResult(None, coerced)
        return await execute_plan(self.operation, self.plan(coerced), context, coerced, root_value)


def compile_operation(schema: strawberry.Schema, query: str) -> CompiledOperation:
    """Compile one query document; `Unsupported` (or the validation errors, as `Unsupported`) if it cannot be."""
    extensions = schema.get_extensions(sync=True)
    refuse_middleware(extensions)
    document = _validated(schema, query, extensions)
    definitions = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(definitions) != 1 or definitions[0].operation != OperationType.QUERY:
        raise Unsupported("only documents with one query are compiled (mutations run through strawberry)")
    definition = definitions[0]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    op = CompiledOperation(
        name=definition.name.value if definition.name else None,
        strawberry_schema=schema,
        document=document,
        operation=Operation(seam.graphql_schema(schema), definition, fragments),
        text=query,
        extensions=seam.RequestExtensions(schema),
        condition_variables=condition_variables(document),
    )
    if not op.condition_variables:  # the one plan there is: built now, so an unsupported part shows at start-up
        op.plan(_NO_VARIABLES)
    return op


_NO_VARIABLES = VariableValues({}, {})
_NO_HOOKS = contextlib.nullcontext()


def _validated(schema: strawberry.Schema, query: str, extensions: list[Any]) -> DocumentNode:
    """The document parsed and validated by strawberry's own pre-execution steps (parser and validation hooks of
    the schema's extensions: token limit, depth and alias limits, trusted documents, no introspection)."""
    context = seam.execution_context(schema, query)
    runner = seam.extensions_runner(schema, context, extensions)
    try:
        with runner.operation():
            errors = seam.prepare_sync(schema, context, runner)
    except Exception as error:  # the operation is not a query
        raise Unsupported(str(error)) from error
    if errors is not None or context.graphql_document is None:
        raise Unsupported(f"does not validate: {errors and errors.errors}")
    return context.graphql_document


class CompiledDocuments:
    """The queries of one directory compiled for one schema, found by their exact text (the clients send the files
    as they are; any other spelling of a document simply runs through strawberry)."""

    def __init__(self, schema: strawberry.Schema, directory: Path) -> None:
        self.operations: dict[str, CompiledOperation] = {}
        self.not_compiled: dict[str, str] = {}  # file name: why
        for path in sorted(directory.glob("*.graphql")):
            text = path.read_text()
            try:
                self.operations[text] = compile_operation(schema, text)
            except Unsupported as reason:
                self.not_compiled[path.name] = str(reason)
        logger.debug(
            "compiled %d documents of %s; through strawberry: %s", len(self.operations), directory, self.not_compiled
        )

    def get(self, query: str | None, operation_name: str | None, variables: object) -> CompiledOperation | None:
        """The compiled operation for this request, or None to run it through strawberry (another document, an
        operation name that is not the document's, variables that are not an object)."""
        if query is None:
            return None
        operation = self.operations.get(query)
        if operation is None or (operation_name is not None and operation_name != operation.name):
            return None
        if variables is not None and not isinstance(variables, dict):
            return None
        return operation
