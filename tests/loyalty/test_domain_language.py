"""The domain names inputs in its own language: every `field` a domain error names is snake_case, never GraphQL's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

LOYALTY = Path(__file__).parents[2] / "loyalty"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def _named_fields() -> dict[str, str]:
    """Every string given as `field=` to a call, or assigned to a class's `field`, in loyalty/ (by place)."""
    found: dict[str, str] = {}
    for path in sorted(LOYALTY.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg == "field"]
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "field" for t in node.targets
            ):
                values = [node.value]
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[f"{path.relative_to(LOYALTY)}:{value.lineno}"] = value.value
    return found


def test_domain_errors_name_their_fields_in_snake_case() -> None:
    named = _named_fields()

    assert len(named) > 40  # the scan sees the domain's refusals
    assert {place: name for place, name in named.items() if not SNAKE_CASE.fullmatch(name)} == {}
