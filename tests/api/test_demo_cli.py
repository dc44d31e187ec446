"""`klubb demo`: what it prints of the seeded demo program, each address answering.

A plain (not async) test: the command runs its own event loop with `asyncio.run`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from loyalty.models import Member
from loyalty.referrals import normalize_code
from loyalty.seeding import seed_from_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_prints_where_to_look_with_a_members_referral_link(
    cli_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo program seeded, and a server that is not started
    config = tomllib.loads((ROOT / "demo" / "program.toml").read_text())
    cli.run_with_db(lambda: seed_from_config(config))
    served: list[bool] = []
    monkeypatch.setattr(cli, "serve", lambda **_: served.append(True))

    # when `klubb demo` runs
    result = CliRunner().invoke(cli.app, ["demo", str(ROOT / "demo" / "program.toml")])

    # then it lists the addresses, the referral landing page with the first demo member's code among them, and serves
    assert result.exit_code == 0, result.output
    assert served == [True]
    base = "http://127.0.0.1:8000"
    for line in ("Member API (GraphiQL)   {base}/graphql", "Checkout console        {base}/admin"):
        assert line.format(base=base) in result.stdout
    found = re.search(r"Referral landing page   http://127\.0\.0\.1:8000/r/(\S+)\n", result.stdout)
    assert found is not None
    code = found.group(1)
    assert normalize_code(code) == code
    # and the code is the first demo member's, given once (a second run prints the same)
    holder = cli.run_with_db(lambda: Member.get(referral_code=code).values_list("email", flat=True))
    listed = result.stdout.split("what each shows:\n", 1)[1].splitlines()[0].split()
    assert holder in listed  # the first member of the printed list
    again = CliRunner().invoke(cli.app, ["demo", str(ROOT / "demo" / "program.toml")])
    assert f"/r/{code}\n" in again.stdout
