"""`klubb push campaign …` and `klubb push automations …`: a campaign drafted, dry-run, scheduled, written by the job
and counted, from the command line; automations listed and switched.

Plain (not async) tests: the commands run their own event loop with `asyncio.run`.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api import cli

PROGRAM = """
[program]
name = "CLI Club"
currency = "EUR"
earn_rate = 1

[push]
default_locale = "en"

[push.automations.birthday]
enabled = false
title = { en = "Happy birthday" }
body = { en = "Enjoy your day" }

[[tiers]]
name = "Member"
threshold = 0

[[tiers]]
name = "Gold"
threshold = 1000
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_campaign_from_the_command_line(cli_db: None, tmp_path: Path) -> None:
    # given a seeded program and three members, two consenting
    (tmp_path / "program.toml").write_text(PROGRAM)
    assert run("seed", str(tmp_path / "program.toml"))[0] == 0

    async def members() -> None:
        from loyalty.consent import set_consent
        from loyalty.models import ConsentChannel, ConsentPurpose, ConsentSource
        from tests.loyalty.ledger_helpers import new_member

        for n in range(3):
            member = await new_member(f"uid-{n}")
            if n < 2:
                await set_consent(
                    member.id, ConsentChannel.PUSH, ConsentPurpose.MARKETING, True, ConsentSource.APP, "system"
                )

    cli.run_with_db(members)

    # when a campaign is drafted, dry-run, scheduled now, written by the job, counted and listed
    created = run("push", "campaign", "create", "--name", "Gold rush", "--title", "en=Hi", "--body", "en=Hello")
    dry = run("push", "campaign", "dry-run", "1")
    scheduled = run("push", "campaign", "schedule", "1")
    job = run("jobs", "run", "send-push-campaigns")
    figures = run("push", "campaign", "figures", "1")
    listed = run("push", "campaign", "list")
    refused = run("push", "campaign", "create", "--name", "X", "--title", "sv=Hej", "--body", "sv=Hej")

    # then
    assert created == (0, "created push campaign 1 (draft)\n", "")
    assert dry == (0, "reach: 3\nconsenting: 2\nwith device: 0\n", "")
    assert scheduled[0] == 0
    assert scheduled[1].startswith("scheduled push campaign 1 at ")
    assert job[:2] == (0, "send-push-campaigns: 2 campaign messages written\n")
    assert figures == (0, "targeted: 2\nsent: 0\ndelivered: 0\nopened: 0\nconverted: 0\n", "")
    assert listed[1].split("\t")[:2] == ["1", "sent"]
    assert listed[1].endswith("\t2\tGold rush\n")
    assert refused == (2, "", "error [INVALID]: title needs a text in the default locale en\n")


def test_automations_are_listed_and_switched(cli_db: None, tmp_path: Path) -> None:
    # given the birthday automation configured off, and no welcome texts
    (tmp_path / "program.toml").write_text(PROGRAM)
    assert run("seed", str(tmp_path / "program.toml"))[0] == 0

    # when
    enabled = run("push", "automations", "enable", "birthday")
    listed = run("push", "automations", "list")
    disabled = run("push", "automations", "disable", "birthday")
    no_texts = run("push", "automations", "enable", "welcome")
    unknown = run("push", "automations", "enable", "anniversary")

    # then
    assert enabled == (0, "birthday: on\n", "")
    assert "birthday\ton\t\n" in listed[1]
    assert "welcome\toff\t\n" in listed[1]
    assert disabled == (0, "birthday: off\n", "")
    assert no_texts[0] == 2
    assert no_texts[2].startswith("error [INVALID]: the welcome automation has no texts")
    assert unknown[0] == 2
    assert unknown[2].startswith("error [INVALID]: no automation 'anniversary'")
