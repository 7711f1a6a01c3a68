"""The harness: what a user calls, by name (the rest is importable from its module).

- :func:`check_gradients` (:class:`Report`): every layer's gradients against finite
  differences and ``jax.grad``, with diagnosis and attribution.
- :func:`check_function`, :func:`check_vjp` (:class:`FunctionReport`): any function's
  hand-written gradient, or a layer's hand-written backward pass.
- :func:`layer_view`: where a wrong backward pass goes wrong: a local derivative, the
  chaining of the deltas, the parameter gradients, or the combining of the samples.
- :func:`run_all`: what finite differences cannot check (purity, the update rule,
  relu'(0), saturation, metamorphic relations).
- :func:`seed_problem`: the seed's 2-3-2-1 network with its data, to call the checks on.
- :func:`grade`: points per rubric item for an implementation (Gradescope's results).
- :func:`load_impl`: the implementation under test, by module path; :func:`adapt`: one
  written in another layout, behind the seed's protocol.
- :func:`register_activation`, :func:`register_cost` (and their ``unregister_``): a
  fork's new activation or cost, with its oracle twins and kinks, in one call.

The oracles themselves are :mod:`reference.oracles.finite_diff` and
:mod:`reference.oracles.jax_model`; the folders are described in ``CONTRIBUTING.md``.
Importing the package costs nothing: each name is imported from its module on first use
(``import reference`` imports neither JAX nor hypothesis), and the JAX oracle computes in
float64 without changing the process's JAX settings (``reference/oracles/jax_x64.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "adapt": ".boundary.layouts",
    "grade": ".grading.grade",
    "load_impl": ".boundary.loading",
    "seed_problem": ".inputs.problems",
    "Report": ".judging.records",
    "check_gradients": ".judging.checker",
    "FunctionReport": ".judging.functions",
    "check_function": ".judging.functions",
    "check_vjp": ".judging.functions",
    "layer_view": ".judging.layer_view",
    "run_all": ".judging.checks",
    "register_activation": ".registry",
    "register_cost": ".registry",
    "unregister_activation": ".registry",
    "unregister_cost": ".registry",
}
"""Each public name and the module it lives in (PEP 562: imported on first access)."""

__all__ = [
    "FunctionReport",
    "Report",
    "adapt",
    "check_function",
    "check_gradients",
    "check_vjp",
    "grade",
    "layer_view",
    "load_impl",
    "register_activation",
    "register_cost",
    "run_all",
    "seed_problem",
    "unregister_activation",
    "unregister_cost",
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
    from .boundary.layouts import adapt
    from .boundary.loading import load_impl
    from .grading.grade import grade
    from .inputs.problems import seed_problem
    from .judging.checker import check_gradients
    from .judging.checks import run_all
    from .judging.functions import FunctionReport, check_function, check_vjp
    from .judging.layer_view import layer_view
    from .judging.records import Report
    from .registry import register_activation, register_cost, unregister_activation, unregister_cost
