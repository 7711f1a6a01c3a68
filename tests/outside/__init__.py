"""Implementations of the protocol written outside ``backprop/``, for testing the harness."""
