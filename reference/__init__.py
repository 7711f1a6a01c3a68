"""The oracles and the harness built on them.

- :func:`numerical_gradients`: finite differences of every entry, kink-aware.
- :func:`directional_gradients`: finite differences along random directions per
  layer, for networks too large to check entry by entry.
- :func:`jax_gradients`: ``jax.grad`` of a model written from the formulas.
- :func:`check_gradients`: the per-layer checker, with diagnosis and attribution.
- :mod:`reference.judging.checks`: what finite differences cannot check (purity, the
  update rule, relu'(0), saturation, metamorphic relations).
- :func:`load_impl`: the implementation under test, by module path.

Importing it turns on JAX's float64 mode (see ``reference/jax_model.py``).
"""

from .boundary.loading import ImplementationError, load_impl
from .inputs.problems import Problem, random_problem, seed_problem, with_relu_margin
from .judging.checker import ATTRIBUTIONS, ParamCheck, Report, check_gradients
from .judging.checks import CheckResult, run_all
from .oracles.finite_diff import (
    DirectionalFD,
    FDGradients,
    directional_gradients,
    numerical_gradients,
)
from .oracles.jax_model import JAX_ACTIVATIONS, JAX_COSTS, MissingTwinError, jax_gradients

__all__ = [
    "ATTRIBUTIONS",
    "JAX_ACTIVATIONS",
    "JAX_COSTS",
    "CheckResult",
    "DirectionalFD",
    "FDGradients",
    "ImplementationError",
    "MissingTwinError",
    "ParamCheck",
    "Problem",
    "Report",
    "check_gradients",
    "directional_gradients",
    "jax_gradients",
    "load_impl",
    "numerical_gradients",
    "random_problem",
    "run_all",
    "seed_problem",
    "with_relu_margin",
]
