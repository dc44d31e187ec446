"""The klubb domain: program configuration, members, the points ledger, tiers and domain events.

Nothing here knows about HTTP or GraphQL; callers are `schema/`, `admin/`, `api/` and the workers.
"""
