"""The oracles: finite differences (on a NumPy model of the formulas) and the JAX model."""
