"""The formulas of every activation and cost, written twice from DESIGN.md's conventions:
in NumPy (:mod:`.numpy_twins`) and in ``jax.numpy`` (:mod:`.jax_twins`), held one spec per
name in :mod:`.specs`. The registry adds a fork's names to the specs; the oracles evaluate
them."""
