"""Apple Wallet as the rest of klubb uses it: a member's pass, built and signed, with the token that opens it.

Each pass's web-service token is derived from the wallet secret and its serial (HMAC-SHA256, 32 characters), so a
pass can be rebuilt at any time with the token its devices hold while the database stores only the token's hash
(`loyalty.wallet`). Rotating the secret changes every token: installed passes then get 401s until they are
downloaded again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from loyalty import clock, wallet
from loyalty.ledger import settle_member_if_due
from loyalty.members import get_member
from loyalty.models import WalletPass, WalletPlatform
from loyalty.program import load_program
from wallet.config import AppleWalletConfig
from wallet.credentials import AppleCredentials
from wallet.pkpass import PassDesign, PassIdentity, build_pass, images

TOKEN_LENGTH = 32


@dataclass(frozen=True)
class BuiltPass:
    data: bytes
    serial_number: str
    last_modified: datetime


class AppleWallet:
    def __init__(self, config: AppleWalletConfig, credentials: AppleCredentials, branding: Path | None = None) -> None:
        if len(config.secret) < 32:
            raise ValueError("the wallet secret must have at least 32 bytes")
        self.config = config
        self.credentials = credentials
        self._images = images(branding)
        self._token_key = hmac.new(config.secret, b"klubb apple pass token", hashlib.sha256).digest()

    @property
    def pass_type_id(self) -> str:
        return self.credentials.pass_type_id

    def pass_token(self, serial_number: str) -> str:
        """The web-service token of the pass `serial_number` (`ApplePass <token>`)."""
        digest = hmac.new(self._token_key, serial_number.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:TOKEN_LENGTH]

    async def member_pass(self, member_id: int) -> WalletPass:
        """The member's Apple pass (made on first use). Raises `MemberNotFound`."""
        await get_member(member_id)
        return await wallet.ensure_pass(member_id, WalletPlatform.APPLE, auth_token=self.pass_token)

    async def build(self, wallet_pass: WalletPass, at: datetime | None = None) -> BuiltPass:
        """The pass as of `at` (now), signed."""
        at = at or clock.now()
        member = await settle_member_if_due(await get_member(wallet_pass.member_id), at)
        program = await load_program()
        content = await wallet.pass_content(member, program, at)
        design = PassDesign.of(await wallet.wallet_design(), program)
        identity = PassIdentity(
            serial_number=wallet_pass.serial_number,
            authentication_token=self.pass_token(wallet_pass.serial_number),
            web_service_url=self.config.web_service_url,
        )
        data = build_pass(
            content, design, identity, self.credentials, image_files=self._images, modified=wallet_pass.last_updated
        )
        return BuiltPass(data=data, serial_number=wallet_pass.serial_number, last_modified=wallet_pass.last_updated)
