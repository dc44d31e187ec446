"""`klubb jobs list` and `klubb jobs run`: the registry's jobs, run once, in order, each failure reported.

Plain (not async) tests: the commands run their own event loop with `asyncio.run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from api import cli
from api.settings import Settings
from loyalty import clock as business_clock
from loyalty.clock import FrozenClock
from loyalty.models import Member
from tests.loyalty.ledger_helpers import balances, configure, give_available, new_member

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIST = (
    "expire-points\tevery 60 s\tmature pending points and expire due points\n"
    "evaluate-tiers\tevery 3600 s\tdowngrade members whose tier hold ended and who no longer qualify, one tier at "
    "a time\n"
    "birthday-rewards\tevery 3600 s\tcredit birthday_points to members in their birthday month, once a year\n"
    "expire-vouchers\tevery 600 s\tmark vouchers past their expiry EXPIRED\n"
    "refresh-wallet-passes\tevery 3600 s\trefresh the wallet passes of members whose points entered the "
    "expiring-soon window\n"
    "prune-stale-devices\tevery 21600 s\tdelete push devices unused for 270 days\n"
    "lapse-memberships\tevery 300 s\tmove paid memberships past their period to grace, and past their grace or "
    "cancelled period to lapsed\n"
    "send-push-campaigns\tevery 60 s\twrite the messages of due push campaigns (resuming any whose worker "
    "stopped), in keyset batches\n"
    "push-automations\tevery 300 s\twrite the enabled lifecycle automations' messages: welcome, points expiring, "
    "close to the next tier, win-back, birthday, voucher expiring (once per member and occasion)\n"
    "reward-referrals\tevery 600 s\tmark converted referrals whose qualifying purchase's return window ended "
    "REWARDED\n"
)


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    frozen = FrozenClock(START)
    previous = business_clock.use_clock(frozen)
    yield frozen
    business_clock.use_clock(previous)


def _with_intervals(monkeypatch: pytest.MonkeyPatch, intervals: dict[str, float]) -> None:
    url = cli.get_settings().database_url
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=url, job_intervals=intervals))


def _member_with_expiring_points(clock: FrozenClock) -> int:
    """The test program and a member whose 100 points expire a year from START; returns the member id."""

    async def given() -> int:
        await configure()
        member = await new_member("uid-cli")
        await give_available(member.id, 100)
        return member.id

    return cli.run_with_db(given)


def _balances(member_id: int) -> tuple[int, int, int]:
    return cli.run_with_db(lambda: balances(member_id))


def test_jobs_list_shows_every_job_with_its_interval(cli_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    default = CliRunner().invoke(cli.app, ["jobs", "list"])
    _with_intervals(monkeypatch, {"expire-points": 15, "birthday-rewards": 0})
    configured = CliRunner().invoke(cli.app, ["jobs", "list"])

    assert (default.exit_code, default.stdout) == (0, LIST)
    assert (configured.exit_code, configured.stdout) == (
        0,
        LIST.replace("expire-points\tevery 60 s", "expire-points\tevery 15 s").replace(
            "birthday-rewards\tevery 3600 s", "birthday-rewards\toff"
        ),
    )


def test_a_wrong_interval_setting_is_refused(cli_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_intervals(monkeypatch, {"expire-point": 60})

    result = CliRunner().invoke(cli.app, ["jobs", "list"])

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: KLUBB_JOB_INTERVALS: no job named expire-point; the jobs are expire-points, evaluate-tiers, "
        "birthday-rewards, expire-vouchers, refresh-wallet-passes, prune-stale-devices, lapse-memberships, "
        "send-push-campaigns, push-automations, reward-referrals\n"
    )


def test_jobs_run_runs_every_job_once_in_order(cli_db: None, clock: FrozenClock) -> None:
    # given a member whose points have expired
    member_id = _member_with_expiring_points(clock)
    clock.advance(timedelta(days=365))

    # when every job runs, twice
    first = CliRunner().invoke(cli.app, ["jobs", "run"])
    second = CliRunner().invoke(cli.app, ["jobs", "run"])

    # then
    assert (first.exit_code, first.stdout, first.stderr) == (
        0,
        "expire-points: 1 members settled\n"
        "evaluate-tiers: 0 members evaluated\n"
        "birthday-rewards: 0 members credited\n"
        "expire-vouchers: 0 vouchers expired\n"
        "refresh-wallet-passes: 0 passes refreshed\n"
        "prune-stale-devices: 0 devices deleted\n"
        "lapse-memberships: 0 memberships moved\n"
        "send-push-campaigns: 0 campaign messages written\n"
        "push-automations: 0 automation messages written\n"
        "reward-referrals: 0 referrals rewarded\n",
        "",
    )
    assert (second.exit_code, second.stdout) == (0, first.stdout.replace("1 members", "0 members"))
    assert _balances(member_id) == (0, 0, 100)


def test_jobs_run_runs_the_named_jobs_in_the_order_given(cli_db: None, clock: FrozenClock) -> None:
    _member_with_expiring_points(clock)
    clock.advance(timedelta(days=365))

    result = CliRunner().invoke(cli.app, ["jobs", "run", "expire-vouchers", "expire-points"])

    assert (result.exit_code, result.stdout) == (
        0,
        "expire-vouchers: 0 vouchers expired\nexpire-points: 1 members settled\n",
    )


def test_jobs_run_refuses_an_unknown_name_and_runs_nothing(cli_db: None, clock: FrozenClock) -> None:
    # given a member whose points have expired
    member_id = _member_with_expiring_points(clock)
    clock.advance(timedelta(days=365))

    # when one of the names is wrong
    result = CliRunner().invoke(cli.app, ["jobs", "run", "expire-points", "expire-all"])

    # then no job ran
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error [UNKNOWN_JOB]: no job named expire-all; the jobs are expire-points, evaluate-tiers, birthday-rewards, "
        "expire-vouchers, refresh-wallet-passes, prune-stale-devices, lapse-memberships, send-push-campaigns, "
        "push-automations, reward-referrals\n"
    )
    assert _balances(member_id) == (100, 0, 100)


def test_a_failing_job_fails_the_command_after_the_others_ran(cli_db: None, clock: FrozenClock) -> None:
    # given no program (the tier and birthday jobs need one) and a member due to be settled
    async def given() -> None:
        await Member.create(
            firebase_uid="uid-cli",
            member_number="100000001",
            card_secret="secret",
            next_settle_at=START,
            created_at=START,
            updated_at=START,
        )

    cli.run_with_db(given)

    # when every job runs
    result = CliRunner().invoke(cli.app, ["jobs", "run"])

    # then the jobs that could run did, and the command says which failed
    assert (result.exit_code, result.stdout) == (
        1,
        "expire-points: 1 members settled\nexpire-vouchers: 0 vouchers expired\n"
        "prune-stale-devices: 0 devices deleted\n"
        "lapse-memberships: 0 memberships moved\n"
        "send-push-campaigns: 0 campaign messages written\npush-automations: 0 automation messages written\n"
        "reward-referrals: 0 referrals rewarded\n",
    )
    assert result.stderr == (
        "evaluate-tiers failed: ProgramNotConfigured: the program is not configured: run `klubb seed`\n"
        "birthday-rewards failed: ProgramNotConfigured: the program is not configured: run `klubb seed`\n"
        "refresh-wallet-passes failed: ProgramNotConfigured: the program is not configured: run `klubb seed`\n"
    )
