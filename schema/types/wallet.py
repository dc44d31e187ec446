"""The member card in a wallet: the app's "Add to Apple Wallet" link (`me.wallet`), and what the till sees
(`cardInWallet` on the staff lookup)."""

from __future__ import annotations

import strawberry

from loyalty.wallet import CardInWallet as DomainCardInWallet
from schema.context import Info


@strawberry.type(description="Links that put the member card in a wallet app.")
class Wallet:
    member_id: strawberry.Private[int]

    @strawberry.field(
        description=(
            "A short-lived, single-use signed link that downloads the member's Apple Wallet pass (.pkpass); "
            "null when Apple Wallet is not configured."
        )
    )
    async def apple_pass_url(self, info: Info) -> str | None:
        links = info.context.wallet
        return None if links is None else await links.apple_pass_url(self.member_id, info.context.now)


@strawberry.type(description="Whether the member has the card in a wallet app, per platform.")
class CardInWallet:
    apple: bool
    google: bool

    @classmethod
    def from_domain(cls, state: DomainCardInWallet) -> CardInWallet:
        return cls(apple=state.apple, google=state.google)
