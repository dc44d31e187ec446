"""Running a plan: graphql-core's executor reduced to what a compiled plan needs, step for step.

A plan is a tree of completers, one per return type, as graphql-core's `complete_value` branches on it (non-null,
list, leaf, object); an object's completer holds its collected fields, each bound to its `GraphQLField` and a way to
read its value. `execute_plan` coerces the variables (graphql-core's `get_variable_values`: same errors) and runs the
plan over the root value; a field error nulls the nearest nullable parent and is reported once, with its path
(`handle_field_error`); what was already started under a position that failed finishes before the answer
(`settle_in_background`). Nothing here knows strawberry: the resolvers are whatever the `GraphQLField` holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import GeneratorType
from typing import Any

from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, Undefined, gather_with_cancel, inspect, is_awaitable, is_iterable
from graphql.type.definition import GraphQLResolveInfoHelpers
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT

# --- Completers: one per return type. ---


class Completer:
    def complete(self, run: Run, f: Field, path: Path, value: Any) -> Any:
        raise NotImplementedError


@dataclass(eq=False)
class NonNull(Completer):
    inner: Completer

    def complete(self, run: Run, f: Field, path: Path, value: Any) -> Any:
        completed = self.inner.complete(run, f, path, value)
        if completed is None:  # an awaitable (object or list still completing) is never null
            raise TypeError(f"Cannot return null for non-nullable field {f.parent_type.name}.{f.name}.")
        return completed


# graphql-core's own String, Boolean and Int give back a value of exactly their Python type unchanged (an int in
# the 32-bit range): checked first, the common case skips the call. Any other value takes the scalar's function.
_IDENTITY = {id(GraphQLString): str, id(GraphQLBoolean): bool, id(GraphQLInt): int}
_INT_RANGE = range(GRAPHQL_MIN_INT, GRAPHQL_MAX_INT + 1)


@dataclass(eq=False)
class Leaf(Completer):
    type: Any  # GraphQLScalarType | GraphQLEnumType

    def __post_init__(self) -> None:
        self.identity = _IDENTITY.get(id(self.type))
        # A strawberry enum's members by the names they complete to (its `coerce_output_value` searches the values
        # for each one): asked once per member, here.
        members = getattr(self.type, "wrapped_cls", None)
        self.enum = members if isinstance(members, type) and issubclass(members, Enum) else None
        self.names: dict[int, str] = {}  # by the member's id: members are singletons, and Enum hashes in Python
        for member in self.enum or ():
            with contextlib.suppress(Exception):  # a member it refuses is refused per request, as strawberry does
                self.names[id(member)] = self.type.coerce_output_value(member)

    def complete(self, run: Run, f: Field, path: Path, value: Any) -> Any:
        if type(value) is self.identity and (self.identity is not int or value in _INT_RANGE):
            return value
        if type(value) is self.enum and (name := self.names.get(id(value))) is not None:
            return name
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
class ListOf(Completer):
    inner: Completer
    item_type: GraphQLOutputType

    def __post_init__(self) -> None:
        # Items completed as scalars or enums are never awaitable and need no path but for an error: inline.
        self.leaves = isinstance(self.inner.inner if isinstance(self.inner, NonNull) else self.inner, Leaf)

    def complete(self, run: Run, f: Field, path: Path, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if type(value) is not list and not is_iterable(value):  # (a list is: the common case skips the ABC check)
            raise GraphQLError(f"Expected Iterable, but did not find one for field '{f.parent_type.name}.{f.name}'.")
        if self.leaves:
            return self._complete_leaves(run, f, path, value)
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

    def _complete_leaves(self, run: Run, f: Field, path: Path, value: Iterable[Any]) -> Any:
        """The loop above for items completed as scalars or enums (never awaitable once resolved), the item's path
        made only where it is used: an awaitable item or an error."""
        results: list[Any] = []
        pending: list[int] = []
        complete = self.inner.complete
        try:
            for index, item in enumerate(value):
                if _is_awaitable(item):
                    item_path = path.add_key(index, None)
                    results.append(run.complete_awaitable(self.inner, f, self.item_type, item_path, item))
                    pending.append(index)
                    continue
                try:
                    if isinstance(item, Exception):
                        raise item
                    results.append(complete(run, f, path, item))
                except Exception as raw_error:
                    run.field_error(raw_error, f, self.item_type, path.add_key(index, None))
                    results.append(None)
        except Exception:
            run.settle([results[index] for index in pending])
            raise
        if not pending:
            return results
        return run.gather_into(results, pending)


@dataclass(eq=False)
class ObjectOf(Completer):
    type: GraphQLObjectType
    fields: list[Field]

    def complete(self, run: Run, f: Field | None, path: Path | None, value: Any) -> Any:
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
class Field:
    key: str  # the response key: the alias, else the name
    name: str
    nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    definition: GraphQLField | None  # None for __typename
    return_type: GraphQLOutputType
    completer: Completer
    # How the value is read: `attribute` for strawberry's plain fields (its default resolver is getattr), else the
    # field's resolver with `arguments` (None: they reference variables and are coerced per request).
    attribute: str | None = None
    arguments: dict[str, Any] | None = field(default_factory=dict)
    # A plain attribute completed as a scalar or enum: never awaitable, so run inline (see `Run.execute_fields`);
    # `plain`: the Python type its scalar returns unchanged (`Leaf.identity`), checked first.
    leaf: bool = False
    plain: type | None = None
    # A getter registered for this field's resolver (`planning.FAST_GETTERS`): the same value without the
    # resolver's wrapping; it returns NotImplemented for a source it does not cover, which then goes to the resolver.
    getter: Callable[[Any], Any] | None = None
    # The strawberry resolver called directly, as its wrapper would call it (`planning.direct_call`).
    call: Callable[[Run, Field, Any, Path], Any] | None = None

    def read(self, run: Run, source: Any, path: Path) -> Any:
        if self.definition is None:
            return self.parent_type.name
        if self.attribute is not None:
            return getattr(source, self.attribute)
        if self.getter is not None:
            value = self.getter(source)
            if value is not NotImplemented:
                return value
        if self.call is not None:
            return self.call(run, self, source, path)
        arguments = self.arguments
        if arguments is None:
            arguments = get_argument_values(self.definition, self.nodes[0], run.variables)
        assert self.definition.resolve is not None
        return self.definition.resolve(source, run.info(self, path), **arguments)


@dataclass(frozen=True, eq=False)
class Operation:
    """What a resolver's `GraphQLResolveInfo` tells about the operation: its schema, definition and fragments."""

    schema: GraphQLSchema
    definition: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]


class Run:
    """One execution of a plan."""

    __slots__ = ("background", "context", "errors", "nulled", "operation", "root_value", "variables")

    def __init__(self, operation: Operation, context: Any, variables: VariableValues, root_value: Any) -> None:
        self.operation = operation
        self.context = context
        self.root_value = root_value
        self.variables = variables
        self.errors: list[GraphQLError] = []
        self.nulled: set[Path | None] = set()
        self.background: list[Awaitable[Any]] = []

    def info(self, f: Field, path: Path) -> GraphQLResolveInfo:
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

    def execute_fields(self, plan: ObjectOf, source: Any, path: Path | None) -> Any:
        results: dict[str, Any] = {}
        pending: list[str] = []
        type_name = plan.type.name
        try:
            for f in plan.fields:
                if f.leaf:  # the common case, inline; the path is only made for an error
                    try:
                        value = getattr(source, f.attribute)  # type: ignore[arg-type]
                        plain = f.plain
                        if type(value) is plain and (plain is not int or value in _INT_RANGE):
                            results[f.key] = value  # what the leaf's completer would return: itself
                            continue
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

    def execute_field(self, f: Field, source: Any, path: Path) -> Any:
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
        self, completer: Completer, f: Field, return_type: GraphQLOutputType, path: Path, value: Awaitable[Any]
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
        self, completed: Awaitable[Any], f: Field, return_type: GraphQLOutputType, path: Path
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.field_error(raw_error, f, return_type, path)
            return None

    def field_error(self, raw_error: Exception, f: Field, return_type: GraphQLOutputType, path: Path) -> None:
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


def coerce_variables(
    operation: Operation, raw_variables: Mapping[str, Any] | None
) -> VariableValues | list[GraphQLError]:
    """The request's variables as graphql-core coerces them, or its errors for them."""
    return get_variable_values(
        operation.schema, operation.definition.variable_definitions or (), dict(raw_variables or {})
    )


async def execute_plan(
    operation: Operation, plan: ObjectOf, context: Any, variables: VariableValues, root_value: Any
) -> GraphQLExecutionResult:
    """The plan over the root value: graphql-core's `execute_operation` and the result it builds."""
    run = Run(operation, context, variables, root_value)
    try:
        data = run.execute_fields(plan, root_value, None)
        if is_awaitable(data):
            data = await data
    except GraphQLError as error:  # a null bubbled up to the root: no data
        run.add_error(error, None)
        data = None
    for pending in run.background:  # settled before answering; their errors are under a nulled position
        with contextlib.suppress(Exception):  # already reported at the position it nulled
            await pending
    return GraphQLExecutionResult(data, run.errors or None)


# Whether values of a type are awaitable, learnt from its first value (graphql-core's `is_awaitable` asks the value
# each time); generators are asked each time (an old-style coroutine is a generator with a flag).
_AWAITABLE_TYPES: dict[type, bool] = dict.fromkeys([dict, list, str, int, float, bool, type(None)], False)


def _is_awaitable(value: Any) -> bool:
    kind = type(value)
    known = _AWAITABLE_TYPES.get(kind)
    if known is None:
        known = is_awaitable(value)
        if kind is not GeneratorType:
            _AWAITABLE_TYPES[kind] = known
    return known


async def _gather(values: Sequence[Awaitable[Any]]) -> list[Any]:
    return await gather_with_cancel(*values)


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=lambda values: None)
