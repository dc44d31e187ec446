"""The HTTP side: Starlette app, settings, authentication, GraphQL views, CLI."""
