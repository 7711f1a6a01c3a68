"""What the harness needs to drive layer objects (:mod:`.layer_objects`): reading and
setting attributes by path (``"params['W']"``), the recording optimizer it hands to the
layers, what a method's signature says (a learning rate, an optimizer, the cost's argument
order), and the sample layouts of the probe.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .layouts import StructureError

LEARNING_RATES = (2.0**-16, 2.0**16)
"""The two learning rates a step-applying ``backward`` is called with. Powers of two: the
step lr * dW is exact, and at 2**16 the recovered (W - W_after) / lr is within a few units of
roundoff of dW relative to |dW| + |W| / 2**16. Two rates far apart make a gradient computed
from the stepped weights differ at once."""

_W_NAMES = ("W", "weights", "w", "weight", "kernel", "theta")
_B_NAMES = ("b", "bias", "biases", "B", "beta")
_DW_NAMES = ("dW", "grad_W", "dw", "grad_w", "dweights", "weights_gradient", "W_grad", "gW")
_DB_NAMES = ("db", "grad_b", "dB", "dbias", "dbiases", "bias_gradient", "b_grad", "gb")
_LR_NAMES = ("learning_rate", "lr", "eta", "alpha", "rate", "step_size", "learningrate")
_OPT_NAMES = ("optimizer", "optimiser", "optim", "opt")
_TRUE_NAMES = (
    "y", "y_true", "ytrue", "true", "truth", "target", "targets", "label", "labels", "actual",
    "expected", "t",
)  # fmt: skip
_PRED_NAMES = (
    "y_pred", "ypred", "pred", "preds", "prediction", "predictions", "predicted", "output",
    "outputs", "out", "a", "y_hat", "yhat", "logits", "p", "x", "input", "activation",
)  # fmt: skip
_VALUE_METHODS = ("loss", "forward", "value", "fn", "compute", "__call__")
_GRAD_METHODS = ("grad", "gradient", "derivative", "prime", "delta", "backward", "deriv")


# -- reading and writing attributes by path -------------------------------------------------


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        obj = obj[step] if isinstance(obj, Mapping) else getattr(obj, step)
    return obj


def _set(obj: Any, path: tuple[str, ...], value: Any) -> None:
    holder = _get(obj, path[:-1])
    if isinstance(holder, Mapping):
        holder[path[-1]] = value  # type: ignore[index]
    else:
        setattr(holder, path[-1], value)


def _spell(path: tuple[str, ...]) -> str:
    return path[0] + "".join(f"[{s!r}]" for s in path[1:])


def _arrays(obj: Any) -> dict[tuple[str, ...], np.ndarray]:
    """The ndarrays on ``obj``: its attributes and the values of its dict attributes."""
    out: dict[tuple[str, ...], np.ndarray] = {}
    for name, value in list(getattr(obj, "__dict__", {}).items()):
        if isinstance(value, np.ndarray):
            out[(name,)] = value
        elif isinstance(value, Mapping):
            for key, inner in list(value.items()):
                if isinstance(key, str) and isinstance(inner, np.ndarray):
                    out[(name, key)] = inner
    return out


def _pick(
    candidates: list[tuple[str, ...]], known: Sequence[str], what: str, key: str
) -> tuple[str, ...]:
    if len(candidates) == 1:
        return candidates[0]
    named = [c for c in candidates if c[-1] in known]
    named.sort(key=lambda c: known.index(c[-1]))
    if named:
        return named[0]
    found = ", ".join(map(_spell, candidates)) or "none"
    raise StructureError(
        f"cannot tell which array of the probe layer is {what} (found {found}); "
        f"declare LAYERS[{key!r}]"
    )


# -- what the harness hands to the layers ---------------------------------------------------


class RecordingOptimizer:
    """An optimizer that records what it is given: any method called on it (``update``,
    ``step``, ``apply_gradients``...) records its arguments and returns the first; where the
    first two are arrays of one shape (``self.W = opt.update(self.W, dW)``) it returns the
    step ``W - rate * dW``, a new array (``rate`` 0: W's values), so that a layer that reads
    its weights after the step is seen as for a learning rate. It writes into nothing."""

    def __init__(self, rate: float = 0.0) -> None:
        self.rate = rate
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)

        if name in ("lr", "learning_rate", "eta", "alpha"):
            return self.rate  # type: ignore[return-value]

        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            if len(args) >= 2 and all(isinstance(a, np.ndarray) for a in args[:2]):
                if args[0].shape == args[1].shape:
                    return args[0] - self.rate * args[1]
            return args[0] if args else None

        return record

    def __deepcopy__(self, memo: dict[int, Any]) -> RecordingOptimizer:
        return self  # a layer that copies its optimizer (one per parameter) still reports here

    __copy__ = lambda self: self  # noqa: E731

    def given(self) -> list[Any]:
        """Every argument of every call, lists, tuples and dicts opened."""
        out: list[Any] = []

        def walk(v: Any) -> None:
            if isinstance(v, (list, tuple)):
                for x in v:
                    walk(x)
            elif isinstance(v, Mapping):
                for x in v.values():
                    walk(x)
            else:
                out.append(v)

        for _, args, kwargs in self.calls:
            walk(args)
            walk(kwargs)
        return out

    def gradients_given(self) -> list[Any]:
        """The arguments after the first of every call (``update(W, dW)``'s dW,
        ``step(params, grads)``'s grads), lists, tuples and dicts opened."""
        out: list[Any] = []
        for name, args, kwargs in self.calls:
            probe = RecordingOptimizer()
            probe.calls = [(name, tuple(args[1:]), kwargs)]
            out += probe.given()
        return out


def _second_argument(method: Callable[..., Any]) -> tuple[str | None, bool]:
    """The name of ``method``'s parameter after the gradient, and whether it is required."""
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return None, False
    params = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) < 2:
        return None, False
    return params[1].name, params[1].default is inspect.Parameter.empty


def _kind_of_argument(name: str | None) -> str:
    low = (name or "").lower()
    if low in _LR_NAMES or "learning" in low or low.startswith("lr"):
        return "learning_rate"
    if low in _OPT_NAMES or low.startswith("optim"):
        return "optimizer"
    return "none"


# -- helpers ---------------------------------------------------------------------------------


def _class_name(obj: Any) -> str:
    return type(obj).__name__


def _init_parameters(cls: Any) -> list[str]:
    try:
        return list(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return []


def _takes_no_arguments(fn: Callable[..., Any]) -> bool:
    try:
        return not any(
            p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in inspect.signature(fn).parameters.values()
        )
    except (TypeError, ValueError):
        return False


def _method(obj: Any, names: Sequence[str], what: str, kind: str) -> Callable[..., Any]:
    for n in names:
        fn = getattr(obj, n, None) if n != "__call__" or callable(obj) else None
        if callable(fn) and not isinstance(fn, type):
            return fn
    raise TypeError(
        f"{what} must be a (value, gradient) pair of functions or an object with {kind} method "
        f"({', '.join(names)}); got {obj!r}"
    )


def _order(fn: Callable[..., Any], what: str) -> str:
    """The argument order of a cost function, from its first parameter's name."""
    try:
        names = [
            p.name.lower()
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        names = []
    if len(names) >= 2:
        if names[0] in _TRUE_NAMES or names[1] in _PRED_NAMES:
            return "y_true,y_pred"
        if names[0] in _PRED_NAMES or names[1] in _TRUE_NAMES:
            return "y_pred,y_true"
    raise ValueError(
        f"cannot tell from {what}'s parameters {names} which is the prediction; declare "
        "LAYERS['cost_args'] as 'y_true, y_pred' or 'y_pred, y_true'"
    )


def _kind_for(layer: Any, bwd: str, kind: str) -> str:
    """What to pass ``layer``'s backward: an activation layer's backward takes the second
    argument only if its own signature has one."""
    if kind == "none":
        return kind
    second, _ = _second_argument(getattr(layer, bwd))
    return kind if second is not None else "none"


def _extra(kind: str, lr: float | None, opt: RecordingOptimizer) -> tuple[Any, ...]:
    if kind == "learning_rate":
        return (lr if lr is not None else LEARNING_RATES[1],)
    if kind == "optimizer":
        return (opt,)
    return ()


def _bias_shape(shape: tuple[int, ...], n_out: int) -> tuple[int, ...]:
    return tuple(n_out if s != 1 else 1 for s in shape) if len(shape) else (n_out,)


def _sample_batch(rng, samples: str, n_in: int, m: int) -> tuple[list[np.ndarray], int]:
    X = rng.standard_normal((n_in, m))
    if samples == "rows":
        return [X.T], m
    if samples == "columns":
        return [X], m
    if samples == "row":
        return [X[:, :1].T], 1
    if samples == "column":
        return [X[:, :1]], 1
    return [X[:, 0]], 1


def _out_shape(samples: str, n_out: int, m: int) -> tuple[int, ...]:
    return {
        "rows": (m, n_out),
        "columns": (n_out, m),
        "row": (1, n_out),
        "column": (n_out, 1),
        "vector": (n_out,),
    }[samples]


def _stale(runs, w_path: tuple[str, ...]) -> None:
    """Raise where the gradient a layer passes down differs between the two learning rates:
    that layer read its weights after updating them."""
    (_, _, low, lr_low), (_, _, high, lr_high) = runs
    for (k, layer, g_low), (_, _, g_high) in zip(low, high):
        if g_low is None or g_high is None:
            continue
        scale = np.linalg.norm(g_low) + np.linalg.norm(g_high)
        if g_low.shape != g_high.shape or np.linalg.norm(g_low - g_high) > 1e-9 * max(
            scale, 1e-300
        ):
            raise StructureError(
                f"layers[{k}] ({_class_name(layer)}).backward reads the weights after updating "
                f"them: the gradient it passes down changes with the learning rate (at "
                f"{lr_low:g} and {lr_high:g}); compute it from {_spell(w_path)} before the step "
                f"{_spell(w_path)} -= learning_rate * dW"
            )
