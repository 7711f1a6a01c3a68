"""The oracles and the harness built on them (filled in by the oracle work)."""
