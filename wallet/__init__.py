"""The member card in Apple Wallet: .pkpass building and signing (`pkpass`), the credentials that sign them
(`credentials`), the PassKit web service (`passkit`) and the APNs update pushes (`apns`, `updates`).

A consumer of the domain like `worker`: it imports `loyalty`, never the other way; `api` builds and mounts it.
"""
