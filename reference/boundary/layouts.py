"""Layout adapters: code written in another common layout, checked unchanged.

DESIGN.md, "Checking other people's code": layouts are adapters in front of the
boundary. An adapter offers the seed's protocol (samples as columns, ``params``
a list of ``(W (n_l, n_(l-1)), b (n_l, 1))`` pairs) and calls the user's code in
the user's layout, so that the guard, the oracles and the checker see the
seed's layout only. Converting is exact: transposes, reshapes and views, no
arithmetic, except ``samples``' mean over the batch. What the user's code
returns is checked in the user's terms first: a wrong result raises
:class:`StructureError`, which the guard reports as a ``structure`` finding.

====================  ======================================================================
``columns``           the seed's: X (n_0, m), W (n_l, n_(l-1)), b (n_l, 1); no adapter
``rows``              samples as rows: X (m, n_0), Y (m, n_L), W (n_in, n_out) (the seed's
                      W transposed), b given as (1, n_out), taken back as (1, n_out) or
                      (n_out,); gradients and ``update``'s result in the same layout
``dicts``             parameters ``{"W1": ..., "b1": ..., "W2": ...}`` and gradients
                      ``{"dW1": ..., "db1": ...}`` in the seed's shapes (other keys are
                      ignored); ``update`` returns such a dict, or None when in place
``samples``           ``loss``, ``gradients`` and ``forward`` take one sample, x (n_0, 1) and
                      y (n_L, 1), and return that sample's cost term (mse: 1/2 sum (a - y)^2;
                      bce: -y log a - (1 - y) log(1 - a)), gradients, output; the adapter
                      calls them per sample and takes the mean: J = (1/m) sum_s J_s
====================  ======================================================================

Adding a layout is one subclass of :class:`Adapter` with a ``layout`` name: it
registers itself in :data:`ADAPTERS`, and :func:`adapt`, the CLI's ``--layout``,
the pytest plugin and the report's names and shapes pick it up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .loading import check_protocol, impl_name

Params = list[tuple[np.ndarray, np.ndarray]]

ADAPTERS: dict[str, type[Adapter]] = {}
"""Each layout's adapter class, by name (filled by :meth:`Adapter.__init_subclass__`)."""


class StructureError(Exception):
    """What the user's code returned has the wrong structure, said in the user's terms.

    Raised inside a guarded call, it becomes a ``structure``
    :class:`~reference.boundary.guard.Finding` (the message follows the member's name:
    "gradients returned no 'dW2' ...").
    """


def _array(value: Any, what: str) -> np.ndarray:
    """``value`` as a real numeric array (not converted: the guard makes it float64)."""
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise StructureError(f"returned {what} that is not an array ({exc})") from None
    if a.dtype.kind not in "iuf":
        raise StructureError(f"returned {what} of dtype {a.dtype}, not real numbers")
    return a


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


class Adapter:
    """The seed's protocol in front of ``impl``, an implementation written in ``layout``.

    A subclass says how arguments go to the user (``params_in``, ``grads_in``,
    ``data_in``) and how results come back (``params_out``, ``grads_out``,
    ``data_out``); the protocol's members here do the rest. ``forward`` and
    ``update`` exist on the adapter only when they exist on ``impl``.
    """

    layout: ClassVar[str]
    """The layout's name, as ``--layout`` and ``SUPPORTS["layout"]`` spell it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ADAPTERS[cls.layout] = cls

    def __init__(self, impl: Any) -> None:
        self.user = check_protocol(impl)  # plain functions become an object here
        self.__name__ = impl_name(self.user)
        self.SUPPORTS = getattr(self.user, "SUPPORTS", None)
        for member in ("forward", "update"):
            if callable(getattr(self.user, member, None)):
                setattr(self, member, getattr(self, f"_{member}"))

    def __repr__(self) -> str:
        return f"<{self.__name__} in the {self.layout} layout>"

    # -- the seed's protocol ------------------------------------------------------------------

    def loss(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, **penalty
    ) -> Any:
        """J from the user's ``loss`` (the guard makes it a float); ``penalty``: ``l2`` when
        the guard passes it, handed on as it is."""
        return self.user.loss(
            self.params_in(params), self.data_in(X), self.data_in(Y),
            activations=activations, cost=cost, **penalty,
        )  # fmt: skip

    def gradients(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, **penalty
    ) -> Params:
        """``[(dW^l (n_l, n_(l-1)), db^l (n_l, 1))]`` from the user's ``gradients``."""
        raw = self.user.gradients(
            self.params_in(params), self.data_in(X), self.data_in(Y),
            activations=activations, cost=cost, **penalty,
        )  # fmt: skip
        return self.grads_out(raw, params, "d")

    def _forward(self, params: Params, X: np.ndarray, *, activations) -> np.ndarray:
        """A^L (n_L, m) from the user's ``forward``."""
        raw = self.user.forward(self.params_in(params), self.data_in(X), activations=activations)
        return self.data_out(raw, (params[-1][0].shape[0], X.shape[1]))

    def _update(self, params: Params, grads: Params, learning_rate: float) -> Params | None:
        """The user's ``update`` in the seed's layout. One that returns None worked in place:
        its result is written back into ``params`` (the guard's copies) and None returned,
        so the guard sees an in-place update as the seed-layout code's."""
        given = self.params_in(params)
        raw = self.user.update(given, self.grads_in(grads), learning_rate)
        new = self.params_out(given if raw is None else raw, params, "")
        if raw is not None:
            return new
        for (W, b), (W_new, b_new) in zip(params, new):
            W[...], b[...] = W_new, b_new
        return None

    # -- converting (the identity here; each layout overrides what differs) --------------------

    def params_in(self, params: Params) -> Any:
        return params

    def grads_in(self, grads: Params) -> Any:
        return grads

    def data_in(self, X: np.ndarray) -> Any:
        """X (n_0, m) or Y (n_L, m) as the user takes it."""
        return X

    def params_out(self, value: Any, params: Params, prefix: str) -> Params:
        """``value`` (parameters when ``prefix`` is "", gradients when "d") in the seed's
        layout, checked against ``params``' shapes."""
        return _pairs(value, params, prefix, self.layout)

    def grads_out(self, value: Any, params: Params, prefix: str) -> Params:
        return self.params_out(value, params, prefix)

    def data_out(self, value: Any, shape: tuple[int, int]) -> np.ndarray:
        """A^L as the seed has it, ``shape`` (n_L, m)."""
        a = _array(value, "A^L")
        if a.shape != shape:
            raise StructureError(f"returned A^L of shape {a.shape}, expected {shape} (n_L, m)")
        return a

    @classmethod
    def describe_param(cls, layer: int, param: str, shape: Sequence[int]) -> str:
        """How the user's code sees layer ``layer``'s ``param`` ("W" or "b") of the seed's
        ``shape``: its name and shape, for the report's table."""
        return _shape(shape)


def _pairs(value: Any, params: Params, prefix: str, layout: str) -> Params:
    """A list of ``(W, b)`` pairs (``prefix`` "d": gradients) of ``params``' shapes."""
    out = []
    for l, (pair, (W, b)) in enumerate(zip(_loose_pairs(value, params, prefix), params), start=1):
        arrays = []
        for name, theta, g in (("W", W, pair[0]), ("b", b, pair[1])):
            a = _array(g, f"{prefix}{name}{l}")
            if a.shape != theta.shape:
                raise StructureError(
                    f"returned {prefix}{name}{l} of shape {a.shape}; "
                    f"in the {layout} layout {name}{l} is {theta.shape}"
                )
            arrays.append(a)
        out.append((arrays[0], arrays[1]))
    return out


class Columns(Adapter):
    """The seed's layout. :func:`adapt` puts no adapter in front of it."""

    layout = "columns"


class Rows(Adapter):
    """Samples as rows: X (m, n_0), Y (m, n_L), A^L (m, n_L); W^l (n_(l-1), n_l), the seed's
    transposed; b^l given as (1, n_l), taken back as (1, n_l) or (n_l,). Every argument the
    user gets is a transposed view of the guard's copy, so a change in place is still seen."""

    layout = "rows"

    def params_in(self, params: Params) -> Params:
        return [(W.T, b.T) for W, b in params]

    def grads_in(self, grads: Params) -> Params:
        return [(dW.T, db.T) for dW, db in grads]

    def data_in(self, X: np.ndarray) -> np.ndarray:
        return X.T

    def params_out(self, value: Any, params: Params, prefix: str) -> Params:
        pairs = []
        for l, (pair, (seed_W, _)) in enumerate(
            zip(_loose_pairs(value, params, prefix), params), 1
        ):
            W = seed_W.T  # the user's (n_in, n_out)
            dW, db = _array(pair[0], f"{prefix}W{l}"), _array(pair[1], f"{prefix}b{l}")
            if dW.shape != W.shape:
                raise StructureError(
                    f"returned {prefix}W{l} of shape {dW.shape}; in the rows layout W{l} is "
                    f"{W.shape} (n_in, n_out)"
                    + (" (this is the columns layout's shape)" if dW.shape == W.T.shape else "")
                )
            n_out = W.shape[1]
            if db.shape not in ((1, n_out), (n_out,)):
                raise StructureError(
                    f"returned {prefix}b{l} of shape {db.shape}; in the rows layout b{l} is "
                    f"(1, {n_out}) or ({n_out},)"
                )
            pairs.append((dW.T, db.reshape(n_out, 1)))
        return pairs

    def data_out(self, value: Any, shape: tuple[int, int]) -> np.ndarray:
        a = _array(value, "A^L")
        if a.shape != shape[::-1]:
            raise StructureError(
                f"returned A^L of shape {a.shape}; in the rows layout it is {shape[::-1]} (m, n_L)"
            )
        return a.T

    @classmethod
    def describe_param(cls, layer: int, param: str, shape: Sequence[int]) -> str:
        return f"{param}{layer} {_shape(shape[::-1])} ({param}^T)"


def _loose_pairs(value: Any, params: Params, prefix: str) -> Sequence[Any]:
    """``value`` as a sequence of one pair per layer, shapes not yet checked."""
    kind = f"({prefix}W, {prefix}b) pairs"
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise StructureError(f"returned {type(value).__name__}, not a list of {kind}")
    if len(value) != len(params):
        raise StructureError(f"returned {len(value)} pairs for a network of {len(params)} layers")
    for l, pair in enumerate(value, start=1):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise StructureError(f"returned {type(pair).__name__} for layer {l}, not a {kind[:-1]}")
    return value


class Dicts(Adapter):
    """Parameters ``{"W1": W^1, "b1": b^1, ...}`` and gradients ``{"dW1": ..., "db1": ...}``,
    the seed's shapes; the arrays are the guard's copies themselves, not copies of them."""

    layout = "dicts"

    def params_in(self, params: Params) -> dict[str, np.ndarray]:
        return _as_dict(params, "")

    def grads_in(self, grads: Params) -> dict[str, np.ndarray]:
        return _as_dict(grads, "d")

    def params_out(self, value: Any, params: Params, prefix: str) -> Params:
        names = [f"{prefix}{p}{l}" for l in range(1, len(params) + 1) for p in "Wb"]
        if not isinstance(value, Mapping):
            raise StructureError(
                f"returned {type(value).__name__}, not a dict with keys {', '.join(names)}"
            )
        missing = [k for k in names if k not in value]
        if missing:
            hint = ""
            if prefix and all(k[1:] in value for k in missing):
                hint = (f"; it has {', '.join(repr(k[1:]) for k in missing)}: the gradients "
                        f"are named {', '.join(missing)}")  # fmt: skip
            raise StructureError(
                f"returned no {', '.join(map(repr, missing))} (expected keys {', '.join(names)})"
                + hint
            )
        out = []
        for l, (W, b) in enumerate(params, start=1):
            pair = []
            for p, theta in (("W", W), ("b", b)):
                a = _array(value[f"{prefix}{p}{l}"], f"{prefix}{p}{l}")
                if a.shape != theta.shape:
                    raise StructureError(
                        f"returned {prefix}{p}{l} of shape {a.shape}; {p}{l} is {theta.shape}"
                        + (" (the transpose's shape)" if a.shape == theta.shape[::-1] else "")
                    )
                pair.append(a)
            out.append((pair[0], pair[1]))
        return out

    @classmethod
    def describe_param(cls, layer: int, param: str, shape: Sequence[int]) -> str:
        return f"{param}{layer} {_shape(shape)}"


def _as_dict(params: Params, prefix: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}{p}{l}": theta
        for l, pair in enumerate(params, start=1)
        for p, theta in zip("Wb", pair)
    }


def _per_sample(penalty: dict[str, Any], m: int) -> dict[str, Any]:
    """The penalty keyword for one sample's call: ``l2`` / m. A sample's penalty is then
    (lambda/m)/2 ||W||^2 and its gradient (lambda/m) W, and their mean over the m samples
    is the batch's lambda/(2m) ||W||^2 and (lambda/m) W."""
    return {k: v / m for k, v in penalty.items()}


class Samples(Adapter):
    """``loss``, ``gradients`` and ``forward`` of one sample, x (n_0, 1) and y (n_L, 1): the
    adapter calls them once per column and takes the batch's mean, the protocol's J being
    J = (1/m) sum_s J_s (so dJ = (1/m) sum_s dJ_s). Parameters, gradients and ``update``
    are the seed's."""

    layout = "samples"

    def loss(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, **penalty
    ) -> float:
        m = X.shape[1]
        terms = []
        per_sample = _per_sample(penalty, m)
        for s in range(m):
            raw = self.user.loss(
                params, X[:, s : s + 1], Y[:, s : s + 1], activations=list(activations),
                cost=cost, **per_sample,
            )  # fmt: skip
            a = _array(raw, f"a loss for sample {s + 1} of {m}")
            if a.size != 1:
                raise StructureError(
                    f"returned an array of shape {a.shape} for sample {s + 1} of {m}, not one "
                    "number (in the samples layout loss returns that sample's cost)"
                )
            terms.append(float(a.reshape(())))
        try:  # an exactly rounded sum; fsum refuses inf - inf and overflows past 1.8e308
            return math.fsum(terms) / m
        except (OverflowError, ValueError):
            return sum(terms) / m

    def gradients(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, **penalty
    ) -> Params:
        m = X.shape[1]
        per_sample = []
        each = _per_sample(penalty, m)
        for s in range(m):
            raw = self.user.gradients(
                params, X[:, s : s + 1], Y[:, s : s + 1], activations=list(activations),
                cost=cost, **each,
            )  # fmt: skip
            try:
                per_sample.append(_pairs(raw, params, "d", self.layout))
            except StructureError as exc:
                raise StructureError(f"{exc} (sample {s + 1} of {m})") from None
        return [
            tuple(np.mean([g[l][k] for g in per_sample], axis=0) for k in (0, 1))
            for l in range(len(params))
        ]

    def _forward(self, params: Params, X: np.ndarray, *, activations) -> np.ndarray:
        m, n_L = X.shape[1], params[-1][0].shape[0]
        columns = []
        for s in range(m):
            raw = self.user.forward(params, X[:, s : s + 1], activations=list(activations))
            a = _array(raw, f"A^L for sample {s + 1} of {m}")
            if a.shape != (n_L, 1):
                raise StructureError(
                    f"returned A^L of shape {a.shape} for sample {s + 1} of {m}; in the samples "
                    f"layout it is one column, ({n_L}, 1)"
                )
            columns.append(a)
        return np.hstack(columns)

    def _update(self, params: Params, grads: Params, learning_rate: float) -> Any:
        return self.user.update(params, grads, learning_rate)


def adapt(impl: Any, layout: str) -> Any:
    """``impl`` (a module or object with the protocol's members, written in ``layout``)
    behind the seed's protocol: an :class:`Adapter`, or ``impl`` itself for ``columns``.
    An adapter given is unwrapped first, so adapting again replaces the layout."""
    if layout not in ADAPTERS:
        raise ValueError(f"layout must be one of {', '.join(ADAPTERS)}, got {layout!r}")
    impl = impl.user if isinstance(impl, Adapter) else impl
    return check_protocol(impl) if layout == "columns" else ADAPTERS[layout](impl)


def layout_of(impl: Any) -> str:
    """The layout ``impl`` is seen in: an adapter's, else the seed's."""
    return impl.layout if isinstance(impl, Adapter) else "columns"


def describe_param(layout: str, layer: int, param: str, shape: Sequence[int]) -> str:
    """Layer ``layer``'s ``param`` of the seed's ``shape`` as code in ``layout`` has it."""
    return ADAPTERS[layout].describe_param(layer, param, shape)
