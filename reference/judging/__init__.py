"""The judging: the per-layer gradient checker, its diagnosis, and the non-gradient checks."""
