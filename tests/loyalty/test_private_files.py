"""Development secrets made on first use by several processes at once (`klubb serve --workers N`)."""

from __future__ import annotations

import multiprocessing
import secrets
import stat
from pathlib import Path

from loyalty.private_files import write_once
from wallet.credentials import development_credentials, development_secret

PROCESSES = 6


def _write(path: str, start: multiprocessing.synchronize.Barrier) -> bytes:  # type: ignore[name-defined]
    start.wait()
    return write_once(Path(path), secrets.token_bytes(64))


def _chain(directory: str, start: multiprocessing.synchronize.Barrier) -> tuple[bytes, bytes]:  # type: ignore[name-defined]
    start.wait()
    credentials = development_credentials(Path(directory))
    return credentials.certificate.fingerprint(credentials.certificate.signature_hash_algorithm), development_secret(
        directory
    )


def _run_at_once(target: object, argument: str) -> list[object]:
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with context.Pool(PROCESSES) as pool:
            return pool.starmap(target, [(argument, start)] * PROCESSES)  # type: ignore[arg-type]


def test_processes_writing_a_missing_secret_at_once_all_get_the_first_one(tmp_path: Path) -> None:
    # given a secret file that does not exist yet
    path = tmp_path / "var" / "secret"

    # when six processes make it at the same moment
    results = _run_at_once(_write, str(path))

    # then they all hold the same 64 bytes, which are the file's, owner-only, and no temporary file is left
    assert len(set(results)) == 1
    assert results[0] == path.read_bytes()
    assert len(path.read_bytes()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]


def test_an_existing_secret_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    assert write_once(path, b"first") == b"first"
    assert write_once(path, b"second") == b"first"
    assert path.read_bytes() == b"first"


def test_processes_making_the_wallet_development_chain_at_once_share_one_chain_and_secret(tmp_path: Path) -> None:
    # when six processes find no development chain and make one at the same moment
    results = _run_at_once(_chain, str(tmp_path / "wallet-dev"))

    # then one chain (the same pass certificate) and one link secret serve all of them
    assert len({fingerprint for fingerprint, _ in results}) == 1
    assert len({secret for _, secret in results}) == 1
