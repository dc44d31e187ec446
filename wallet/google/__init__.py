"""Google Wallet: the programme's loyalty class, a loyalty object per member (rotating TOTP barcode), "save to
Google Wallet" links (RS256 JWTs signed with the service account's key), object sync over the REST API, and the
save/delete callbacks.

- `config`: credentials from the environment, or a generated development key and links to the local fake;
- `objects`: the class and object JSON;
- `save_link`: the save JWT and link (object inlined, or inserted first and linked by id when too large);
- `client`: the REST client (OAuth service-account token, ≤ 20 requests/s, backoff on 429/5xx);
- `sync`: the outbox consumer that PATCHes objects after points/tier/profile changes (≤ 3 notifications a day);
- `callbacks`: Google's signed save/delete callbacks (ECv2SigningOnly) → the shared install/remove events;
- `fake`: a local stand-in for Google's REST API and save page (development and tests).
"""
