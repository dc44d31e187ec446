"""Secret files made on first use in development (signing keys, the wallet secret), safe with several processes.

`klubb serve --workers N` starts N processes that may all find the file missing at once: each writes a private
temporary file and hard-links it into place. The link is atomic and fails if another process won meanwhile, so nobody
reads a half-written file and every process ends up with the same content (the winner's).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_once(path: Path, data: bytes) -> bytes:
    """Create `path` readable only by its owner, holding `data`, unless it exists; return what it holds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


@contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Hold `directory`'s lock file: for a set of files that must be made together (a certificate chain)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
