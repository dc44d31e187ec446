"""Load benchmark of the member API: `make bench` (see bench/README.md)."""
