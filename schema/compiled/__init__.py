"""Compiled execution of trusted documents: known queries without graphql-core's executor.

At start-up each query of a directory of documents (the member app's `mobile-client-mock/operations/`, the till's
`schema/staff/operations/`) is parsed and validated exactly as strawberry would for a request (its own parse and
validation hooks: the schema's limits and rules) and turned into a plan: the selection, with its fragments inlined
and its fields collected per object type, each field bound to its `GraphQLField`, its resolver and a completer for
its return type. A request whose query text is one of them runs the plan: the same strawberry resolvers (so the same
DataLoaders, `loyalty` reads, authentication and authorization), called directly with a `GraphQLResolveInfo`; plain
attributes are read with `getattr`, as strawberry's default resolver does. What is skipped is the generic machinery
around them (field collection and lookups per request, per-field info objects for plain fields, extension hooks),
which is most of a request's CPU.

The semantics are graphql-core's, step by step: variables are coerced by its `get_variable_values` (same errors),
arguments by `get_argument_values`, leaves by `coerce_output_value`; a field error nulls the nearest nullable parent
and is reported once with its path. The plan runs inside the schema's own extension hooks as strawberry runs
graphql-core (operation and execution hooks per request, so masking, error codes and logging see the same result;
parsing and validation hooks once, at compile time). Anything the plan does not cover (mutations and subscriptions,
abstract return types, introspection, `@defer`/`@stream`, an extension with a `resolve` hook) is not compiled and
runs through strawberry: never a different answer. `tests/schema/test_compiled_differential.py` runs every document
through both paths and compares the JSON.

The modules: `planning` (document → plan), `execution` (completers and the run: errors, null propagation,
awaitables), `documents` (the entry point, `CompiledDocuments`), `seam` (the only use of strawberry's private API).
"""

from schema.compiled.documents import CompiledDocuments, CompiledOperation, compile_operation
from schema.compiled.planning import Unsupported

__all__ = ["CompiledDocuments", "CompiledOperation", "Unsupported", "compile_operation"]
