"""The formulas of every activation and cost, written twice from DESIGN.md's conventions:
in NumPy (:mod:`.numpy_twins`) and in ``jax.numpy`` (:mod:`.jax_twins`). The registry adds a
fork's names to these tables; the oracles evaluate them."""
