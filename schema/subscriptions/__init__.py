"""The member schema's subscriptions (over `graphql-transport-ws` on /graphql only)."""
