"""Which layout the code is written in, where the shapes say it.

A run that has no layout declared, or whose declared layout does not fit, calls the
code's ``gradients`` once on a small network whose sizes are all different (n_0, the
hidden width, n_L and m), in each layout of :func:`candidates`. With every size
different, a matrix product in the wrong orientation raises, and a gradient of the
wrong shape cannot pass for a right one, so the layouts in which the call succeeds are
the code's. :func:`settle_layout` then says, once, what was found: a NOTE naming the
layout it detected, or the one error that names the declaration that would fit,
instead of the same structure error at every check.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..inputs.layout import Layout, read_layout
from .guard import Guarded, ImplementationFailed
from .layouts import Adapter, layout_of

Probe = tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray, list[str], str]
"""A network to probe with: params (seed layout), X, Y, activations, cost."""


LAYOUT_ERRORS = frozenset({"ValueError", "TypeError", "KeyError", "IndexError", "AttributeError"})
"""What code written for another layout raises when given the seed's: a shape mismatch
(ValueError), a list indexed by a name or a pair by a key (TypeError, KeyError), an index
past a container (IndexError), a missing attribute (AttributeError)."""


def may_be_layout(finding: dict[str, Any] | None) -> bool:
    """Whether a failed call (a :class:`~reference.boundary.guard.Finding` as a dict) is what
    a layout that does not fit causes: a wrong structure, or one of :data:`LAYOUT_ERRORS`
    raised. A time-out, a crash of the process or any other exception is the code's own."""
    if not finding:
        return False
    if finding.get("kind") == "structure":
        return True
    return finding.get("kind") == "raised" and finding.get("exception") in LAYOUT_ERRORS


@dataclass(frozen=True)
class Detection:
    """What a probe found. ``layout``: the layout to check in (None: keep the one given);
    ``note``: a line for the report; ``error``: the one structure error of the run, which
    then checks nothing else."""

    layout: str | None = None
    note: str | None = None
    error: str | None = None


def candidates(base: Layout) -> list[Layout]:
    """The layouts a probe tries: every orientation of W, axis of the samples (``one``
    only when declared: a one-sample code given a batch returns the shapes of a batch's),
    shape of b and container, with ``base``'s names and their other case."""
    samples = ("one",) if base.samples == "one" else ("columns", "rows")
    names = {(base.W_key, base.b_key), ("W{l}", "b{l}"), ("w{l}", "b{l}")}
    out = []
    for container in ("pairs", "lists", "dict", "object"):
        for W_key, b_key in sorted(names) if container in ("dict", "object") else [(None, None)]:
            for s in samples:
                for W in ("out_in", "in_out"):
                    for b in ("column", "row", "flat"):
                        keys = {} if W_key is None else {"W_key": W_key, "b_key": b_key}
                        out.append(replace(base, samples=s, W=W, b=b, container=container,
                                           **keys))  # fmt: skip
    return out


def probe_problem(scope: Any) -> Probe | None:
    """A two-layer network inside ``scope`` (a :class:`~reference.inputs.scope.Scope`)
    with n_0, n_1, n_L and m all different; None when the scope admits none."""
    from ..inputs.problems import compatible_costs

    L = 2
    if scope.min_depth is not None and scope.min_depth > L:
        L = scope.min_depth
    if scope.max_depth is not None and scope.max_depth < L:
        L = scope.max_depth
    widths = sorted(scope.outputs) if scope.outputs is not None else [2]
    n_L = 2 if 2 in widths else widths[0]
    hidden = sorted(scope.names("activations"), key=lambda a: (a != "tanh", a))
    outputs = sorted(scope.names("output_activations"), key=lambda a: (a != "sigmoid", a))
    for out_act in outputs:
        for cost in sorted(compatible_costs(out_act), key=lambda c: (c != "mse", c)):
            acts = [*([hidden[0]] * (L - 1) if hidden else []), out_act]
            if len(acts) == L and scope.admits_network(acts, cost, n_L):
                return _network(acts, cost, n_L)
    return None


def _network(acts: list[str], cost: str, n_L: int) -> Probe:
    free = [k for k in (4, 3, 5, 6, 7, 8, 9, 10) if k != n_L]
    sizes = [*free[: len(acts)], n_L]
    m = free[len(acts)]
    rng = np.random.default_rng(0)
    params = [
        (rng.normal(0, 0.5, (sizes[l + 1], sizes[l])), rng.normal(0, 0.1, (sizes[l + 1], 1)))
        for l in range(len(acts))
    ]
    X = rng.normal(0, 1, (sizes[0], m))
    Y = np.eye(n_L)[:, rng.integers(0, n_L, m)]  # one-hot columns: labels for every cost
    return params, X, Y, acts, cost


def _fits(guarded: Guarded, layout: Layout, probe: Probe) -> tuple[bool, str, bool]:
    """Whether ``gradients`` succeeds in ``layout`` on ``probe``; the failure's words; and
    whether each db came back in the declared shape of b."""
    params, X, Y, acts, cost = probe
    guarded.use_layout(str(layout))
    try:
        guarded.gradients(params, X, Y, activations=acts, cost=cost)
    except ImplementationFailed as failed:
        return False, failed.finding.describe(), False
    impl = guarded.impl
    exact = not isinstance(impl, Adapter) or impl.db_shape_declared
    return True, "", exact


def _distance(a: Layout, b: Layout) -> int:
    return sum(getattr(a, k) != getattr(b, k) for k in ("samples", "W", "b", "container"))


def detect_layout(
    guarded: Guarded, declared: str | None, probe: Probe | None, option: str | None = "--layout"
) -> Detection:
    """A job (:mod:`reference.run.jobs`): the layout ``guarded``'s code is written in,
    judged on ``probe``, against ``declared`` (None: nothing declared, the seed's is tried
    first); ``option``: the front-end's option that declares a layout, for the error (None:
    the code's ``SUPPORTS`` is the only place, as in grading).

    The guard is left in the layout it had; what the probe's calls recorded (impurities,
    inconsistencies, a time-out) is forgotten, the run's own calls see it again."""
    if probe is None:
        return Detection()
    base = read_layout(declared or "columns")
    kept = (guarded.impl, len(guarded.impurities), len(guarded.inconsistencies), guarded.hung)
    try:
        ok, why, _ = _fits(guarded, base, probe)
        if ok:
            return Detection()
        if "unsupported" in why or "did not return" in why:
            return Detection()  # not a matter of layout
        fits = []
        for layout in candidates(base):
            ok, _, exact = _fits(guarded, layout, probe)
            if ok:
                fits.append(((not exact, _distance(layout, base)), layout))
    finally:
        guarded.use_layout(layout_of(kept[0]))  # forgets the memo of the probe's results
        del guarded.impurities[kept[1] :], guarded.inconsistencies[kept[2] :]
        guarded.hung = kept[3]
    fits.sort(key=lambda f: f[0])
    best = [layout for rank, layout in fits if rank == fits[0][0]] if fits else []
    sizes = "-".join(str(n) for n in [probe[0][0][0].shape[1], *(W.shape[0] for W, _ in probe[0])])
    if len(best) == 1:
        found = best[0]
        if declared is None:
            return Detection(
                str(found),
                f"NOTE layout: detected {found} ({found.describe()}) from the shapes of a "
                f"{sizes} network of {probe[1].shape[1]} samples; declare it to skip the "
                f"detection: {found.declaration()}",
            )
        return Detection(
            error=f"the declared layout {declared} does not fit: {why}. The shapes of a "
            f"{sizes} network of {probe[1].shape[1]} samples fit {found} ({found.describe()}):"
            f" declare {found.declaration()}" + (f", or {option} {found}" if option else "")
        )
    if best:
        return Detection(
            error=f"{'the declared layout ' + declared if declared else 'the seed layout'} "
            f"does not fit: {why}. Several layouts fit the shapes: "
            f"{'; '.join(str(b) for b in best)}: declare the right one in SUPPORTS['layout']"
        )
    return Detection()  # no layout fits: the code's own mistake, which the checks report
