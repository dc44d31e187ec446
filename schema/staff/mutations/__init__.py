"""Staff mutations, one module each."""
