"""The console's member page says whether the card is in a wallet."""

from __future__ import annotations

import re

import httpx

from loyalty.models import Member, StaffUser, WalletPlatform
from loyalty.wallet import ensure_pass, register_device
from tests.admin.test_console_views import _sign_in


async def _add_to_apple(member: Member) -> None:
    wallet_pass = await ensure_pass(member.id, WalletPlatform.APPLE, auth_token="t" * 32)
    await register_device(wallet_pass, "device-1", "ab" * 32)


async def test_the_console_shows_the_card_in_wallet(http: httpx.AsyncClient, cass: StaffUser, anna: Member) -> None:
    await _sign_in(http)
    page = await http.get(f"/admin/members/{anna.id}")
    assert re.search(r'id="member-wallet">Card not in a wallet<', page.text)

    await _add_to_apple(anna)
    page = await http.get(f"/admin/members/{anna.id}")
    assert re.search(r'id="member-wallet">Card in Apple Wallet<', page.text)
