"""Planning: a validated query document and the values of its `@skip`/`@include` variables → a plan.

The spec's CollectFields (graphql-core's `collect_fields`) done once instead of per request: fragments inlined,
directives applied, fields grouped by response key per object type; each field bound to its `GraphQLField`, its
arguments coerced when they are literals, and a completer built for its return type. A strawberry field with the
default resolver is read with `getattr` (what that resolver does); a resolver registered in `FAST_GETTERS` is read
by its getter. What a plan cannot express raises `Unsupported`: the document then runs through strawberry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSkipDirective,
    GraphQLString,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values
from graphql.language import Visitor, visit
from graphql.pyutils import Path
from strawberry import relay
from strawberry.extensions import SchemaExtension
from strawberry.types.field import StrawberryField

from schema.compiled import seam
from schema.compiled.execution import Completer, Field, Leaf, ListOf, NonNull, ObjectOf, Operation, Run


class Unsupported(Exception):
    """The document uses something the plan does not cover; it runs through strawberry."""


def plan_operation(strawberry_schema: strawberry.Schema, operation: Operation, variables: VariableValues) -> ObjectOf:
    """The plan of the operation's root selection, for these values of its condition variables."""
    root = operation.schema.query_type
    assert root is not None
    planner = _Planner(strawberry_schema, operation, variables)
    return ObjectOf(root, planner.fields(root, [operation.definition.selection_set]))


def refuse_middleware(extensions: Iterable[SchemaExtension]) -> None:
    """A `resolve` hook wraps every field's resolver (middleware), which a plan does not run: nothing compiles."""
    middleware = [type(e).__name__ for e in extensions if type(e).resolve is not SchemaExtension.resolve]
    if middleware:
        raise Unsupported(f"schema extensions with a resolve hook: {middleware}")


def condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables `@skip`/`@include` read: a plan depends on their values."""
    names: list[str] = []

    class Finder(Visitor):
        def enter_directive(self, node: Any, *_: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode) and argument.value.name.value not in names:
                        names.append(argument.value.name.value)

    visit(document, Finder())
    return tuple(names)


class _Planner:
    def __init__(self, strawberry_schema: strawberry.Schema, operation: Operation, variables: VariableValues) -> None:
        self.strawberry_schema = strawberry_schema
        self.operation = operation
        self.variables = variables

    def fields(self, parent: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode]) -> list[Field]:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._collect(parent, selection_set, grouped, visited)
        return [self._field(parent, key, nodes) for key, nodes in grouped.items()]

    def _collect(
        self,
        runtime_type: GraphQLObjectType,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        """The spec's CollectFields (graphql-core's `collect_fields`) for one object type."""
        for selection in selection_set.selections:
            if any(d.name.value in ("defer", "stream") for d in selection.directives or ()):
                raise Unsupported("@defer/@stream")
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else None
                if self._matches(condition, runtime_type):
                    self._collect(runtime_type, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.operation.fragments.get(name)
                if fragment is not None and self._matches(fragment.type_condition.name.value, runtime_type):
                    self._collect(runtime_type, fragment.selection_set, grouped, visited)

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip["if"] is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include["if"] is False)

    def _matches(self, condition: str | None, runtime_type: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        schema = self.operation.schema
        condition_type = schema.get_type(condition)
        if condition_type is runtime_type:
            return True
        return bool(is_abstract_type(condition_type) and schema.is_sub_type(condition_type, runtime_type))

    def _field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> Field:
        name = nodes[0].name.value
        if name == "__typename":
            return Field(key, name, nodes, parent, None, GraphQLNonNull(GraphQLString), NonNull(Leaf(GraphQLString)))
        if name.startswith("__"):
            raise Unsupported(f"introspection field {name}")
        definition = parent.fields[name]
        completer = self._completer(definition.type, nodes)
        compiled = Field(key, name, nodes, parent, definition, definition.type, completer)
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        if getattr(definition.resolve, "_is_default", False) and strawberry_field is not None:
            # strawberry's resolver for a plain field: `getattr(source, python_name)`, no info, no arguments
            compiled.attribute = strawberry_field.python_name
            leaf = completer.inner if isinstance(completer, NonNull) else completer
            compiled.leaf = isinstance(leaf, Leaf)
            compiled.plain = leaf.identity if isinstance(leaf, Leaf) else None
            return compiled
        if strawberry_field is not None and strawberry_field.base_resolver is not None:
            wrapped = getattr(strawberry_field.base_resolver.wrapped_func, "__func__", None)
            make_getter = FAST_GETTERS.get(wrapped)
            if make_getter is not None and not strawberry_field.extensions and not strawberry_field.permission_classes:
                compiled.getter = make_getter(self.strawberry_schema, parent)
        if definition.resolve is None:
            raise Unsupported(f"{parent.name}.{name} has no resolver")
        elif not _uses_variables(nodes[0]):
            compiled.arguments = get_argument_values(definition, nodes[0], self.variables)
        else:
            compiled.arguments = None
        if strawberry_field is not None:
            compiled.call = direct_call(self.strawberry_schema, compiled, strawberry_field)
        return compiled

    def _completer(self, type_: Any, nodes: list[FieldNode]) -> Completer:
        if isinstance(type_, GraphQLNonNull):
            return NonNull(self._completer(type_.of_type, nodes))
        if isinstance(type_, GraphQLList):
            return ListOf(self._completer(type_.of_type, nodes), type_.of_type)
        if is_leaf_type(type_):
            return Leaf(type_)
        if isinstance(type_, GraphQLObjectType):
            selections = [node.selection_set for node in nodes if node.selection_set]
            return ObjectOf(type_, self.fields(type_, selections))
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


# --- Resolvers called directly ---


def direct_call(
    schema: strawberry.Schema, f: Field, field: StrawberryField
) -> Callable[[Run, Field, Any, Path], Any] | None:
    """The field's strawberry resolver called as strawberry's wrapper calls it, without the wrapper's per-call work
    (building an `Info` it does not need, walking an empty extension chain), or None where the wrapper does more:
    field extensions (permissions among them), the schema's exception handlers, arguments of input types."""
    resolver = field.base_resolver
    definition = f.definition
    if resolver is None or definition is None or field.extensions or schema.exception_handlers:
        return None
    if not all(is_leaf_type(get_named_type(argument.type)) for argument in definition.args.values()):
        return None
    convert = seam.argument_converter(schema, field)
    fixed = convert(f.arguments) if f.arguments is not None else None
    node = f.nodes[0]
    wants_self = resolver.self_parameter is not None
    source_names = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None]
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    function = resolver.wrapped_func
    if not callable(function):
        return None

    def call(run: Run, f: Field, source: Any, path: Path) -> Any:
        if fixed is None:
            kwargs = convert(get_argument_values(definition, node, run.variables))
        else:
            kwargs = dict(fixed) if source_names or info_name else fixed
        for name in source_names:
            kwargs[name] = source
        if info_name is not None:
            kwargs[info_name] = seam.info(schema, run.info(f, path), field)
        return function(source, **kwargs) if wants_self else function(**kwargs)

    return call


# --- Fast getters ---


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
