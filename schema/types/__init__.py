"""GraphQL object types of the member schema."""
