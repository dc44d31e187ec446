"""`klubb staff create` and `klubb apikey create`: the password never on the command line, the key printed once.

Plain (not async) tests: the commands run their own event loop with `asyncio.run`.
"""

from __future__ import annotations

from typer.testing import CliRunner

from api import cli
from loyalty import staff
from loyalty.actors import Actor
from loyalty.models import StaffRole, StaffUser

PASSWORD = "correct horse battery"


def test_staff_create_prompts_for_the_password_twice(cli_db: None) -> None:
    result = CliRunner().invoke(
        cli.app,
        ["staff", "create", "Max@Example.com", "--role", "manager", "--store", "S1", "--store", "S2", "--name", "Max"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == "Password: \nRepeat for confirmation: \ncreated staff 1: max@example.com (manager, S1,S2)\n"
    assert (result.stdout + result.stderr).count(PASSWORD) == 0

    async def sign_in() -> Actor:
        return await staff.authenticate_staff("max@example.com", PASSWORD)

    signed_in = cli.run_with_db(sign_in)
    assert signed_in == Actor(
        kind="staff",
        id=1,
        role=StaffRole.MANAGER,
        store_codes=("S1", "S2"),
        name="Max",
        session_id=signed_in.session_id,
    )


def test_staff_create_with_password_stdin(cli_db: None) -> None:
    result = CliRunner().invoke(
        cli.app, ["staff", "create", "cass@example.com", "--role", "cashier", "--password-stdin"], input=PASSWORD + "\n"
    )

    assert (result.exit_code, result.stdout) == (0, "created staff 1: cass@example.com (cashier, every store)\n")


def test_staff_create_refuses_a_weak_password_and_writes_nothing(cli_db: None) -> None:
    result = CliRunner().invoke(
        cli.app, ["staff", "create", "cass@example.com", "--role", "cashier", "--password-stdin"], input="short\n"
    )

    assert result.exit_code == 2
    assert result.stderr == "error [WEAK_PASSWORD]: a password needs at least 12 characters\n"

    async def count() -> int:
        return await StaffUser.all().count()

    assert cli.run_with_db(count) == 0


def test_staff_create_has_no_password_option(cli_db: None) -> None:
    result = CliRunner().invoke(
        cli.app, ["staff", "create", "cass@example.com", "--role", "cashier", "--password", PASSWORD]
    )

    assert result.exit_code == 2
    assert "No such option: --password" in result.stderr


def test_apikey_create_prints_the_key_once_on_stdout(cli_db: None) -> None:
    result = CliRunner().invoke(cli.app, ["apikey", "create", "POS store 1", "--role", "cashier", "--store", "S1"])

    assert result.exit_code == 0, result.output
    raw = result.stdout.removesuffix("\n")
    assert raw.startswith("kbk_")
    assert "\n" not in raw
    assert result.stderr == "created API key 1 (cashier, S1); it is shown only now:\n"

    async def use() -> Actor:
        return await staff.authenticate_api_key(raw)

    assert cli.run_with_db(use) == Actor(
        kind="api_key", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="POS store 1"
    )


def test_apikey_create_refuses_an_unknown_role(cli_db: None) -> None:
    result = CliRunner().invoke(cli.app, ["apikey", "create", "POS", "--role", "owner"])

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error [INVALID]: role must be one of cashier, manager, admin\n"
