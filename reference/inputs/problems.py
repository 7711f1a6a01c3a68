"""Problems to check: a network, its data, its activations and its cost.

:func:`seed_problem` is the seed notes' 2-3-2-1 network; :func:`random_problem`
draws one from a seeded generator; :func:`with_relu_margin` moves biases so
that no relu pre-activation lies within a margin of its kink, which is how the
property tests keep finite differences off the kinks without rejecting
examples.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]


def _kinks(name: str) -> tuple[float, ...]:
    """The kinks of activation ``name``, as its spec lists them (relu: (0.0,))."""
    from ..formulas.specs import ACTIVATION_SPECS

    spec = ACTIVATION_SPECS.get(name)
    return spec.kinks if spec is not None else ()


def output_only(name: str) -> bool:
    """Whether activation ``name`` is taken on the output layer only: its spec says it is not
    elementwise (softmax normalises each column of Z^L)."""
    from ..formulas.specs import ACTIVATION_SPECS

    spec = ACTIVATION_SPECS.get(name)
    return spec is not None and not spec.elementwise


def one_hot_labels(rng: np.random.Generator, classes: int, m: int) -> np.ndarray:
    """(classes, m) float64 labels, one-hot by columns, each column's class drawn uniformly."""
    return np.eye(classes)[:, rng.integers(0, classes, m)]


def needs_one_hot(output_activation: str, cost: str) -> bool:
    """Whether a network's labels are drawn one-hot: for cce, and for a softmax output (whose
    columns are distributions over classes) whatever the cost."""
    return cost == "cce" or output_only(output_activation)


@dataclass
class Problem:
    """Everything one gradient check needs; ``name`` labels it in reports."""

    params: Params
    X: np.ndarray
    Y: np.ndarray
    activations: list[str]
    cost: str
    name: str = ""
    tags: dict[str, object] = field(default_factory=dict)
    l2: float = 0.0
    """The L2 penalty's lambda (J gains lambda/(2m) sum_l ||W^l||^2); 0 for none. Passed to
    the implementation as the ``l2`` keyword only when not 0, so code without the keyword is
    never called with it."""

    @property
    def sizes(self) -> list[int]:
        return [self.params[0][0].shape[1]] + [W.shape[0] for W, _ in self.params]

    @property
    def m(self) -> int:
        return self.X.shape[1]

    def kwargs(self) -> dict[str, object]:
        """``activations`` and ``cost`` as the protocol's keyword arguments, and ``l2``
        when the problem has a penalty."""
        out: dict[str, object] = {"activations": list(self.activations), "cost": self.cost}
        if self.l2:
            out["l2"] = self.l2
        return out

    def describe(self) -> str:
        return (
            f"{'-'.join(map(str, self.sizes))} [{', '.join(self.activations)}] "
            f"{self.cost}, m = {self.m}" + (f", l2 = {self.l2:g}" if self.l2 else "")
        )


def _activation_fn(name: str):
    from ..formulas.specs import NUMPY_ACTIVATIONS

    return NUMPY_ACTIVATIONS[name].fn


def _nudge(b: float, c: np.ndarray, margin: float, kinks: Sequence[float] = (0.0,)) -> float:
    """The value nearest b for which every c_s + value lies outside (k - margin, k + margin)
    for every kink k."""
    forbidden = sorted((k - margin - cs, k + margin - cs) for cs in c for k in kinks)
    merged: list[list[float]] = []
    for lo, hi in forbidden:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    for lo, hi in merged:
        if lo < b < hi:
            return lo if b - lo <= hi - b else hi
    return b


def with_relu_margin(
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    activations: Sequence[str],
    margin: float = 1e-3,
) -> Params:
    """``params`` with the biases of kinked layers moved just enough that every
    pre-activation Z^l_is of those layers is at least ``margin`` from each kink of the
    layer's activation (relu: |Z^l_is| >= margin).

    Layer by layer: each unit's bias goes to the nearest value outside the
    forbidden intervals its samples define. Inputs are not changed.
    """
    out: Params = []
    A = np.asarray(X, np.float64)
    for (W, b), name in zip(params, activations):
        W, b = np.array(W, np.float64), np.array(b, np.float64)
        kinks = _kinks(name)
        if kinks:
            WA = W @ A
            for i in range(W.shape[0]):
                b[i, 0] = _nudge(float(b[i, 0]), WA[i], margin, kinks)
        out.append((W, b))
        A = _activation_fn(name)(W @ A + b)
    return out


def seed_problem(
    activations: Sequence[str] = ("tanh", "tanh", "sigmoid"), cost: str = "bce", seed: int = 0
) -> Problem:
    """The seed notes' network: 2 inputs, hidden layers of 3 and 2 units, 1 output, on XOR.
    ``activations``: one per layer, three. With an output-only activation (softmax, whose
    single output would be 1 whatever the network) the output layer has 2 units and XOR's
    labels are one-hot: (1, 0) for 0 and (0, 1) for 1."""
    categorical = (
        not isinstance(activations, str)
        and len(activations) == 3
        and (output_only(activations[-1]) or cost == "cce")
    )
    sizes = [2, 3, 2, 2 if categorical else 1]
    if isinstance(activations, str) or len(activations) != len(sizes) - 1:
        raise ValueError(
            f"activations must name one activation for each of the seed network's "
            f"{len(sizes) - 1} layers (2-3-2-1), got {activations!r}; for another network "
            "build a Problem(params, X, Y, activations, cost) or use random_problem"
        )
    rng = np.random.default_rng(seed)
    params = [
        (rng.normal(0, 1, (n, p)), rng.normal(0, 0.5, (n, 1))) for p, n in itertools.pairwise(sizes)
    ]
    X = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    if categorical:
        Y = np.vstack([1.0 - Y, Y])
    params = with_relu_margin(params, X, activations)
    shape = "-".join(map(str, sizes))
    return Problem(
        params, X, Y, list(activations), cost, name=f"seed {shape} {'/'.join(activations)} {cost}"
    )


def table_activations() -> list[str]:
    """The names in ``backprop.ACTIVATIONS``, in table order, then the registered ones."""
    from ..registry import activation_names

    return activation_names()


def compatible_costs(output_activation: str) -> list[str]:
    """The costs the harness checks (``backprop.COSTS``'s, then the registered ones) that a
    network with this output activation can use (bce needs a sigmoid), in that order."""
    from ..registry import cost_names, cost_output_activations

    return [
        name
        for name in cost_names()
        if (allowed := cost_output_activations(name)) is None or output_activation in allowed
    ]


def random_problem(
    rng: np.random.Generator,
    *,
    depth: tuple[int, int] = (1, 4),
    width: tuple[int, int] = (1, 6),
    samples: tuple[int, int] = (1, 6),
    activation_names: Sequence[str] | None = None,
    name: str = "",
    scale: tuple[float, float] | None = None,
    integer_data: bool = False,
    relu_margin: float | None = 1e-3,
) -> Problem:
    """A random network and batch: every layer's activation and the cost drawn, labels in
    [0, 1] for bce, one-hot by columns for cce and a softmax output, anywhere for mse.
    Output-only activations (softmax) are drawn for the output layer only.

    - ``scale``: None draws W^l ~ N(0, 1/n_{l-1}) and b^l ~ N(0, 1/4); a range (lo, hi)
      draws one scale s per problem, log-uniform in it, and W^l, b^l ~ N(0, s^2).
    - ``integer_data``: integer inputs in [-3, 3], weights rounded to multiples of 1/4
      (4 s N(0, 1) rounded, over 4), zero biases, integer labels (in {0, 1} for bce): every
      Z^l of a relu chain is then computed exactly, and is often exactly 0, the kink.
    - ``relu_margin``: relu pre-activations (any kinked layer's) are kept this far from its
      kinks by moving biases (:func:`with_relu_margin`); None leaves them where they fall.
    - ``activation_names``: the names drawn from (default: ``backprop.ACTIVATIONS``, in its
      order, registered names included).
    """
    L = int(rng.integers(depth[0], depth[1] + 1))
    sizes = [int(n) for n in rng.integers(width[0], width[1] + 1, size=L + 1)]
    m = int(rng.integers(samples[0], samples[1] + 1))
    if activation_names is None:
        activation_names = table_activations()
    acts = _draw_activations(rng, L, activation_names, depth)
    if output_only(acts[-1]) and sizes[-1] < 2 <= width[1]:
        sizes[-1] = 2  # a softmax of one unit is 1 whatever the network
    cost = str(rng.choice(compatible_costs(acts[-1])))
    pairs = list(itertools.pairwise(sizes))
    if scale is None and not integer_data:
        params = [
            (rng.normal(0, 1 / np.sqrt(p), (n, p)), rng.normal(0, 0.5, (n, 1))) for p, n in pairs
        ]
        X = rng.normal(0, 1, (sizes[0], m))
        Y = rng.uniform(0, 1, (sizes[-1], m)) if cost == "bce" else rng.normal(0, 1, (sizes[-1], m))
    else:
        params, X, Y = _scaled_arrays(rng, pairs, m, cost, scale, integer_data)
    if needs_one_hot(acts[-1], cost):
        Y = one_hot_labels(rng, sizes[-1], m)
    if relu_margin is not None:
        params = with_relu_margin(params, X, acts, relu_margin)
    return Problem(params, X, Y, acts, cost, name=name or "random")


def _draw_activations(
    rng: np.random.Generator, L: int, activation_names: Sequence[str], depth: tuple[int, int]
) -> list[str]:
    """``L`` activations drawn from ``activation_names``, an output-only one (softmax) on the
    output layer only (a hidden layer that drew one draws again among the others)."""
    acts = [str(a) for a in rng.choice(list(activation_names), size=L)]
    hidden = [a for a in activation_names if not output_only(a)]
    if L > 1 and not hidden:
        raise ValueError(
            f"activation_names {list(activation_names)} holds output-only activations only, "
            f"but depth {depth} needs hidden layers: add an elementwise activation"
        )
    for l in range(L - 1):  # softmax and its kind are drawn for the output layer only
        if output_only(acts[l]):
            acts[l] = str(rng.choice(hidden))
    return acts


def _scaled_arrays(
    rng: np.random.Generator,
    pairs: list[tuple[int, int]],
    m: int,
    cost: str,
    scale: tuple[float, float] | None,
    integer_data: bool,
) -> tuple[Params, np.ndarray, np.ndarray]:
    """``random_problem``'s parameters and data at one scale drawn log-uniform in ``scale``
    (1 when None): integer data and weights in quarters when ``integer_data``, else
    W^l, b^l ~ N(0, s^2)."""
    n0, nL = pairs[0][0], pairs[-1][1]
    lo, hi = scale if scale is not None else (1.0, 1.0)
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if integer_data:
        params = [
            (np.rint(4 * s * rng.normal(size=(n, p))) / 4, np.zeros((n, 1))) for p, n in pairs
        ]
        X = rng.integers(-3, 4, (n0, m)).astype(np.float64)
        Y = rng.integers(0, 2, (nL, m)) if cost == "bce" else rng.integers(-2, 3, (nL, m))
        return params, X, Y.astype(np.float64)
    params = [(s * rng.normal(size=(n, p)), s * rng.normal(size=(n, 1))) for p, n in pairs]
    X = rng.normal(0, 1, (n0, m))
    Y = rng.uniform(0, 1, (nL, m)) if cost == "bce" else rng.normal(0, 1, (nL, m))
    return params, X, Y
