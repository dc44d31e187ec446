"""Packages import one way and no modules import each other in a cycle (read with `ast`, nothing imported or run).

Every import counts, wherever it is written: at module level, inside functions, under `if TYPE_CHECKING:`; relative
imports are resolved. The checker is a few functions over `{path: source}` so the last tests can prove on small
synthetic trees that it fails when it should.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The allowed arrows between first-party packages; `api` is the composition root. A package missing here (one added
# later) may import only `loyalty` until someone adds it to this table on purpose.
ALLOWED: Mapping[str, frozenset[str]] = {
    "api": frozenset({"schema", "loyalty", "admin", "worker", "wallet", "push"}),
    "schema": frozenset({"loyalty"}),
    "admin": frozenset({"loyalty"}),
    "worker": frozenset({"loyalty"}),
    "wallet": frozenset({"loyalty"}),
    "push": frozenset({"loyalty"}),
    "loyalty": frozenset(),
}
UNLISTED_MAY_IMPORT = frozenset({"loyalty"})
# They drive the product from outside (pytest, `make bench`): they may import any of it, and nothing may import them.
DRIVERS = frozenset({"tests", "bench"})

DOMAIN = "loyalty"
WEB_LIBRARIES = frozenset(
    {"strawberry", "starlette", "graphql", "httpx", "uvicorn", "jinja2", "cross_web", "firebase_admin", "jwt"}
)


@dataclass(frozen=True)
class Import:
    """One imported name, resolved: `target` is a first-party module, or the dotted name of a library's."""

    importer: str
    target: str
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(path: str) -> str:
    """`schema/types/__init__.py` → `schema.types`; `loyalty/ledger.py` → `loyalty.ledger`."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Every statement, however nested (imports are statements: skipping expressions saves a third of the time)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        for _, value in ast.iter_fields(node):
            if isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.stmt | ast.excepthandler | ast.match_case))


def _imported_names(node: ast.Import | ast.ImportFrom, package: str) -> Iterator[tuple[str, str | None]]:
    """(module, name imported from it or None) for each alias; relative modules made absolute from `package`."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
        return
    module = node.module or ""
    if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        module = ".".join([*base, module] if module else base)
    for alias in node.names:
        yield module, alias.name


def parse_imports(files: Mapping[str, str]) -> list[Import]:
    """Every import in `files` (`{"pkg/mod.py": source}`), resolved against the modules those files define.

    `from p import n` points at the module `p.n` when there is one (a submodule), else at `p`; a first-party name
    that is no module points at its closest enclosing module. Parent packages a module imports implicitly do not
    count, or every package whose `__init__` re-exports a submodule would be a cycle.
    """
    modules = {module_name(path): path for path in files}
    first_party = {name.split(".")[0] for name in modules}
    found: list[Import] = []
    for path, source in files.items():
        importer = module_name(path)
        package = importer if path.endswith("__init__.py") else importer.rpartition(".")[0]
        for node in _statements(ast.parse(source, filename=path)):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for module, name in _imported_names(node, package):
                target = f"{module}.{name}" if name is not None and f"{module}.{name}" in modules else module
                if target.split(".")[0] in first_party:
                    while target not in modules and "." in target:
                        target = target.rpartition(".")[0]
                if target != importer:
                    found.append(Import(importer, target, path, node.lineno))
    return sorted(found, key=lambda imp: (imp.path, imp.line, imp.target))


def wrong_way_imports(imports: list[Import], packages: set[str]) -> list[str]:
    """Imports from one first-party package into another that the table does not allow."""
    problems = []
    for imp in imports:
        source, target = imp.importer.split(".")[0], imp.target.split(".")[0]
        if target not in packages or target == source or source in DRIVERS:
            continue
        allowed = ALLOWED.get(source, UNLISTED_MAY_IMPORT)
        if target not in allowed:
            problems.append(
                f"{imp.where}: {imp.importer} imports {imp.target}"
                f" ({source} may import: {', '.join(sorted(allowed)) or 'no first-party package'})"
            )
    return problems


def library_imports(imports: list[Import], package: str, libraries: frozenset[str]) -> list[str]:
    """Imports of `libraries` (by top-level name) anywhere in `package`."""
    return [
        f"{imp.where}: {imp.importer} imports {imp.target}"
        for imp in imports
        if imp.importer.split(".")[0] == package and imp.target.split(".")[0] in libraries
    ]


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """One shortest cycle through each group of modules that import each other (Tarjan's strongly connected
    components, then a breadth-first walk inside each), as `[a, b, …, a]`."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set())
        graph.setdefault(imp.target, set())
        graph[imp.importer].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_shortest_cycle(graph, component) for component in components)


def _shortest_cycle(graph: Mapping[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor == start:
                    cycle = [start]
                    while node != start:
                        cycle.append(node)
                        node = came_from[node]
                    return [start, *reversed(cycle[1:]), start]
                if successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def discover_packages(root: Path) -> set[str]:
    """Top-level directories that are packages (`__init__.py`) or that pyproject's package patterns install (which
    finds namespace packages such as `schema`): a package added later is checked without anyone listing it."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return {
        directory.name
        for directory in root.iterdir()
        if directory.is_dir()
        and not directory.name.startswith(".")
        and (
            (directory / "__init__.py").is_file()
            or (any(fnmatch(directory.name, pattern) for pattern in patterns) and any(directory.rglob("*.py")))
        )
    }


def read_sources(root: Path, packages: set[str]) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): path.read_text()
        for package in sorted(packages)
        for path in sorted((root / package).rglob("*.py"))
    }


@cache
def repository() -> tuple[set[str], list[Import]]:
    """The repository's packages and imports, read once for all the tests below."""
    packages = discover_packages(ROOT)
    return packages, parse_imports(read_sources(ROOT, packages))


# --- the repository ----------------------------------------------------------------------------------------------


def test_discovery_finds_every_package_including_namespace_ones() -> None:
    # Given the repository, when its packages and imports are read
    packages, imports = repository()

    # Then the product's packages are all there, and each one's imports were read (the checks below are not vacuous)
    assert {"admin", "api", "bench", "loyalty", "schema", "tests", "worker"} <= packages
    assert {imp.importer.split(".")[0] for imp in imports} >= {"admin", "api", "bench", "loyalty", "schema", "worker"}


def test_packages_import_one_way() -> None:
    packages, imports = repository()

    assert wrong_way_imports(imports, packages) == []


def test_domain_imports_no_web_or_graphql_library() -> None:
    _, imports = repository()

    assert library_imports(imports, DOMAIN, WEB_LIBRARIES) == []


def test_no_module_imports_itself_through_others() -> None:
    _, imports = repository()

    assert import_cycles(imports) == []


# --- the checker on synthetic trees ------------------------------------------------------------------------------


def _check(files: Mapping[str, str]) -> tuple[list[str], list[list[str]]]:
    imports = parse_imports(files)
    return wrong_way_imports(imports, {path.split("/")[0] for path in files}), import_cycles(imports)


def test_checker_flags_a_domain_module_importing_the_schema_inside_a_function() -> None:
    # Given a domain module that imports the schema lazily, and the schema importing the domain (allowed)
    files = {
        "loyalty/__init__.py": "",
        "loyalty/ledger.py": "def post() -> None:\n    from schema.types import member\n",
        "schema/types/__init__.py": "",
        "schema/types/member.py": "from loyalty import ledger\n",
    }

    # When checked, then the one wrong-way import is reported with its place, and it closes a cycle
    assert _check(files) == (
        [
            "loyalty/ledger.py:2: loyalty.ledger imports schema.types.member"
            " (loyalty may import: no first-party package)"
        ],
        [["loyalty.ledger", "schema.types.member", "loyalty.ledger"]],
    )


def test_checker_finds_a_cycle_behind_type_checking_and_relative_imports() -> None:
    # Given three schema modules in a ring, one edge only for the type checker and one relative
    files = {
        "schema/__init__.py": "",
        "schema/context.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from schema.session import S\n",
        "schema/session.py": "from .errors import E\n",
        "schema/errors.py": "from . import context\n",
        "schema/ok.py": "from schema import errors\n",
    }

    # When checked, then the ring is reported as one cycle, and nothing else
    assert _check(files) == ([], [["schema.context", "schema.session", "schema.errors", "schema.context"]])


def test_checker_lets_an_unlisted_package_import_only_the_domain() -> None:
    # Given a package nobody added to the table yet, importing the domain, the schema and (relatively) the API
    files = {
        "loyalty/__init__.py": "",
        "schema/__init__.py": "X = 1\n",
        "api/__init__.py": "",
        "api/cli.py": "",
        "referrals/__init__.py": "",
        "referrals/links.py": "import loyalty\nfrom schema import X\n",
        "referrals/sub/deep.py": "from ...api.cli import main\n",
    }

    # When checked, then the domain import passes and the others are reported
    assert _check(files) == (
        [
            "referrals/links.py:2: referrals.links imports schema (referrals may import: loyalty)",
            "referrals/sub/deep.py:1: referrals.sub.deep imports api.cli (referrals may import: loyalty)",
        ],
        [],
    )


def test_checker_lets_drivers_import_anything_and_nothing_import_them() -> None:
    # Given tests importing the API, and the API importing a test helper
    files = {
        "api/__init__.py": "",
        "api/app.py": "from tests.helpers import fake\n",
        "tests/__init__.py": "",
        "tests/helpers.py": "import api.app\n",
    }

    # When checked, then only the API's import is wrong (and the pair is a cycle)
    assert _check(files) == (
        ["api/app.py:1: api.app imports tests.helpers (api may import: admin, loyalty, push, schema, wallet, worker)"],
        [["api.app", "tests.helpers", "api.app"]],
    )


def test_checker_flags_web_libraries_in_the_domain_only() -> None:
    # Given a domain module importing strawberry and jwt (one of them lazily), and the schema importing strawberry
    files = {
        "loyalty/errors.py": "import strawberry.types\ndef f() -> None:\n    from jwt import decode\nimport orjson\n",
        "schema/types.py": "import strawberry\n",
    }

    # When checked, then the domain's two are reported
    assert library_imports(parse_imports(files), DOMAIN, WEB_LIBRARIES) == [
        "loyalty/errors.py:1: loyalty.errors imports strawberry.types",
        "loyalty/errors.py:3: loyalty.errors imports jwt",
    ]
