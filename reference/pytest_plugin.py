"""pytest plugin (placeholder until the suite's plugin lands)."""
