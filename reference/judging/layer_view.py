"""The layer view of a network check: is the mistake in a layer's local derivative, or in how
the deltas are chained?

The protocol's ``gradients`` is one function; its steps are not callable alone. At a single
sample (m = 1) they can still be read off its results: db^l is then the delta dZ^l itself,
and dW^l = dZ^l (A^{l-1})^T. Each step of the backward pass is checked alone against its local
function with :func:`~reference.judging.functions.check_vjp` / ``check_function`` (finite
differences of the formulas' own NumPy twins, kinks and all), fed the implementation's own
deltas:

- the parameters of layer l: dW^l is the vector-Jacobian product of W -> W A^{l-1} with the
  upstream db^l (a wrong ``dW`` or ``db`` from a right delta);
- the output delta: dZ^L is the gradient of the cost's terms in Z^L (the cost's derivative
  times g'_L: a local derivative);
- the step from dZ^{l+1} to dZ^l: the vector-Jacobian product of z -> W^{l+1} g_l(z) with
  the upstream dZ^{l+1}.

Where that step is wrong, one more call tells a local derivative from the chaining: with
W^{l+1} changed (nothing at or below layer l moves), dZ^l / ((W^{l+1})^T dZ^{l+1}) stays
g'-like, h(Z^l), when the product with the weights is right and only the derivative is wrong;
it changes when the chaining is wrong (W instead of its transpose, dW for W, W skipped).
Where every step is right at every sample tried, a batch's gradients are compared with the
mean of its samples': a mistake in how the samples are combined (a 1/m missing or twice)
shows there, and nowhere at one sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..boundary.guard import ImplementationFailed, guard
from ..formulas import numpy_twins, specs
from ..oracles import numpy_model
from ..tolerances import BATCH_RTOL, RATIO_RTOL
from . import diagnosis
from .conventions import measure
from .functions import FunctionReport, check_function, check_vjp

VERDICTS = {
    "local": "a local derivative: {where}",
    "chaining": "the chaining of the deltas: {where}",
    "parameters": "the parameter gradients from the delta: {where}",
    "batch": "how the samples are combined: every step is right at one sample, but the "
    "gradients of a batch are not the mean of the samples' (a 1/m missing or twice, a sum)",
    "none": "none of the steps: each is right at every sample tried, and a batch's gradients "
    "are the mean of its samples'; where the network check fails, look at the loss",
    "unavailable": "not available for {where}",
}
"""What each :attr:`LayerView.verdict` means ({where}: the step, filled in per view)."""

MAX_SAMPLES = 16
"""How many samples :func:`layer_view` tries, by default, for one where a step fails."""


@dataclass
class Step:
    """One step of the backward pass, checked alone: its name, layer and report."""

    name: str
    layer: int
    report: FunctionReport

    @property
    def ok(self) -> bool:
        return self.report.ok


@dataclass
class LayerView:
    """The steps at one sample, from the output down, and the verdict (:data:`VERDICTS`)."""

    verdict: str
    where: str
    steps: list[Step]
    sample: int | None
    """The column viewed; None where the view is ``"unavailable"``."""
    notes: list[str] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        return VERDICTS[self.verdict].format(where=self.where)

    def failing_step(self) -> Step | None:
        """The first step that fails, from the output down (None: every step is right)."""
        return next((s for s in self.steps if not s.ok), None)

    def render(self) -> str:
        if self.verdict == "unavailable":
            return f"layer view {self.explanation}"
        lines = [f"layer view at sample {self.sample} (m = 1):"]
        for s in self.steps:
            verdict = "ok" if s.ok else "FAIL"
            detail = "" if s.ok else f": {s.report.summary}"
            lines.append(f"  {s.name:<44} {verdict}{detail}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  the mistake is in {self.explanation}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def layer_view(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    sample: int | None = None,
    seed: int = 0,
    l2: float = 0.0,
) -> LayerView:
    """Check each step of ``impl``'s backward pass alone at one sample (see the module
    docstring): column ``sample`` of X and Y, or by default the first of the first
    :data:`MAX_SAMPLES` columns where a step fails (a sample whose relu units are all off
    hides every step below them). ``seed`` draws the changed W^{l+1} of the chaining probe.

    Meant for a network whose check blames the backward pass: a forward pass that differs
    from the formulas makes its deltas differ too, and the view then blames a local step.
    The steps from dZ^{l+1} to dZ^l read g'_l as a function of each entry of Z^l alone: where
    a hidden activation is not elementwise (a softmax), the view is ``"unavailable"`` and says
    so, with no call into ``impl``; so it is for a network with an L2 penalty (``l2``), whose
    dW the steps would have to read without it.
    A call into ``impl`` that fails raises
    :class:`~reference.boundary.guard.ImplementationFailed` as in the network check. Needs
    the formulas' NumPy twins of every activation and of the cost
    (:class:`~reference.formulas.numpy_twins.MissingTwinError` otherwise).
    """
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    _check_arguments(X, Y, sample, activations, cost)
    unavailable = _unavailable(activations, l2)
    if unavailable is not None:
        return unavailable
    impl = guard(impl)
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    kw = {"activations": list(activations), "cost": cost}
    candidates = [sample] if sample is not None else range(min(MAX_SAMPLES, X.shape[1]))
    first = None
    for j in candidates:
        view = _view_at(impl, params, X, Y, kw, int(j), seed)
        if view.verdict != "none":
            return view
        first = first or view
    assert first is not None
    _check_batch(impl, params, X, Y, kw, first)
    return first


def _check_arguments(
    X: np.ndarray, Y: np.ndarray, sample: int | None, activations: Sequence[str], cost: str
) -> None:
    """Raise where :func:`layer_view`'s arguments cannot be viewed: X and Y not 2-D with the
    same samples, ``sample`` not one of them, or a NumPy twin missing."""
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1] or X.shape[1] < 1:
        raise ValueError(f"X and Y must be 2-D with the same samples, got {X.shape}, {Y.shape}")
    if sample is not None:
        if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)):
            raise TypeError(f"sample must be an int or None, got {sample!r}")
        if not 0 <= sample < X.shape[1]:
            raise ValueError(f"sample must be in [0, {X.shape[1]}), got {sample}")
    if not numpy_model.has_twins(activations, cost):
        raise numpy_twins.MissingTwinError(
            f"the layer view needs NumPy twins of {list(activations)} and {cost!r}"
        )


def _unavailable(activations: Sequence[str], l2: float) -> LayerView | None:
    """The ``"unavailable"`` view of a network whose steps the view cannot read (an L2
    penalty, a hidden activation that is not elementwise), with no call into the
    implementation; None where it can."""
    mixed = [f"{a} at layer {l}" for l, a in enumerate(activations[:-1], 1)
             if not _elementwise(specs.NUMPY_ACTIVATIONS[a].fn)]  # fmt: skip
    if l2:
        return LayerView(
            "unavailable",
            f"a network with an L2 penalty (lambda = {l2:g}): the steps are read without one",
            [],
            None,
        )
    if mixed:
        return LayerView(
            "unavailable",
            f"{', '.join(mixed)}: not elementwise, so dZ^l is not (W^(l+1))^T dZ^(l+1) times a "
            "function of each entry of Z^l, which the steps read",
            [],
            None,
        )
    return None


def _check_batch(impl, params, X, Y, kw, first: LayerView) -> None:
    """Every step right at every sample tried: mark ``first`` ``"batch"``, with a note, where
    the gradients of the first :data:`MAX_SAMPLES` samples together are not the mean of
    theirs alone."""
    columns = list(range(min(MAX_SAMPLES, X.shape[1])))
    if len(columns) > 1:
        # each call's gradients in the seed's convention, by the constant its loss shows
        # (a cost summed over the samples is m times the seed's at m, the seed's at one)
        together = _as_seed(impl, params, X[:, columns], Y[:, columns], kw)
        alone = [_as_seed(impl, params, X[:, [j]], Y[:, [j]], kw) for j in columns]
        a = np.concatenate([np.ravel(g) for pair in together for g in pair])
        mean = np.concatenate(
            [np.ravel(np.mean([al[l][k] for al in alone], axis=0)) for l in range(len(params))
             for k in (0, 1)]
        )  # fmt: skip
        if diagnosis.relative_error(a, mean) > BATCH_RTOL:
            first.verdict = "batch"
            first.notes.append(
                f"the gradients of the first {len(columns)} samples together are not the mean "
                f"of theirs alone (relative error {diagnosis.relative_error(a, mean):.3g})"
            )


def _as_seed(impl, params, X, Y, kw) -> list[tuple[np.ndarray, ...]]:
    """The implementation's gradients on (X, Y), in the seed's convention (:mod:`.conventions`)."""
    grads = impl.gradients(params, X, Y, **kw)
    return measure(impl, params, X, Y, **kw).to_seed(grads, params, X.shape[1])


_PROBE = np.array([[-1.7], [-0.3], [0.45], [2.2]])
"""Where :func:`_elementwise` compares an activation's twin on a column and entry by entry
(no kink of the seed's activations, and unequal entries, so that a softmax shows)."""


def _elementwise(fn: Any) -> bool:
    """Whether g(z) on a column is g of each entry alone (a softmax's is not)."""
    with np.errstate(all="ignore"):
        whole = np.asarray(fn(_PROBE.copy()), np.float64)
        alone = np.concatenate([np.asarray(fn(_PROBE[[i]].copy()), np.float64)
                                for i in range(_PROBE.shape[0])])  # fmt: skip
    return whole.shape == alone.shape and bool(np.allclose(whole, alone, rtol=1e-12, atol=0.0))


def _view_at(impl, params, X, Y, kw, sample: int, seed: int) -> LayerView:
    """The view at one sample."""
    activations, cost = kw["activations"], kw["cost"]
    x, y = X[:, [sample]], Y[:, [sample]]
    grads = impl.gradients(params, x, y, **kw)
    if not all(np.all(np.isfinite(g)) for pair in grads for g in pair):
        where = (f"sample {sample}: the implementation's gradients there are not finite (NaN "
                 "or inf), and each step is checked at finite points")  # fmt: skip
        return LayerView("unavailable", where, [], sample)
    model = numpy_model.build(params, x, y, activations, cost)
    L = len(params)
    deltas = [db for _, db in grads]  # at m = 1, db^l is dZ^l
    steps: list[Step] = []
    notes: list[str] = []
    verdict, where = "none", ""

    # the parameters of each layer from its own delta, from the top
    for l in range(L, 0, -1):
        a_prev = model.A[l - 1]
        report = check_vjp(lambda W, a=a_prev: W @ a, lambda u, W, g=grads[l - 1][0]: g,
                           params[l - 1][0], upstream=deltas[l - 1], names=[f"W{l}"])  # fmt: skip
        steps.append(Step(f"dW^{l} = dZ^{l} (A^{l - 1})^T", l, report))
        if not report.ok and verdict == "none":
            verdict, where = (
                "parameters",
                f"dW^{l} is not dZ^{l} (A^{l - 1})^T (dZ^{l} read as db^{l})",
            )

    # the output delta (a layer whose dW and db disagree on its delta is named first: its
    # delta, read from db, cannot be trusted in the steps below)
    g_out = model.g[-1]

    scale = measure(impl, params, x, y, **kw)  # the cost as the implementation's loss has it

    def cost_of(z: np.ndarray) -> float:
        return scale.data * float(np.sum(model.terms(model.output(z, g_out.fn(z)), y)))

    report = check_function(cost_of, lambda z: deltas[-1], model.Z[-1], names=[f"Z{L}"])
    steps.insert(0, Step(f"dZ^{L} = dJ/dZ^{L} (the cost and g'_{L})", L, report))
    if not scale.is_seed:
        notes.append(f"the output delta is read in the loss's convention: {scale.describe()}")
    if not report.ok and verdict == "none":
        verdict, where = "local", f"the output delta dZ^{L} (the cost's derivative or g'_{L})"

    # the steps from dZ^{l+1} to dZ^l, from the top
    chain_fail = None
    for l in range(L - 1, 0, -1):
        W_next, g = params[l][0], model.g[l - 1]
        report = check_vjp(lambda z, W=W_next, g=g: W @ g.fn(z), lambda u, z, d=deltas[l - 1]: d,
                           model.Z[l - 1], upstream=deltas[l], names=[f"Z{l}"])  # fmt: skip
        steps.append(Step(f"dZ^{l} from dZ^{l + 1} (W^{l + 1} and g'_{l})", l, report))
        if not report.ok and chain_fail is None:
            chain_fail = l
    if chain_fail is not None and verdict == "none":
        l = chain_fail
        same = _same_ratio(impl, params, x, y, kw, l, deltas, seed)
        if same is None:
            notes.append(f"the probe at layer {l} could not tell: (W^{l + 1})^T dZ^{l + 1} is 0, "
                         f"or the gradients with W^{l + 1} changed are not finite")  # fmt: skip
            verdict, where = "chaining", f"the step from dZ^{l + 1} to dZ^{l}"
        elif same:
            verdict = "local"
            where = (f"g'_{l} ({activations[l - 1]}) at layer {l}: dZ^{l} is (W^{l + 1})^T "
                     f"dZ^{l + 1} times the wrong function of Z^{l}")  # fmt: skip
        else:
            verdict = "chaining"
            where = (f"the step from dZ^{l + 1} to dZ^{l}: dZ^{l} is not (W^{l + 1})^T "
                     f"dZ^{l + 1} times any function of Z^{l} (the transpose of W^{l + 1}, "
                     "dW for W, or W skipped)")  # fmt: skip
    steps.sort(key=lambda s: (-s.layer, not s.name.startswith("dZ")))
    return LayerView(verdict, where, steps, sample, notes)


def _same_ratio(impl, params, x, y, kw, l, deltas, seed) -> bool | None:
    """Whether dZ^l / ((W^{l+1})^T dZ^{l+1}) is the same with W^{l+1} changed (None: no entry
    where both quotients are defined, or gradients that are not finite there)."""
    rng = np.random.default_rng(seed)
    W_next, b_next = params[l]
    moved = list(params)
    W2 = W_next + 0.5 * rng.standard_normal(W_next.shape) * max(1.0, float(np.abs(W_next).max()))
    moved[l] = (W2, b_next)
    other = [db for _, db in impl.gradients(moved, x, y, **kw)]
    if not all(np.all(np.isfinite(d)) for d in other):
        return None
    c1, c2 = W_next.T @ deltas[l], W2.T @ other[l]
    scale1 = float(np.abs(c1).max(initial=0.0))
    scale2 = float(np.abs(c2).max(initial=0.0))
    usable = (np.abs(c1) > 1e-8 * scale1) & (np.abs(c2) > 1e-8 * scale2)
    if scale1 == 0.0 or scale2 == 0.0 or not usable.any():
        return None
    r1, r2 = deltas[l - 1][usable] / c1[usable], other[l - 1][usable] / c2[usable]
    return bool(np.all(np.abs(r1 - r2) <= RATIO_RTOL * np.maximum(np.abs(r1), np.abs(r2)) + 1e-300))


# --- the view in a network's report (Report.layer_view, backprop-check's text and JSON) -----


def view_summary(
    impl: Any,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activations: Sequence[str],
    cost: str,
    precision: str = "float64",
    l2: float = 0.0,
) -> dict[str, Any]:
    """:func:`layer_view` as plain data for a network's report; it never raises (a failure of
    the view's own code is its ``"failed"`` verdict too, and says so).

    Returns ``{"verdict", "explanation", "sample", "step", "lines", "blamed"}``: ``verdict``
    is one of :data:`VERDICTS` or ``"failed"`` (a call into ``impl`` raised, or returned
    something the boundary refused: ``explanation`` says which and where); ``step`` is the
    first failing step, ``{"name", "summary"}``, or None; ``lines`` the one or two lines a
    report prints (``"layer view: the chaining of the deltas: ..."``); ``blamed`` the table
    entry a local derivative points at, ``{"activation": name, "layer": l}`` for a hidden
    layer's g'_l, ``{"cost": name, "output_activation": name, "layer": L}`` for the output
    delta, or None (where a report's annotation goes: ``reference/report/github.py``).
    ``precision``: the precision the network was judged at; the steps are checked at
    float64's, so below it the view is ``"unavailable"`` (as it is without the NumPy twins
    of every activation and the cost).
    """
    if precision != "float64":
        return _summary(
            "unavailable",
            VERDICTS["unavailable"].format(where=f"a {precision} implementation: the steps are "
                                           "checked at float64's precision"),
        )  # fmt: skip
    try:
        view = layer_view(impl, params, X, Y, activations=activations, cost=cost, l2=l2)
    except numpy_twins.MissingTwinError:
        missing = [a for a in activations if a not in specs.NUMPY_ACTIVATIONS]
        missing += [cost] if cost not in specs.NUMPY_COSTS else []
        return _summary(
            "unavailable",
            VERDICTS["unavailable"].format(where=f"{', '.join(sorted(set(missing)))}: no NumPy "
                                           "twin in reference/formulas/specs.py"),
        )  # fmt: skip
    except ImplementationFailed as failed:
        return failed_view(f"the implementation failed in it: {failed.finding.describe()}")
    except Exception as exc:  # the view's own code: said in the report, never a crash of it
        return failed_view(
            f"the layer view's own code raised {type(exc).__name__}: {exc} (a problem in the "
            "harness, not in the implementation)"
        )
    step = view.failing_step()
    second = None
    if step is not None:
        second = f"at sample {view.sample} (m = 1), {step.name}: {step.report.summary}"
    elif view.notes:  # the last: the batch's, after any convention the view read
        second = view.notes[-1]
    blamed = None
    if view.verdict == "local" and step is not None:
        L = len(activations)
        if step.layer < L:  # a hidden layer's g'
            blamed = {"activation": activations[step.layer - 1], "layer": step.layer}
        else:
            blamed = {"cost": cost, "output_activation": activations[-1], "layer": L}
    return _summary(
        view.verdict,
        view.explanation,
        view.sample,
        None if step is None else {"name": step.name, "summary": step.report.summary},
        second,
        blamed,
    )


def failed_view(description: str) -> dict[str, Any]:
    """The :func:`view_summary` of a view cut short (``"failed"``): the implementation raised,
    returned something the boundary refused, ended its process or ran past the time limit;
    ``description`` says which and where."""
    return _summary("failed", f"not available: {description}")


def _summary(
    verdict: str,
    explanation: str,
    sample: int | None = None,
    step: dict[str, str] | None = None,
    second: str | None = None,
    blamed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    lines = [f"layer view: {explanation}"] + ([f"  {second[:400]}"] if second else [])
    return {"verdict": verdict, "explanation": explanation, "sample": sample, "step": step,
            "lines": lines, "blamed": blamed}  # fmt: skip
