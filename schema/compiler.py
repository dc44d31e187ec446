"""Compiled execution of the trusted documents: the member app's queries without graphql-core's executor.

At start-up each operation of `mobile-client-mock/operations/` is parsed and validated exactly as strawberry would
for a request (its own parse and validation hooks: the schema's limits and rules) and turned into a plan: the
selection, with its fragments inlined and its fields collected per object type, each field bound to its
`GraphQLField`, its resolver and a completer for its return type. A request whose query text is one of them runs
the plan: the same strawberry resolvers (so the same DataLoaders, `loyalty` reads, authentication and
authorization), called directly with a `GraphQLResolveInfo`; plain attributes are read with `getattr`, as
strawberry's default resolver does. What is skipped is the generic machinery around them (field collection and
lookups per request, per-field info objects for plain fields, extension hooks), which is most of a request's CPU.

The semantics are graphql-core's, step by step (`graphql.execution.executor`): variables are coerced by its
`get_variable_values` (same errors), arguments by `get_argument_values`, leaves by `coerce_output_value`; a field
error nulls the nearest nullable parent and is reported once with its path. The plan runs inside the schema's own
extension hooks as strawberry runs graphql-core (operation and execution hooks per request, so masking, error codes
and logging see the same result; parsing and validation hooks once, at compile time). Anything the plan does not
cover (mutations and subscriptions, abstract return types, introspection, `@defer`/`@stream`, an extension with a
`resolve` hook) is not compiled and runs through strawberry: never a different answer. `tests/schema/
test_compiled_differential.py` runs every trusted document through both paths and compares the JSON.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSkipDirective,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    located_error,
)
from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values, get_variable_values
from graphql.language import Visitor, visit
from graphql.pyutils import Path, Undefined, gather_with_cancel, inspect, is_awaitable, is_iterable
from graphql.type.definition import GraphQLResolveInfoHelpers
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT
from strawberry import relay
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType as StrawberryOperationType

from schema.trusted_documents import OPERATIONS_DIR

logger = logging.getLogger(__name__)


class Unsupported(Exception):
    """The document uses something the plan does not cover; it runs through strawberry."""


# --- Completers: one per return type, as graphql-core's `complete_value` branches on it. ---


class _Completer:
    def complete(self, run: _Run, f: _Field, path: Path, value: Any) -> Any:
        raise NotImplementedError


@dataclass(eq=False)
class _NonNull(_Completer):
    inner: _Completer

    def complete(self, run: _Run, f: _Field, path: Path, value: Any) -> Any:
        completed = self.inner.complete(run, f, path, value)
        if completed is None:  # an awaitable (object or list still completing) is never null
            raise TypeError(f"Cannot return null for non-nullable field {f.parent_type.name}.{f.name}.")
        return completed


# graphql-core's own String, Boolean and Int give back a value of exactly their Python type unchanged (an int in
# the 32-bit range): checked first, the common case skips the call. Any other value takes the scalar's function.
_IDENTITY = {id(GraphQLString): str, id(GraphQLBoolean): bool, id(GraphQLInt): int}
_INT_RANGE = range(GRAPHQL_MIN_INT, GRAPHQL_MAX_INT + 1)


@dataclass(eq=False)
class _Leaf(_Completer):
    type: Any  # GraphQLScalarType | GraphQLEnumType

    def __post_init__(self) -> None:
        self.identity = _IDENTITY.get(id(self.type))

    def complete(self, run: _Run, f: _Field, path: Path, value: Any) -> Any:
        if type(value) is self.identity and (self.identity is not int or value in _INT_RANGE):
            return value
        if value is None or value is Undefined:
            return None
        coerced = self.type.coerce_output_value(value)
        if coerced is Undefined or coerced is None:
            raise TypeError(
                f"Expected `{inspect(self.type)}.coerce_output_value({inspect(value)})` to return non-nullable"
                f" value, returned: {inspect(coerced)}"
            )
        return coerced


@dataclass(eq=False)
class _List(_Completer):
    inner: _Completer
    item_type: GraphQLOutputType

    def complete(self, run: _Run, f: _Field, path: Path, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not is_iterable(value):
            raise GraphQLError(f"Expected Iterable, but did not find one for field '{f.parent_type.name}.{f.name}'.")
        results: list[Any] = []
        pending: list[int] = []
        try:
            for index, item in enumerate(value):
                item_path = path.add_key(index, None)
                if _is_awaitable(item):
                    results.append(run.complete_awaitable(self.inner, f, self.item_type, item_path, item))
                    pending.append(index)
                    continue
                try:
                    if isinstance(item, Exception):
                        raise item
                    completed = self.inner.complete(run, f, item_path, item)
                    if _is_awaitable(completed):
                        completed = run.await_completed(completed, f, self.item_type, item_path)
                        pending.append(index)
                    results.append(completed)
                except Exception as raw_error:
                    run.field_error(raw_error, f, self.item_type, item_path)
                    results.append(None)
        except Exception:
            run.settle([results[index] for index in pending])
            raise
        if not pending:
            return results
        return run.gather_into(results, pending)


@dataclass(eq=False)
class _Object(_Completer):
    type: GraphQLObjectType
    fields: list[_Field]

    def complete(self, run: _Run, f: _Field | None, path: Path | None, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        is_type_of = self.type.is_type_of
        # strawberry's is_type_of reads only the value, not the info
        if is_type_of is not None and not is_type_of(value, None):  # type: ignore[arg-type]
            nodes = f.nodes if f is not None else None
            raise GraphQLError(f"Expected value of type '{self.type.name}' but got: {inspect(value)}.", nodes)
        return run.execute_fields(self, value, path)


# --- Fields ---


@dataclass(eq=False)
class _Field:
    key: str  # the response key: the alias, else the name
    name: str
    nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    definition: GraphQLField | None  # None for __typename
    return_type: GraphQLOutputType
    completer: _Completer
    # How the value is read: `attribute` for strawberry's plain fields (its default resolver is getattr), else the
    # field's resolver with `arguments` (None: they reference variables and are coerced per request).
    attribute: str | None = None
    arguments: dict[str, Any] | None = field(default_factory=dict)
    # A plain attribute completed as a scalar or enum: never awaitable, so run inline (see `_Run.execute_fields`).
    leaf: bool = False
    # A getter registered for this field's resolver (`FAST_GETTERS`): the same value without the resolver's
    # wrapping; it returns NotImplemented for a source it does not cover, which then goes to the resolver.
    getter: Callable[[Any], Any] | None = None

    def read(self, run: _Run, source: Any, path: Path) -> Any:
        if self.definition is None:
            return self.parent_type.name
        if self.attribute is not None:
            return getattr(source, self.attribute)
        if self.getter is not None:
            value = self.getter(source)
            if value is not NotImplemented:
                return value
        arguments = self.arguments
        if arguments is None:
            arguments = get_argument_values(self.definition, self.nodes[0], run.variables)
        assert self.definition.resolve is not None
        return self.definition.resolve(source, run.info(self, path), **arguments)


class _Run:
    """One execution of a plan: graphql-core's `Executor` reduced to what a compiled plan needs."""

    __slots__ = ("background", "context", "errors", "nulled", "operation", "root_value", "variables")

    def __init__(self, operation: CompiledOperation, context: Any, variables: VariableValues, root_value: Any) -> None:
        self.operation = operation
        self.context = context
        self.root_value = root_value
        self.variables = variables
        self.errors: list[GraphQLError] = []
        self.nulled: set[Path | None] = set()
        self.background: list[Awaitable[Any]] = []

    def info(self, f: _Field, path: Path) -> GraphQLResolveInfo:
        assert f.definition is not None
        op = self.operation
        return GraphQLResolveInfo(
            f.name,
            f.nodes,
            f.return_type,
            f.parent_type,
            path,
            op.schema,
            op.fragments,
            self.root_value,
            op.definition,
            self.variables,
            self.context,
            is_awaitable,
            None,
            _HELPERS,
        )

    def settle(self, started: list[Awaitable[Any]]) -> None:
        """Let what was already started under a position that failed finish (it may fail too) before answering,
        as graphql-core's `settle_in_background` does; its errors are under the nulled position, so not reported."""
        if started:
            self.background.append(gather_with_cancel(*started))

    def execute_fields(self, plan: _Object, source: Any, path: Path | None) -> Any:
        results: dict[str, Any] = {}
        pending: list[str] = []
        type_name = plan.type.name
        try:
            for f in plan.fields:
                if f.leaf:  # the common case, inline; the path is only made for an error
                    try:
                        value = getattr(source, f.attribute)  # type: ignore[arg-type]
                        if isinstance(value, Exception):
                            raise value
                        results[f.key] = f.completer.complete(self, f, path, value)  # type: ignore[arg-type]
                    except Exception as raw_error:
                        results[f.key] = None
                        self.field_error(raw_error, f, f.return_type, Path(path, f.key, type_name))
                    continue
                value = self.execute_field(f, source, Path(path, f.key, type_name))
                results[f.key] = value
                if _is_awaitable(value):
                    pending.append(f.key)
        except Exception:
            self.settle([results[key] for key in pending])
            raise
        if not pending:
            return results
        return self._gather_fields(results, pending)

    async def _gather_fields(self, results: dict[str, Any], pending: list[str]) -> dict[str, Any]:
        if len(pending) == 1:
            results[pending[0]] = await results[pending[0]]
        else:
            values = await gather_with_cancel(*(results[key] for key in pending))
            results.update(zip(pending, values, strict=True))
        return results

    async def gather_into(self, results: list[Any], pending: list[int]) -> list[Any]:
        if len(pending) == 1:
            results[pending[0]] = await results[pending[0]]
        else:
            values = await gather_with_cancel(*(results[index] for index in pending))
            for index, value in zip(pending, values, strict=True):
                results[index] = value
        return results

    def execute_field(self, f: _Field, source: Any, path: Path) -> Any:
        try:
            value = f.read(self, source, path)
            if _is_awaitable(value):
                return self.complete_awaitable(f.completer, f, f.return_type, path, value)
            if isinstance(value, Exception):
                raise value
            completed = f.completer.complete(self, f, path, value)
            if _is_awaitable(completed):
                return self.await_completed(completed, f, f.return_type, path)
            return completed
        except Exception as raw_error:
            self.field_error(raw_error, f, f.return_type, path)
            return None

    async def complete_awaitable(
        self, completer: _Completer, f: _Field, return_type: GraphQLOutputType, path: Path, value: Awaitable[Any]
    ) -> Any:
        try:
            resolved = await value
            if isinstance(resolved, Exception):
                raise resolved
            completed = completer.complete(self, f, path, resolved)
            if is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.field_error(raw_error, f, return_type, path)
            return None
        return completed

    async def await_completed(
        self, completed: Awaitable[Any], f: _Field, return_type: GraphQLOutputType, path: Path
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.field_error(raw_error, f, return_type, path)
            return None

    def field_error(self, raw_error: Exception, f: _Field, return_type: GraphQLOutputType, path: Path) -> None:
        """graphql-core's `handle_field_error`: a non-null position passes the error up to its parent; a nullable
        one becomes null and keeps the error (once: not under a position already nulled)."""
        error = located_error(raw_error, f.nodes, path.as_list())
        if isinstance(return_type, GraphQLNonNull):
            raise error
        self.add_error(error, path)

    def add_error(self, error: GraphQLError, path: Path | None) -> None:
        position: Path | None = path
        while position is not None:
            if position in self.nulled:
                return
            position = position.prev
        if None in self.nulled:
            return
        self.nulled.add(path)
        self.errors.append(error)


# Values that are never awaitable, checked first: graphql-core's `is_awaitable` is the costlier general test.
_PLAIN_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def _is_awaitable(value: Any) -> bool:
    return type(value) not in _PLAIN_TYPES and is_awaitable(value)


def _node_id(schema: strawberry.Schema, parent: GraphQLObjectType) -> Callable[[Any], Any] | None:
    """relay's `Node.id` without its resolver's wrapping, for node types that keep relay's own `resolve_id` and
    `resolve_typename`: the GlobalID of the parent type's name and the NodeID attribute."""
    definition = schema.get_type_by_name(parent.name)
    origin = getattr(definition, "origin", None)
    if origin is None or not issubclass(origin, relay.Node):
        return None
    if origin.resolve_id.__func__ is not relay.Node.resolve_id.__func__:  # type: ignore[attr-defined]
        return None
    if origin.resolve_typename.__func__ is not relay.Node.resolve_typename.__func__:  # type: ignore[attr-defined]
        return None
    type_name, attribute = parent.name, origin.resolve_id_attr()

    def get(source: Any) -> Any:
        if type(source) is not origin:
            return NotImplemented
        return relay.GlobalID(type_name=type_name, node_id=str(getattr(source, attribute)))

    return get


# Fast getters by the strawberry resolver function they stand for: (schema, parent type) -> getter or None.
FAST_GETTERS: dict[Any, Callable[[strawberry.Schema, GraphQLObjectType], Callable[[Any], Any] | None]] = {
    relay.Node.__dict__["_id"].__func__: _node_id,
}


async def _gather(values: Sequence[Awaitable[Any]]) -> list[Any]:
    return await gather_with_cancel(*values)


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=lambda values: None)


# --- Plans ---


@dataclass(eq=False)
class CompiledOperation:
    """One trusted query, compiled. `execute` answers like `schema.execute` would (same data, same errors)."""

    name: str | None
    schema: Any  # graphql.GraphQLSchema
    strawberry_schema: strawberry.Schema
    document: DocumentNode
    definition: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    text: str
    # The variables @skip/@include read: the plan depends on their values, so one is built per combination.
    condition_variables: tuple[str, ...]
    _plans: dict[tuple[Any, ...], _Object] = field(default_factory=dict)

    def plan(self, variables: VariableValues) -> _Object:
        key = tuple(variables.coerced.get(name) for name in self.condition_variables)
        plan = self._plans.get(key)
        if plan is None:
            root = self.schema.query_type
            plan = _Object(root, _compile_fields(self, root, [self.definition.selection_set], variables))
            self._plans[key] = plan
        return plan

    async def execute(
        self,
        context: Any,
        raw_variables: Mapping[str, Any] | None,
        root_value: Any = None,
        operation_name: str | None = None,
    ) -> ExecutionResult:
        """The plan run inside the schema's own extension hooks, as `strawberry.Schema.execute` runs graphql-core:
        the operation and execution hooks per request (error masking, codes, logging see the same result), the
        parsing and validation hooks once, at compile time."""
        schema = self.strawberry_schema
        execution_context = schema._create_execution_context(
            query=self.text,
            allowed_operation_types=_QUERIES_ONLY,
            variable_values=dict(raw_variables) if raw_variables is not None else None,
            context_value=context,
            root_value=root_value,
            operation_name=operation_name,
        )
        extensions = schema.get_extensions()
        for extension in extensions:
            extension.execution_context = execution_context
        runner = schema.create_extensions_runner(execution_context, extensions)
        try:
            async with runner.operation():
                execution_context.graphql_document = self.document
                async with runner.executing():
                    result = await self._run(context, raw_variables, root_value)
                    execution_context.result = result
                    if result.errors:
                        execution_context.pre_execution_errors = result.errors
                        schema._process_errors(result.errors, execution_context)  # before any hook masks them
        except Exception as error:  # as strawberry: an error outside any field is the result's one error
            located = error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
            failed = PreExecutionError(data=None, errors=[located])
            return await schema._handle_execution_result(execution_context, failed, runner)
        return await schema._handle_execution_result(execution_context, result, runner, skip_process_errors=True)

    async def _run(
        self, context: Any, raw_variables: Mapping[str, Any] | None, root_value: Any
    ) -> GraphQLExecutionResult:
        coerced = get_variable_values(
            self.schema, self.definition.variable_definitions or (), dict(raw_variables or {})
        )
        if isinstance(coerced, list):  # bad variables: the errors graphql-core gives, and no execution
            return GraphQLExecutionResult(None, coerced)
        run = _Run(self, context, coerced, root_value)
        try:
            data = run.execute_fields(self.plan(coerced), root_value, None)
            if is_awaitable(data):
                data = await data
        except GraphQLError as error:  # a null bubbled up to the root: no data
            run.add_error(error, None)
            data = None
        for pending in run.background:  # settled before answering; their errors are under a nulled position
            with contextlib.suppress(Exception):  # already reported at the position it nulled
                await pending
        return GraphQLExecutionResult(data, run.errors or None)


_QUERIES_ONLY = frozenset({StrawberryOperationType.QUERY})


def _compile_fields(
    op: CompiledOperation, parent: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode], variables: Any
) -> list[_Field]:
    grouped: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()
    for selection_set in selection_sets:
        _collect(op, parent, selection_set, variables, grouped, visited)
    return [_compile_field(op, parent, key, nodes, variables) for key, nodes in grouped.items()]


def _collect(
    op: CompiledOperation,
    runtime_type: GraphQLObjectType,
    selection_set: SelectionSetNode,
    variables: Any,
    grouped: dict[str, list[FieldNode]],
    visited: set[str],
) -> None:
    """The spec's CollectFields (graphql-core's `collect_fields`) for one object type."""
    for selection in selection_set.selections:
        if any(d.name.value in ("defer", "stream") for d in selection.directives or ()):
            raise Unsupported("@defer/@stream")
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            grouped.setdefault(key, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            if _condition_matches(op, condition, runtime_type):
                _collect(op, runtime_type, selection.selection_set, variables, grouped, visited)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visited:
                continue
            visited.add(name)
            fragment = op.fragments.get(name)
            if fragment is not None and _condition_matches(op, fragment.type_condition.name.value, runtime_type):
                _collect(op, runtime_type, fragment.selection_set, variables, grouped, visited)


def _included(node: Any, variables: Any) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip and skip["if"] is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include and include["if"] is False)


def _condition_matches(op: CompiledOperation, condition: str | None, runtime_type: GraphQLObjectType) -> bool:
    if condition is None:
        return True
    condition_type = op.schema.get_type(condition)
    if condition_type is runtime_type:
        return True
    return bool(is_abstract_type(condition_type) and op.schema.is_sub_type(condition_type, runtime_type))


def _compile_field(
    op: CompiledOperation, parent: GraphQLObjectType, key: str, nodes: list[FieldNode], variables: Any
) -> _Field:
    name = nodes[0].name.value
    if name == "__typename":
        return _Field(key, name, nodes, parent, None, GraphQLNonNull(GraphQLString), _NonNull(_Leaf(GraphQLString)))
    if name.startswith("__"):
        raise Unsupported(f"introspection field {name}")
    definition = parent.fields[name]
    completer = _completer(op, definition.type, nodes, variables)
    compiled = _Field(key, name, nodes, parent, definition, definition.type, completer)
    strawberry_field = (definition.extensions or {}).get("strawberry-definition")
    if getattr(definition.resolve, "_is_default", False) and strawberry_field is not None:
        # strawberry's resolver for a plain field: `getattr(source, python_name)`, no info, no arguments
        compiled.attribute = strawberry_field.python_name
        leaf = completer.inner if isinstance(completer, _NonNull) else completer
        compiled.leaf = isinstance(leaf, _Leaf)
        return compiled
    if strawberry_field is not None and strawberry_field.base_resolver is not None:
        wrapped = getattr(strawberry_field.base_resolver.wrapped_func, "__func__", None)
        make_getter = FAST_GETTERS.get(wrapped)
        if make_getter is not None and not strawberry_field.extensions and not strawberry_field.permission_classes:
            compiled.getter = make_getter(op.strawberry_schema, parent)
    if definition.resolve is None:
        raise Unsupported(f"{parent.name}.{name} has no resolver")
    elif not _uses_variables(nodes[0]):
        compiled.arguments = get_argument_values(definition, nodes[0], variables)
    else:
        compiled.arguments = None
    return compiled


def _completer(op: CompiledOperation, type_: Any, nodes: list[FieldNode], variables: Any) -> _Completer:
    if isinstance(type_, GraphQLNonNull):
        return _NonNull(_completer(op, type_.of_type, nodes, variables))
    if isinstance(type_, GraphQLList):
        return _List(_completer(op, type_.of_type, nodes, variables), type_.of_type)
    if is_leaf_type(type_):
        return _Leaf(type_)
    if isinstance(type_, GraphQLObjectType):
        selections = [node.selection_set for node in nodes if node.selection_set]
        return _Object(type_, _compile_fields(op, type_, selections, variables))
    raise Unsupported(f"abstract type {type_}")


def _uses_variables(node: FieldNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, *_: Any) -> None:
            nonlocal found
            found = True

    for argument in node.arguments or ():
        visit(argument, Finder())
    return found


def _condition_variables(document: DocumentNode) -> tuple[str, ...]:
    names: list[str] = []

    class Finder(Visitor):
        def enter_directive(self, node: Any, *_: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode) and argument.value.name.value not in names:
                        names.append(argument.value.name.value)

    visit(document, Finder())
    return tuple(names)


def compile_operation(schema: strawberry.Schema, query: str) -> CompiledOperation:
    """Compile one query document; `Unsupported` (or the validation errors, as `Unsupported`) if it cannot be."""
    extensions = schema.get_extensions(sync=True)
    # A `resolve` hook wraps every field's resolver (middleware), which the plan does not run: not compiled.
    middleware = [type(e).__name__ for e in extensions if type(e).resolve is not SchemaExtension.resolve]
    if middleware:
        raise Unsupported(f"schema extensions with a resolve hook: {middleware}")
    document = _validated(schema, query, extensions)
    definitions = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(definitions) != 1 or definitions[0].operation != OperationType.QUERY:
        raise Unsupported("only documents with one query are compiled (mutations run through strawberry)")
    definition = definitions[0]
    op = CompiledOperation(
        name=definition.name.value if definition.name else None,
        schema=schema._schema,
        strawberry_schema=schema,
        document=document,
        definition=definition,
        fragments={d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)},
        text=query,
        condition_variables=_condition_variables(document),
    )
    if not op.condition_variables:  # the one plan there is: built now, so an unsupported part shows at start-up
        op.plan(_NO_VARIABLES)
    return op


_NO_VARIABLES = VariableValues({}, {})


def _validated(schema: strawberry.Schema, query: str, extensions: list[Any]) -> DocumentNode:
    """The document parsed and validated by strawberry's own pre-execution steps (parser and validation hooks of
    the schema's extensions: token limit, depth and alias limits, trusted documents, no introspection)."""
    context = schema._create_execution_context(query=query, allowed_operation_types={StrawberryOperationType.QUERY})
    for extension in extensions:
        extension.execution_context = context
    runner = schema.create_extensions_runner(context, extensions)
    try:
        with runner.operation():
            errors = schema._prepare_operation_sync(context, runner)
    except Exception as error:  # the operation is not a query
        raise Unsupported(str(error)) from error
    if errors is not None or context.graphql_document is None:
        raise Unsupported(f"does not validate: {errors and errors.errors}")
    return context.graphql_document


class CompiledDocuments:
    """The trusted queries compiled for one schema, found by their exact text (the app sends the files as they
    are; any other spelling of a document simply runs through strawberry)."""

    def __init__(self, schema: strawberry.Schema, directory: FilePath = OPERATIONS_DIR) -> None:
        self.operations: dict[str, CompiledOperation] = {}
        self.not_compiled: dict[str, str] = {}  # file name: why
        for path in sorted(directory.glob("*.graphql")):
            text = path.read_text()
            try:
                self.operations[text] = compile_operation(schema, text)
            except Unsupported as reason:
                self.not_compiled[path.name] = str(reason)
        logger.debug("compiled %d trusted documents; through strawberry: %s", len(self.operations), self.not_compiled)

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
