"""The staff schema served at /staff/graphql: checkout and back-office operations. Never on /graphql."""
