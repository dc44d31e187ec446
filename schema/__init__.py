"""The GraphQL layer: the member schema (`member_schema`) and the staff schema (`staff/`), thin over `loyalty`."""
