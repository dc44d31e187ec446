"""CPU accounting from /proc: a server's whole process tree, and the PostgreSQL backends serving one database."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a live process, or None."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(parts[1]), (int(parts[11]) + int(parts[12])) / _TICKS


def _all() -> dict[int, tuple[int, float]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds used so far by `root` and each of its descendants, by pid (uvicorn's worker processes)."""
    procs = _all()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out[pid] = procs[pid][1]
            todo += children.get(pid, [])
    return out


def descendants(root: int) -> list[int]:
    """The pids under `root` (not `root` itself)."""
    return sorted(pid for pid in tree_cpu(root) if pid != root)


def backend_database(title: str) -> str | None:
    """The database of a PostgreSQL backend from its process title (`postgres: [<cluster>:] <user> <database>
    <client> <state>`), or None for any other process (the postmaster, its helpers, anything else)."""
    words = title.split()
    if words[:1] != ["postgres:"]:
        return None
    words = words[1:]
    if words and words[0].endswith(":"):  # the cluster's name (`cluster_name`, e.g. "15/main:")
        words = words[1:]
    if len(words) < 3 or (not words[2].endswith(")") and words[2] != "[local]"):
        return None  # helpers: "checkpointer", "background writer", "autovacuum launcher", ...
    return words[1]


def postgres_backends(database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to `database` on this machine (found by their
    process titles); empty where /proc does not show them."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if backend_database(title) == database and (stat := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = stat[1]
    return out


def used_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots (a process new in `after` counts from its start; one that ended in
    between is lost: the servers keep their processes and pooled connections for a whole run)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
