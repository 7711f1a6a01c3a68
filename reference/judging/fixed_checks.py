"""The checks on fixed, hand-computed networks: relu'(0) at pre-activations exactly zero, and
saturation, for every declared (output activation, cost) pair and saturating hidden
activation, at logits where a naive formula overflows."""

from __future__ import annotations

import numpy as np

from ..boundary.guard import guard
from .conventions import COST_SCALE_RTOL, SEED, detect
from .diagnosis import relative_error
from .precision import judged_at, tolerances, unit_roundoff
from .results import OUT_OF_SCOPE, CheckResult, _guard, _outside


def relu_at_zero(impl, scope=None, expect: float | None = None) -> CheckResult:
    """relu'(0) at pre-activations that are exactly zero: 1 is the seed's convention, any
    value in [0, 1] a valid subgradient (a convention note); ``expect`` requires one.

    Network: relu hidden layer with W^1 = 0, b^1 = 0 (so Z^1 = 0 exactly), sigmoid
    output with W^2 = 1, b^2 = 0, bce, X = 1, Y = 0. By hand: A^2 = 1/2,
    dZ^2 = (1/2 - 0)/1, dZ^1 = W^2 dZ^2 relu'(0) = 1/2, so db^1 = 1/2 and dW^1 = 1/2.
    """

    impl = guard(impl)
    if _outside(scope, ["relu", "sigmoid"], "bce"):
        return CheckResult("relu'(0)", None, f"{OUT_OF_SCOPE}relu "
                           "hidden layer under a sigmoid output with bce")  # fmt: skip

    def run() -> CheckResult:
        params = [(np.zeros((1, 1)), np.zeros((1, 1))), (np.ones((1, 1)), np.zeros((1, 1)))]
        grads = impl.gradients(
            params, np.ones((1, 1)), np.zeros((1, 1)), activations=["relu", "sigmoid"], cost="bce"
        )
        used = 2 * float(grads[0][1][0, 0])  # db^1 = relu'(0) / 2
        delta = float(grads[1][1][0, 0])  # db^2 = dZ^2 = A^2 - Y = 1/2
        read = ""
        if delta != 0.5 and delta != 0.0 and np.isfinite(delta):
            # the output delta is wrong (a cost's sign, a factor): that is the gradient
            # checks' to name; relu'(0) is what multiplies it on the way down, db^1 / db^2
            used = float(grads[0][1][0, 0]) / delta
            read = (
                f" (read as db^1 / db^2: the output delta db^2 is {delta:g} here, not 1/2, "
                "a mistake above relu that the gradient checks name)"
            )
        if expect is not None and used != expect:
            return CheckResult(
                "relu'(0)", False, f"relu'(0) = {used:g}, and {expect:g} is required "
                f"(--relu-at-zero){read}"
            )  # fmt: skip
        if expect is not None:  # the slope required, whatever the seed's convention
            return CheckResult("relu'(0)", True, f"relu'(0) = {used:g} as required{read}")
        if used == 1.0:
            return CheckResult("relu'(0)", True, f"relu'(0) = 1 as the seed defines it{read}")
        if 0.0 <= used <= 1.0:
            return CheckResult(
                "relu'(0)",
                False,
                f"relu'(0) = {used:g}"
                + (" (JAX's and PyTorch's choice)" if used == 0.0 else "")
                + f", a valid subgradient; the seed uses 1{read}",
                severity="convention",
            )
        return CheckResult(
            "relu'(0)", False, f"relu'(0) = {used:g} at Z^1 = 0: not a subgradient of relu "
            f"(any value in [0, 1] is; the seed uses 1){read}"
        )  # fmt: skip

    return _guard("relu'(0)", run)


_LOGITS_FIX = (
    "compute bce from the logits, J = mean(logaddexp(0, Z) - Y Z), which stays finite "
    "where the sigmoid rounds to 0 or 1"
)


_DELTA_FIX = "use the fused output delta dZ = (A - Y)/m for a sigmoid output with bce"


_SHIFT_FIX = (
    "shift each column of Z by its largest entry before exponentiating: softmax(Z) = "
    "e^(Z - c) / sum e^(Z - c), c = max Z"
)


_SOFTMAX_FIX = f"{_SHIFT_FIX}, and log softmax(Z) = Z - c - log sum e^(Z - c), then dZ = (A - Y)/m"


def _bounded_fix(names: list[str]) -> str:
    return (
        f"evaluate {' and '.join(names)} in a form that does not overflow at large |z| (the "
        "sigmoid as 1/(1 + e^-z) for z >= 0 and e^z/(1 + e^z) below, tanh with np.tanh, not "
        "(e^z - e^-z)/(e^z + e^-z))"
    )


SATURATION_Z = np.array([[40.0, -40.0, 60.0, -60.0, 1000.0, -1000.0]])
"""The logits of the saturation networks' samples: where the sigmoid rounds to 0 or 1
(|z| > 37), and where e^z overflows (|z| > 709)."""


SATURATION_LABELS = np.array([[0.0, 1.0, 1.0, 0.0, 0.0, 1.0]])
"""Each sample's label, on the wrong side of its logit half the time."""


def saturates(name: str) -> bool:
    """Whether activation ``name`` flattens out at both ends, as its NumPy twin says: the
    same values at z = +-999 and +-1000 (by columns (z, -z) for one that is not
    elementwise, a softmax), and not a constant. Such a g is bounded and computed from
    e^z: a formula that is not guarded overflows there (the sigmoid, tanh, softmax; relu,
    leaky relu and identity do not flatten)."""
    from ..formulas.specs import NUMPY_ACTIVATIONS

    twin = NUMPY_ACTIVATIONS.get(name)
    if twin is None:
        return False
    with np.errstate(all="ignore"):
        far = twin.fn(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]]))
        near = twin.fn(np.array([[999.0, -999.0], [-999.0, 999.0]]))
        middle = twin.fn(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    return bool(np.allclose(far, near, rtol=0.0, atol=1e-12)
                and not np.allclose(middle, middle[:, ::-1]))  # fmt: skip


Case = tuple[list, np.ndarray, np.ndarray, list[str], str, int]
"""(params, X, Y, activations, cost, outputs) of a saturation network."""


def _saturation_network(hidden: list[str], out: str, cost: str, outputs: int) -> Case | None:
    """One input z = :data:`SATURATION_Z`; hidden layers of two units, the first
    W = (1/2, -1/2)^T, the next ones the identity matrix; an output layer whose rows are
    +-w (1, -1) (or +-1 on z itself, with no hidden layer), w chosen so that the largest
    logit is 1000. Labels: :data:`SATURATION_LABELS` and their complements by rows, one-hot
    by columns under an output that is not elementwise. None where the hidden layers
    cannot tell the samples apart (their outputs equal)."""
    from ..formulas.specs import NUMPY_ACTIVATIONS
    from ..inputs.problems import output_only

    params: list[tuple[np.ndarray, np.ndarray]] = []
    A = SATURATION_Z
    for k, name in enumerate(hidden):
        W = np.array([[0.5], [-0.5]]) if k == 0 else np.eye(2)
        params.append((W, np.zeros((2, 1))))
        with np.errstate(all="ignore"):
            A = NUMPY_ACTIVATIONS[name].fn(W @ A)
    row = np.array([[1.0, -1.0]]) if hidden else np.ones((1, 1))
    spread = float(np.max(np.abs(row @ A)))
    if not np.isfinite(spread) or spread == 0.0:
        return None
    signs = np.where(np.arange(outputs) % 2 == 0, 1.0, -1.0)[:, None]
    params.append((signs * (1000.0 / spread) * row, np.zeros((outputs, 1))))
    y = SATURATION_LABELS
    if output_only(out):
        Y = np.zeros((outputs, y.shape[1]))
        Y[0], Y[1] = y[0], 1.0 - y[0]
    else:
        Y = np.where(signs > 0, y, 1.0 - y)
    return params, SATURATION_Z.copy(), Y, [*hidden, out], cost, outputs


def _saturation_choices(scope, table: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(the admitted hidden activations of the NumPy tables, the admitted (output activation,
    cost) pairs of the NumPy tables)."""
    from ..formulas.specs import NUMPY_ACTIVATIONS, NUMPY_COSTS
    from ..inputs.problems import output_only

    hidden = [a for a in scope.hidden_choices(table)
              if a in NUMPY_ACTIVATIONS and not output_only(a)]  # fmt: skip
    pairs = [(out, cost) for out in scope.output_choices(table) if out in NUMPY_ACTIVATIONS
             for cost in scope.cost_choices(out) if cost in NUMPY_COSTS]  # fmt: skip
    return hidden, pairs


def _saturation_depths(scope) -> tuple[int, int]:
    """(the fewest layers the scope admits, at least 1; the layers of a network with hidden
    layers, at least 2, or 0 where the scope admits no hidden layer)."""
    lo = max(1, scope.min_depth or 1)
    deep = max(2, lo)
    if scope.max_depth is not None and deep > scope.max_depth:
        deep = 0  # no hidden layer admitted
    return lo, deep


def _saturation_width(scope, out: str) -> int:
    """The fewest output units the scope admits under ``out`` (0: none)."""
    from ..inputs.problems import output_only

    need = 2 if output_only(out) else 1
    admitted = sorted(n for n in (scope.outputs or [need]) if n >= need)
    return admitted[0] if admitted else 0


def _saturation_wanted(
    hidden: list[str], pairs: list[tuple[str, str]], lo: int, deep: int
) -> list[tuple[list[str], str, str]]:
    """The (hidden activations, output activation, cost) of each network
    :func:`_saturation_cases` describes, before the scope's filter."""
    bounded = [a for a in hidden if saturates(a)]
    saturating = [(out, cost) for out, cost in pairs if saturates(out)]
    wanted: list[tuple[list[str], str, str]] = []
    for out, cost in saturating:
        if lo == 1:
            wanted.append(([], out, cost))
        elif deep and hidden:
            wanted.append(([(bounded or hidden)[0]] * (deep - 1), out, cost))
    under = saturating or pairs
    for k, name in enumerate(bounded if deep and under else []):
        out, cost = under[k % len(under)]
        wanted.append(([name] * (deep - 1), out, cost))
    return wanted


def _saturation_cases(scope=None) -> list[Case]:
    """The saturation networks of the declared scope (:class:`~reference.inputs.scope.
    Scope`; None: every name of the tables), built from the tables.

    Every admitted (output activation, cost) pair whose output saturates (:func:`saturates`)
    gets a network of one layer, or, where the scope wants more layers, with hidden layers
    of an admitted activation (one that saturates first). Every admitted hidden activation
    that saturates gets a network of two layers (or the fewest the scope admits) under one
    of those pairs, in turn, or under any admitted pair where no output saturates. Only the
    networks the scope admits are kept, each once."""
    from ..inputs.problems import table_activations
    from ..inputs.scope import Scope

    scope = scope if scope is not None else Scope.everything()
    hidden, pairs = _saturation_choices(scope, table_activations())
    lo, deep = _saturation_depths(scope)
    cases, seen = [], set()
    for acts, out, cost in _saturation_wanted(hidden, pairs, lo, deep):
        n = _saturation_width(scope, out)
        key = (tuple(acts), out, cost)
        if not n or key in seen or not scope.admits_network([*acts, out], cost, n):
            continue
        seen.add(key)
        case = _saturation_network(acts, out, cost, n)
        if case is not None:
            cases.append(case)
    return cases


def _saturated_bound(got: np.ndarray, want: np.ndarray, rounding: np.ndarray, rtol: float) -> float:
    """The relative error a saturated gradient may show: ``rtol``, or, where the gradient
    is far below the terms it is computed from (a sigmoid' of 4e-18 at z = 40, which
    a(1 - a) or a tanh-based form rounds to 0), four times the JAX model's rounding bound
    relative to the two gradients, as the network check allows (at most 1: such a
    gradient is below what rounding can tell)."""
    denom = float(np.linalg.norm(got) + np.linalg.norm(want))
    if denom == 0.0:
        return rtol
    return min(1.0, max(rtol, 4.0 * float(np.linalg.norm(rounding)) / denom))


def _saturation_fix(acts: list[str], cost: str) -> tuple[str, str]:
    """(the fix for a wrong loss, the fix for gradients that are not finite)."""
    from ..inputs.problems import output_only

    if acts[-1] == "sigmoid" and cost == "bce":
        return _LOGITS_FIX, _DELTA_FIX
    if output_only(acts[-1]):
        fix = _SOFTMAX_FIX if cost == "cce" else _SHIFT_FIX
        return fix, fix
    fix = _bounded_fix(sorted({a for a in acts if saturates(a)}))
    return fix, fix


def saturation(impl, scope=None) -> CheckResult:
    """Every network of the declared scope whose activations saturate (:func:`saturates`),
    at logits of +-40, +-60 and +-1000 (:func:`_saturation_cases`): a finite loss and
    finite gradients equal to JAX's, in the cost's convention where the loss follows one
    (:mod:`.conventions`).

    A sigmoid output rounds to exactly 0 or 1 there, so under bce only the fused
    dZ = (A - Y)/m stays finite; a softmax's e^1000 overflows unless each column is shifted
    by its largest logit, under any cost; a bounded activation written from e^z (tanh as
    (e^z - e^-z)/(e^z + e^-z)) turns inf/inf into NaN. Hidden layers of a saturating
    activation check the same through the chain.
    """

    impl = guard(impl)

    def run() -> CheckResult:
        cases = _saturation_cases(scope)
        if not cases:
            from ..inputs.problems import table_activations

            names = ", ".join(a for a in table_activations() if saturates(a))
            return CheckResult("saturation", None, f"{OUT_OF_SCOPE}network whose activations "
                               f"saturate ({names}: bounded, computed from e^z)")  # fmt: skip
        from ..oracles.jax_model import jax_model  # imports JAX: on first use

        rtol = tolerances(impl).saturation
        exact = max(COST_SCALE_RTOL, 64 * unit_roundoff(judged_at(impl)))
        for params, X, Y, acts, cost, outputs in cases:
            logits_fix, delta_fix = _saturation_fix(acts, cost)
            J = impl.loss(params, X, Y, activations=acts, cost=cost)
            grads = impl.gradients(params, X, Y, activations=acts, cost=cost)
            ref = jax_model(params, X, Y, activations=acts, cost=cost)
            scale = detect(J, ref.loss, 0.0, X.shape[1], outputs, cost, exact) or SEED
            want_loss = scale.data * ref.loss
            want_grads = scale.of_seed(ref.grads, params, X.shape[1])
            where = f"{'/'.join(acts)} {cost}"
            if not np.isfinite(J) or abs(J - want_loss) > rtol * abs(want_loss):
                return CheckResult(
                    "saturation", False, f"{where}: loss {J:.6g} at |z| up to "
                    f"1000, expected {want_loss:.6g}: {logits_fix}", severity="warning",
                )  # fmt: skip
            bounds = [(scale.largest * rW, scale.largest * rb) for rW, rb in ref.rounding]
            for l, (pair, want, r) in enumerate(zip(grads, want_grads, bounds), start=1):
                for pname, got, w, rounding in (("W", pair[0], want[0], r[0]),
                                                ("b", pair[1], want[1], r[1])):  # fmt: skip
                    if not np.isfinite(got).all():
                        return CheckResult(
                            "saturation",
                            False,
                            f"{where}: layer {l}'s d{pname} is not finite at "
                            f"|z| up to 1000: {delta_fix}",
                            severity="warning",
                        )
                    if relative_error(got, w) > _saturated_bound(got, w, rounding, rtol):
                        return CheckResult(
                            "saturation",
                            False,
                            f"{where}: layer {l}'s d{pname} at |z| up to 1000 "
                            f"is {got.ravel()}, "
                            f"expected {w.ravel()}",
                        )
        names = ", ".join(f"{'/'.join(c[3])} {c[4]}" for c in cases)
        return CheckResult("saturation", True, "finite and right at |z| of 40, 60 and 1000 "
                           f"({len(cases)} networks: {names})")  # fmt: skip

    return _guard("saturation", run)
