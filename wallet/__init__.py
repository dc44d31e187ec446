"""The member card in Apple Wallet and Google Wallet: a consumer of the domain (`loyalty`), never imported by it."""
