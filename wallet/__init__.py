"""The member card in Apple Wallet and Google Wallet.

Apple: .pkpass building and signing (`pkpass`), the credentials that sign them (`credentials`), the PassKit web
service (`passkit`) and the APNs update pushes (`apns`, `updates`). Google: `wallet.google` (loyalty class and
objects, save links, REST sync, callbacks).

A consumer of the domain like `worker`: it imports `loyalty`, never the other way; `api` builds and mounts it.
"""
