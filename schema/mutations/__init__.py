"""Member mutations, one module each: input, payload, error codes and resolver."""
