"""The staff lookup's `cardInWallet`: whether the member has the card in Apple Wallet / Google Wallet."""

from __future__ import annotations

from loyalty.actors import Actor
from loyalty.members import enroll_member
from loyalty.models import Member, Program, WalletPlatform
from loyalty.wallet import ensure_pass, register_device, set_installed
from tests.schema.staff.conftest import run_staff

LOOKUP = "query ($q: String!) { memberLookup(query: $q) { memberNumber cardInWallet { apple google } } }"


async def _add_to_apple(member: Member) -> None:
    wallet_pass = await ensure_pass(member.id, WalletPlatform.APPLE, auth_token="t" * 32)
    await register_device(wallet_pass, "device-1", "ab" * 32)


async def test_the_lookup_shows_the_card_in_wallet(program: Program, cashier: Actor) -> None:
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    # given Anna, not yet in a wallet
    before = await run_staff(LOOKUP, cashier, {"q": anna.member_number})
    assert before.errors is None
    assert before.data == {
        "memberLookup": {"memberNumber": anna.member_number, "cardInWallet": {"apple": False, "google": False}}
    }

    # when she adds the card to Apple Wallet, then to Google Wallet
    await _add_to_apple(anna)
    apple = await run_staff(LOOKUP, cashier, {"q": anna.member_number})
    await set_installed(await ensure_pass(anna.id, WalletPlatform.GOOGLE), True)
    both = await run_staff(LOOKUP, cashier, {"q": anna.member_number})

    # then the lookup says so
    assert apple.data["memberLookup"]["cardInWallet"] == {"apple": True, "google": False}
    assert both.data["memberLookup"]["cardInWallet"] == {"apple": True, "google": True}
