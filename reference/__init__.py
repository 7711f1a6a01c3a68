"""The oracles and the harness built on them.

- :func:`numerical_gradients`: finite differences of every entry, kink-aware.
- :func:`directional_gradients`: finite differences along random directions per
  layer, for networks too large to check entry by entry.
- :func:`jax_gradients`: ``jax.grad`` of a model written from the formulas.
- :func:`check_gradients`: the per-layer checker, with diagnosis and attribution.
- :func:`check_function`, :func:`check_vjp`: any function's hand-written gradient, or a
  layer's hand-written backward pass, with the same machinery (:class:`FunctionReport`).
- :func:`layer_view`: where a wrong backward pass goes wrong: a local derivative, the
  chaining of the deltas, the parameter gradients, or the combining of the samples.
- :mod:`reference.judging.checks`: what finite differences cannot check (purity, the
  update rule, relu'(0), saturation, metamorphic relations).
- :func:`grade`: points per rubric item (:func:`load_rubric`) for an implementation, as a
  :class:`Grade` that writes Gradescope's results.json (for otter-grader or nbgrader too).
- :func:`register_activation`, :func:`register_cost`: a fork's new activation or cost,
  with its oracle twins and kinks, in one call (or through the ``backprop_harness``
  entry points); the CLI, the strategies and the suite pick it up.
- :func:`load_impl`: the implementation under test, by module path; :func:`guard`:
  the one door every call into it goes through; :class:`Worker`: the same in a
  separate process with a time limit on every call; :func:`adapt`: an implementation
  written in another layout (samples as rows, dicts, one sample at a time) behind the
  seed's protocol.

Importing the package costs nothing: each name is imported from its module on
first use (so ``import reference`` imports neither JAX nor hypothesis), and the JAX
oracle computes in float64 without changing the process's JAX settings
(``reference/oracles/jax_x64.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Finding": ".boundary.guard",
    "Guarded": ".boundary.guard",
    "ImplementationFailed": ".boundary.guard",
    "guard": ".boundary.guard",
    "adapt": ".boundary.layouts",
    "StructureError": ".boundary.layouts",
    "Worker": ".boundary.isolation",
    "Grade": ".grading.grade",
    "grade": ".grading.grade",
    "RubricError": ".grading.rubric",
    "load_rubric": ".grading.rubric",
    "ProblemError": ".inputs.validate",
    "ImplementationError": ".boundary.loading",
    "load_impl": ".boundary.loading",
    "Problem": ".inputs.problems",
    "random_problem": ".inputs.problems",
    "seed_problem": ".inputs.problems",
    "with_relu_margin": ".inputs.problems",
    "ATTRIBUTIONS": ".judging.checker",
    "ParamCheck": ".judging.checker",
    "Report": ".judging.checker",
    "check_gradients": ".judging.checker",
    "CheckResult": ".judging.checks",
    "FunctionReport": ".judging.functions",
    "check_function": ".judging.functions",
    "check_vjp": ".judging.functions",
    "LayerView": ".judging.layer_view",
    "layer_view": ".judging.layer_view",
    "run_all": ".judging.checks",
    "DirectionalFD": ".oracles.finite_diff",
    "FDGradients": ".oracles.finite_diff",
    "directional_gradients": ".oracles.finite_diff",
    "numerical_gradients": ".oracles.finite_diff",
    "JAX_ACTIVATIONS": ".formulas.jax_twins",
    "JAX_COSTS": ".formulas.jax_twins",
    "MissingTwinError": ".formulas.numpy_twins",
    "jax_gradients": ".oracles.jax_model",
    "register_activation": ".registry",
    "register_cost": ".registry",
    "registered_activation": ".registry",
    "registered_cost": ".registry",
    "unregister_activation": ".registry",
    "unregister_cost": ".registry",
}
"""Each public name and the module it lives in (PEP 562: imported on first access)."""

__all__ = [
    "ATTRIBUTIONS",
    "JAX_ACTIVATIONS",
    "JAX_COSTS",
    "CheckResult",
    "DirectionalFD",
    "FDGradients",
    "Finding",
    "FunctionReport",
    "Grade",
    "Guarded",
    "ImplementationError",
    "ImplementationFailed",
    "LayerView",
    "MissingTwinError",
    "ParamCheck",
    "Problem",
    "ProblemError",
    "Report",
    "RubricError",
    "StructureError",
    "Worker",
    "adapt",
    "check_function",
    "check_gradients",
    "check_vjp",
    "directional_gradients",
    "grade",
    "guard",
    "jax_gradients",
    "layer_view",
    "load_impl",
    "load_rubric",
    "numerical_gradients",
    "random_problem",
    "register_activation",
    "register_cost",
    "registered_activation",
    "registered_cost",
    "run_all",
    "seed_problem",
    "unregister_activation",
    "unregister_cost",
    "with_relu_margin",
]


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module the first time it is asked for."""
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .boundary.guard import Finding, Guarded, ImplementationFailed, guard
    from .boundary.isolation import Worker
    from .boundary.layouts import StructureError, adapt
    from .boundary.loading import ImplementationError, load_impl
    from .formulas.jax_twins import JAX_ACTIVATIONS, JAX_COSTS
    from .formulas.numpy_twins import MissingTwinError
    from .grading.grade import Grade, grade
    from .grading.rubric import RubricError, load_rubric
    from .inputs.problems import Problem, random_problem, seed_problem, with_relu_margin
    from .inputs.validate import ProblemError
    from .judging.checker import ATTRIBUTIONS, ParamCheck, Report, check_gradients
    from .judging.checks import CheckResult, run_all
    from .judging.functions import FunctionReport, check_function, check_vjp
    from .judging.layer_view import LayerView, layer_view
    from .oracles.finite_diff import (
        DirectionalFD,
        FDGradients,
        directional_gradients,
        numerical_gradients,
    )
    from .oracles.jax_model import jax_gradients
    from .registry import (
        register_activation,
        register_cost,
        registered_activation,
        registered_cost,
        unregister_activation,
        unregister_cost,
    )
