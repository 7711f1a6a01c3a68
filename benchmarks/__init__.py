"""Side-by-side benchmarks: ``python -m benchmarks`` (see benchmarks/README.md)."""
