"""Models made of layer objects, checked through the seed's protocol.

Courses and tutorials write a network as a list of objects: ``Dense(n_in, n_out)`` with
``forward(x)`` and ``backward(grad)``, activation layers (``Sigmoid()``, ``Tanh()``), and a
loss with a value and a gradient. A module declares how to build such a model in one
``LAYERS`` dict, and this module serves the seed's protocol (``loss``, ``gradients``,
``forward``) from those objects, so that every check of the harness runs on them unchanged::

    LAYERS = {
        "dense": Dense,                                        # Dense(n_in, n_out)
        "activations": {"sigmoid": Sigmoid, "tanh": Tanh},     # each called with no arguments
        "cost": {"mse": (mse, mse_prime)},                     # value and gradient
    }

The network for a problem with sizes n_0..n_L and activations g_1..g_L is the list
``layers = [Dense(n_0, n_1), G_1(), Dense(n_1, n_2), G_2(), ...]``: network layer l is
``layers[2l - 2]`` (its W and b) followed by ``layers[2l - 1]`` (its activation), and
every message names the object so (``layers[2] (Dense).W``).

Three kinds of ``backward`` are served, told apart by its signature (or ``"backward"``):

1. ``backward(grad)`` keeps the gradients on the layer (``self.dW``, ``self.grads["W"]``...):
   they are read from there (``"grads"`` names them; else the new arrays of W's and b's
   shapes are found).
2. ``backward(grad, learning_rate)`` applies the step ``W -= learning_rate * dW`` itself:
   the harness passes a learning rate and reads dW = (W before - W after) / learning_rate.
   It calls each backward pass at two learning rates: a layer whose gradient passed down
   changes with the learning rate "reads the weights after updating them".
3. the layer hands its gradients to an optimizer object (``backward(grad, optimizer)``, a
   constructor keyword, or a method such as ``initialize(optimizer)``, named by
   ``"optimizer"``): the harness supplies one that records what it is given
   (``update(W, dW)``, ``step(params, grads)``, ``update(layer)``...) and changes nothing.

Optional keys, each detected when left out: ``"weights"``: the names of W and b on the dense
layer (``("W", "b")``, ``("params['W']", "params['b']")``); ``"grads"``: the names of the
gradients kept on it; ``"samples"``: how ``forward`` takes the samples (``"rows"``, x (m,
n_in); ``"columns"``, x (n_in, m); one sample at a time as ``"row"`` (1, n_in), ``"column"``
(n_in, 1) or ``"vector"`` (n_in,), the cost then being the mean of the samples' costs);
``"backward"``: what backward's second argument is (``"none"``, ``"learning_rate"``,
``"optimizer"``); ``"optimizer"``: how a layer gets its optimizer (``"backward"``, a
constructor keyword, or a method's name); ``"cost_args"``: ``"y_true, y_pred"`` or
``"y_pred, y_true"`` (else read from the cost's parameter names); ``"methods"``: the names
of forward and backward (``("forward_pass", "backward_pass")``).

W may be (n_in, n_out) (``x @ W + b``, samples as rows, most tutorials) or (n_out, n_in)
(the seed's); the orientation, the bias shape, the names and the sample layout are read once
from a probe layer ``Dense(2, 3)`` on 5 samples, whose sizes differ so that no shape is
ambiguous. A cost is a ``(value, gradient)`` pair of functions or an object (a class is
called with no arguments) with a value method (``loss``, ``forward``, ``value``, ``fn`` or
``__call__``) and a gradient method (``grad``, ``gradient``, ``derivative``, ``prime``,
``delta`` or ``backward``; one taking no arguments reads what the value call kept). A value
that is an array (the elementwise terms of the cost) is summed.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .layer_declaration import (  # noqa: F401  (the declaration's names, importable from here)
    BACKWARD,
    KEYS,
    SAMPLES,
    Declaration,
)
from .layer_tools import (
    _B_NAMES,
    _DB_NAMES,
    _DW_NAMES,
    _GRAD_METHODS,
    _VALUE_METHODS,
    _W_NAMES,
    LEARNING_RATES,
    RecordingOptimizer,
    _arrays,
    _bias_shape,
    _class_name,
    _extra,
    _get,
    _init_parameters,
    _kind_for,
    _kind_of_argument,
    _method,
    _order,
    _out_shape,
    _pick,
    _sample_batch,
    _second_argument,
    _set,
    _spell,
    _stale,
    _takes_no_arguments,
)
from .layouts import StructureError

Params = list[tuple[np.ndarray, np.ndarray]]

_PROBE = (2, 3, 5)
"""n_in, n_out and m of the probe: three different sizes, so no shape stands for another."""
_ORIENTATIONS = {(_PROBE[0], _PROBE[1]): "in_out", (_PROBE[1], _PROBE[0]): "out_in"}
"""The probe's W shapes: (n_in, n_out) (``x @ W + b``) or (n_out, n_in) (the seed's)."""


# -- the model ------------------------------------------------------------------------------


@dataclass
class _Net:
    """One network of layer objects, built from the seed's parameters."""

    layers: list[Any]
    optimizer: RecordingOptimizer
    handed: dict[int, RecordingOptimizer] = field(default_factory=dict)
    set: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """The W and b objects the harness set on each dense layer, by the layer's index."""
    """The optimizer calls each layer's backward made, by the layer's index."""


class LayerModel:
    """The seed's protocol served from a ``LAYERS`` declaration (see the module docstring).

    ``loss(params, X, Y, *, activations, cost)`` and ``gradients(...)`` take the seed's
    arrays (X (n_0, m), W^l (n_l, n_(l-1)), b^l (n_l, 1)), build the layer objects with those
    parameters in the user's orientation and shapes, and run the user's ``forward`` and
    ``backward``; ``forward(params, X, *, activations)`` returns A^L (n_L, m).
    """

    def __init__(self, declaration: Declaration, name: str, supports: Any = None) -> None:
        self.declaration = declaration
        self.__name__ = f"{name} (layer objects)"
        scope = {
            "activations": sorted(declaration.activations),
            "output_activations": sorted(declaration.activations),
            "costs": sorted(declaration.costs),
        }
        if isinstance(supports, Mapping):
            scope.update(supports)  # what the module declares itself wins
        self.SUPPORTS = scope

    def __repr__(self) -> str:
        return f"<{self.__name__}: loss, gradients, forward served from LAYERS>"

    # -- the probe: what the declaration leaves out ---------------------------------------

    def _make_dense(self, n_in: int, n_out: int, optimizer: RecordingOptimizer) -> Any:
        d = self.declaration
        how = d.optimizer
        if how is not None and how != "backward" and how in _init_parameters(d.dense):
            layer = d.dense(n_in, n_out, **{how: optimizer})
        else:
            layer = d.dense(n_in, n_out)
        if how is not None and how not in ("backward",) and how not in _init_parameters(d.dense):
            method = getattr(layer, how, None)
            if not callable(method):
                raise StructureError(
                    f"LAYERS['optimizer'] is {how!r}, which is neither a keyword of "
                    f"{_class_name(layer)}() nor a method of it"
                )
            method(optimizer)
        for m in self.declaration.methods:
            if not callable(getattr(layer, m, None)):
                raise StructureError(
                    f"the dense layer {_class_name(layer)}({n_in}, {n_out}) has no {m}() method"
                )
        return layer

    def probe(self) -> dict[str, Any]:
        """Detect, once, what the declaration leaves out, on a ``Dense(2, 3)`` fed 5 samples:
        W's and b's names, orientation and shapes, the sample layout, what backward's second
        argument is, and where the gradients are found."""
        found = self.declaration.found
        if found:
            return found
        d = self.declaration
        n_in, n_out, m = _PROBE
        opt = RecordingOptimizer()
        layer = self._make_dense(n_in, n_out, opt)
        kind = self._backward_kind(layer)
        rng = np.random.default_rng(0)
        tried = []
        for samples in [d.samples] if d.samples else list(SAMPLES):
            trial = copy.deepcopy(layer)
            w_path, b_path, W, b = self._probe_weights(trial, _class_name(layer), samples, rng)
            xs, per_call = _sample_batch(rng, samples, n_in, m)
            try:
                before = self._probe_pass(trial, xs[0], _out_shape(samples, n_out, per_call),
                                          kind, opt)  # fmt: skip
            except Exception as exc:
                tried.append(f"{samples}: {type(exc).__name__}: {exc}")
                continue
            found.update(
                samples=samples,
                weights=(w_path, b_path),
                orientation=_ORIENTATIONS[np.shape(W)],
                bias_shape=np.shape(b),
                backward=kind,
            )
            found["grads"] = d.grads or self._find_grads(trial, before, w_path, b_path, kind, opt)
            return found
        raise StructureError(
            f"{_class_name(layer)}({n_in}, {n_out}) works with no sample layout "
            f"({'; '.join(tried)}); declare LAYERS['samples']"
        )

    def _backward_kind(self, layer: Any) -> str:
        """What the probe layer's backward takes after the gradient (:data:`BACKWARD`): as
        declared, else read from its signature; a required argument it cannot tell is an
        error."""
        d = self.declaration
        second, required = _second_argument(getattr(layer, d.methods[1]))
        kind = d.backward or (_kind_of_argument(second) if second else "none")
        if kind == "none" and required:
            raise StructureError(
                f"{_class_name(layer)}.{d.methods[1]}() takes a second argument {second!r}; "
                "declare LAYERS['backward'] as 'learning_rate' or 'optimizer'"
            )
        return kind

    def _probe_weights(
        self, trial: Any, name: str, samples: str, rng: np.random.Generator
    ) -> tuple[tuple[str, ...], tuple[str, ...], Any, Any]:
        """W's and b's paths on the probe layer ``trial`` (of class ``name``), and the arrays
        there, checked to be of the probe's sizes; a layer that makes its weights on its first
        forward is given one (on ``samples``) first."""
        d = self.declaration
        n_in, n_out, m = _PROBE
        if d.weights is None and not any(a.shape in _ORIENTATIONS for a in _arrays(trial).values()):
            try:  # weights made on the first forward (lazily initialised layers)
                getattr(trial, d.methods[0])(_sample_batch(rng, samples, n_in, m)[0])
            except Exception:
                pass
        try:
            w_path, b_path = d.weights or self._find_weights(trial)
            W, b = _get(trial, w_path), _get(trial, b_path)
        except (AttributeError, KeyError, TypeError) as exc:
            raise StructureError(
                f"the dense layer has no weights at LAYERS['weights'] {d.weights}: {exc}"
            ) from None
        if np.shape(W) not in _ORIENTATIONS or np.size(b) != n_out:
            raise StructureError(
                f"{name}({n_in}, {n_out}) has {_spell(w_path)} of shape "
                f"{np.shape(W)} and {_spell(b_path)} of shape {np.shape(b)}; expected "
                f"({n_in}, {n_out}) or ({n_out}, {n_in}), and {n_out} biases"
            )
        return w_path, b_path, W, b

    def _probe_pass(
        self, trial: Any, x: np.ndarray, out_shape: tuple[int, ...], kind: str, opt: Any
    ) -> dict[tuple[str, ...], np.ndarray]:
        """One forward and backward pass of the probe layer on ``x``, each result's shape
        checked (a ``ValueError`` where it is wrong); the layer's arrays before backward."""
        d = self.declaration
        out = np.asarray(getattr(trial, d.methods[0])(x))
        if out.shape != out_shape:
            raise ValueError(f"forward gave {out.shape}")
        before = {k: v.copy() for k, v in _arrays(trial).items()}
        extra = _extra(kind, LEARNING_RATES[1], opt)
        back = np.asarray(getattr(trial, d.methods[1])(np.ones_like(out), *extra))
        if back.shape != x.shape:
            raise ValueError(f"backward gave {back.shape} for x of {x.shape}")
        return before

    def _find_weights(self, layer: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        n_in, n_out, _ = _PROBE
        arrays = _arrays(layer)
        ws = [k for k, a in arrays.items() if a.shape in ((n_in, n_out), (n_out, n_in))]
        bs = [k for k, a in arrays.items() if a.size == n_out and a.ndim <= 2]
        return (
            _pick(ws, _W_NAMES, "W", "weights"),
            _pick(bs, _B_NAMES, "b", "weights"),
        )

    def _find_grads(self, layer, before, w_path, b_path, kind, opt) -> Any:
        """Where the probe's backward left its gradients: ``"step"`` (applied to W and b),
        ``"optimizer"`` (handed to the recording optimizer), or a pair of paths on the
        layer."""
        W, b = _get(layer, w_path), _get(layer, b_path)
        if kind == "learning_rate" and not np.array_equal(W, before[w_path]):
            return "step"
        if kind != "learning_rate" and _handed(opt, layer, W):
            return "optimizer"
        arrays = _arrays(layer)
        changed = [
            k
            for k, a in arrays.items()
            if k not in (w_path, b_path)
            and (k not in before or not np.array_equal(before[k], a, equal_nan=True))
        ]
        # W's shape, or its transpose's (a missing transpose, reported where it is read)
        dws = [k for k in changed if arrays[k].shape in (W.shape, W.shape[::-1])]
        dbs = [k for k in changed if arrays[k].size == b.size and k not in dws]
        if not dws or not dbs:
            raise StructureError(
                f"{_class_name(layer)}.{self.declaration.methods[1]}() left no gradients the "
                f"harness can find: no new arrays of W's shape {W.shape} and b's size {b.size}"
                " on the layer, no step applied to W and nothing handed to an optimizer; "
                "declare LAYERS['grads'] (their names on the layer)"
            )
        return (_pick(dws, _DW_NAMES, "dW", "grads"), _pick(dbs, _DB_NAMES, "db", "grads"))

    # -- building and running a network ----------------------------------------------------

    def _build(self, params: Params, activations: Sequence[str], rate: float = 0.0) -> _Net:
        f = self.probe()
        d = self.declaration
        opt = RecordingOptimizer(rate)
        layers: list[Any] = []
        given: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for l, ((W, b), name) in enumerate(zip(params, activations), start=1):
            if name not in d.activations:
                raise NotImplementedError(f"LAYERS['activations'] has no {name!r}")
            n_out, n_in = W.shape
            dense = self._make_dense(n_in, n_out, opt)
            user_W = W.T if f["orientation"] == "in_out" else W
            bias = b.reshape(_bias_shape(f["bias_shape"], n_out))
            w_path, b_path = f["weights"]
            W_set, b_set = np.array(user_W, copy=True), np.array(bias, copy=True)
            given[2 * l - 2] = (W_set, b_set)
            try:
                _set(dense, w_path, W_set)
                _set(dense, b_path, b_set)
            except (AttributeError, KeyError, TypeError) as exc:
                raise StructureError(
                    f"layers[{2 * l - 2}] ({_class_name(dense)}): cannot set "
                    f"{_spell(w_path)} / {_spell(b_path)}: {exc}"
                ) from None
            act = d.activations[name]()
            for m in d.methods:
                if not callable(getattr(act, m, None)):
                    raise StructureError(
                        f"layers[{2 * l - 1}] ({_class_name(act)}), the activation layer for "
                        f"{name!r}, has no {m}() method"
                    )
            layers += [dense, act]
        return _Net(layers, opt, set=given)

    def _columns(self, X: np.ndarray) -> list[np.ndarray]:
        """The user's inputs for X (n, m): one batch, or one per sample."""
        s = self.probe()["samples"]
        if s == "rows":
            return [X.T]
        if s == "columns":
            return [X]
        if s == "row":
            return [X[:, j][None, :] for j in range(X.shape[1])]
        if s == "column":
            return [X[:, j : j + 1] for j in range(X.shape[1])]
        return [X[:, j] for j in range(X.shape[1])]

    def _back(self, A: np.ndarray, n: int) -> np.ndarray:
        """The user's output (or gradient) for one call, as the seed's columns (n, m_call)."""
        s = self.probe()["samples"]
        a = np.asarray(A)
        if s in ("rows", "row"):
            a = a.T
        return a.reshape(n, -1)

    def _forward_net(self, net: _Net, x: np.ndarray) -> np.ndarray:
        fwd = self.declaration.methods[0]
        for k, layer in enumerate(net.layers):
            x = getattr(layer, fwd)(x)
            if x is None:
                raise StructureError(f"layers[{k}] ({_class_name(layer)}).{fwd}() returned None")
        return x

    def forward(self, params: Params, X: np.ndarray, *, activations: Sequence[str]) -> np.ndarray:
        """A^L (n_L, m): each sample layout's calls, put back as columns."""
        n_L = params[-1][0].shape[0]
        outs = []
        for x in self._columns(X):
            net = self._build(params, activations)
            outs.append(self._back(self._forward_net(net, x), n_L))
        return np.hstack(outs)

    def loss(self, params: Params, X, Y, *, activations: Sequence[str], cost: str) -> float:
        """J: the cost's value (the mean of the samples' values, one sample at a time)."""
        value, _ = self._cost(cost)
        total = []
        for x, y in zip(self._columns(X), self._columns(Y)):
            net = self._build(params, activations)
            a = self._forward_net(net, x)
            total.append(float(np.sum(value(a, y))))  # elementwise terms: their sum
        return float(np.mean(total))

    def gradients(self, params: Params, X, Y, *, activations: Sequence[str], cost: str) -> Params:
        """``[(dW^l (n_l, n_(l-1)), db^l (n_l, 1))]``: the mean over the calls (one, or one
        per sample) of what each layer's backward gave."""
        _, grad = self._cost(cost)
        per_call = []
        for x, y in zip(self._columns(X), self._columns(Y)):
            per_call.append(self._one_backward(params, activations, x, y, grad))
        return [
            (np.mean([g[l][0] for g in per_call], axis=0), np.mean([g[l][1] for g in per_call], 0))
            for l in range(len(params))
        ]

    def _one_backward(self, params, activations, x, y, grad) -> Params:
        f = self.probe()
        step = f["backward"] == "learning_rate" or f["grads"] == "optimizer"
        rates = LEARNING_RATES if step else (None,)
        runs = []
        for lr in rates:
            net = self._build(params, activations, lr or 0.0)
            a = self._forward_net(net, x)
            before = [(_get(L, f["weights"][0]).copy(), _get(L, f["weights"][1]).copy())
                      for L in net.layers[::2]]  # fmt: skip
            passed = []
            g = grad(a, y)
            bwd = self.declaration.methods[1]
            for k in range(len(net.layers) - 1, -1, -1):
                layer = net.layers[k]
                args = _extra(_kind_for(layer, bwd, f["backward"]), lr, net.optimizer)
                start = len(net.optimizer.calls)
                g = getattr(layer, bwd)(g, *args)
                mine = net.handed[k] = RecordingOptimizer(net.optimizer.rate)
                mine.calls = net.optimizer.calls[start:]
                if g is None and k > 0:
                    raise StructureError(
                        f"layers[{k}] ({_class_name(layer)}).{bwd}() returned None, not the "
                        "gradient to pass down"
                    )
                passed.append((k, layer, None if g is None else np.array(g, dtype=float)))
            runs.append((net, before, passed, lr))
        if len(runs) == 2:
            _stale(runs, f["weights"][0])
        net, before, _, lr = runs[-1]
        return [self._grads_of(net, l, before[l], lr) for l in range(len(params))]

    def _grads_of(self, net: _Net, l: int, before, lr: float | None):
        f = self.probe()
        layer = net.layers[2 * l]
        w_path, b_path = f["weights"]
        W, b = _get(layer, w_path), _get(layer, b_path)
        where = f["grads"]
        name = f"layers[{2 * l}] ({_class_name(layer)})"
        if where == "step":
            dW = (before[0] - np.asarray(W)) / lr
            db = (before[1] - np.asarray(b)) / lr
        elif where == "optimizer":
            dW, db = self._recorded(net.handed[2 * l], layer, net.set[2 * l], W, b, name)
        else:
            try:
                dW, db = _get(layer, where[0]), _get(layer, where[1])
            except (AttributeError, KeyError, TypeError) as exc:
                raise StructureError(f"{name} has no gradient {exc}") from None
        dW, db = np.asarray(dW, dtype=float), np.asarray(db, dtype=float)
        kept = where if isinstance(where, tuple) else None
        if dW.shape != np.shape(W):
            what = f"{name}.{_spell(kept[0])}" if kept else f"{name}'s gradient for W"
            raise StructureError(
                f"{what} has shape {dW.shape}, {_spell(w_path)} is {np.shape(W)}"
                + (" (the transpose's shape: a missing transpose?)"
                   if dW.shape == np.shape(W)[::-1] else "")
            )  # fmt: skip
        if db.size != np.size(b):
            what = f"{name}.{_spell(kept[1])}" if kept else f"{name}'s gradient for b"
            raise StructureError(f"{what} has shape {db.shape}, {_spell(b_path)} is {np.shape(b)}")
        n_out = db.size
        seed_dW = dW.T if f["orientation"] == "in_out" else dW
        return seed_dW, db.reshape(n_out, 1)

    def _recorded(self, opt: RecordingOptimizer, layer, given_Wb, W, b, name: str):
        given = opt.given()
        if any(v is layer for v in given):
            g = self.declaration.grads
            if g is None:
                raise StructureError(
                    f"{name} handed itself to the optimizer; declare LAYERS['grads'] (the names "
                    "of its gradients on the layer)"
                )
            return _get(layer, g[0]), _get(layer, g[1])
        # update(W, dW): the gradient follows the parameter the harness set
        by_param = {id(p): None for p in given_Wb}
        for _, args, _ in opt.calls:
            if len(args) >= 2 and id(args[0]) in by_param:
                by_param[id(args[0])] = args[1]
        if all(v is not None for v in by_param.values()):
            return by_param[id(given_Wb[0])], by_param[id(given_Wb[1])]
        # step(params, grads), update(grads=...): the gradients come after the parameters
        arrays = [v for v in opt.gradients_given() if isinstance(v, np.ndarray)]
        mine = [v for v in arrays if v.shape == np.shape(W)]
        bias = [v for v in arrays if v.size == np.size(b) and v.shape != np.shape(W)]
        if len(mine) != 1 or len(bias) != 1:
            raise StructureError(
                f"{name} handed the optimizer {len(mine)} arrays of W's shape and {len(bias)} "
                f"of b's size as gradients in one backward pass; expected one of each"
            )
        return mine[0], bias[0]

    def _cost(self, cost: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """The declared cost as value(a, y) and grad(a, y), in the user's argument order."""
        d = self.declaration
        if cost not in d.costs:
            raise NotImplementedError(f"LAYERS['cost'] has no {cost!r}")
        spec = d.costs[cost]
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            value, grad = spec
        else:
            obj = spec() if inspect.isclass(spec) else copy.deepcopy(spec)
            value = _method(obj, _VALUE_METHODS, f"LAYERS['cost'][{cost!r}]", "a value")
            grad = _method(obj, _GRAD_METHODS, f"LAYERS['cost'][{cost!r}]", "a gradient")
        order = d.cost_args or _order(value, f"LAYERS['cost'][{cost!r}]")
        pred_first = order == "y_pred,y_true"

        def call(fn: Callable[..., Any], a: np.ndarray, y: np.ndarray) -> Any:
            if fn is grad and _takes_no_arguments(fn):
                return fn()
            return fn(a, y) if pred_first else fn(y, a)

        return (lambda a, y: call(value, a, y)), (lambda a, y: call(grad, a, y))


def _handed(opt: RecordingOptimizer, layer: Any, W: np.ndarray) -> bool:
    """Whether the probe's backward handed the optimizer an array of W's shape (not W
    itself) or the layer."""
    if not opt.calls:
        return False
    given = opt.given()
    arrays = [v for v in given if isinstance(v, np.ndarray)]
    return any(v.shape == W.shape and v is not W for v in arrays) or any(v is layer for v in given)


def serve(module: Any, name: str | None = None) -> LayerModel:
    """The seed's protocol for ``module`` (or any object) with a ``LAYERS`` declaration; its
    own ``SUPPORTS`` (if any) is kept and wins over what the declaration implies."""
    declaration = Declaration.read(module.LAYERS)
    label = name or getattr(module, "__name__", None) or type(module).__name__
    return LayerModel(declaration, label, getattr(module, "SUPPORTS", None))


def serve_layers(layers: Mapping[str, Any], name: str = "layers") -> LayerModel:
    """The seed's protocol for a ``LAYERS`` dict given directly (a notebook's cells)."""
    return LayerModel(Declaration.read(layers), name)
