"""Layout adapters: code written in another layout, checked unchanged.

DESIGN.md, "Checking other people's code": layouts are adapters in front of the
boundary. An :class:`Adapter` offers the seed's protocol (samples as columns, ``params``
a list of ``(W (n_l, n_(l-1)), b (n_l, 1))`` pairs) and calls the user's code in the
layout it declares (:class:`~reference.inputs.layout.Layout`: the orientation of W, the
axis of the samples, the shape of b, the container and its names), so that the guard,
the oracles and the checker see the seed's layout only. Converting is exact:
transposes, reshapes and views, no arithmetic, except the mean over the batch when the
code takes one sample at a time (``samples=one``: J = (1/m) sum_s J_s). What the code
returns is checked in its own terms first: a wrong result raises
:class:`StructureError`, which the guard reports as a ``structure`` finding.

The presets ``columns`` (the seed's, no adapter), ``rows``, ``dicts`` and ``samples`` are
declarations like any other (:data:`~reference.inputs.layout.PRESETS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..inputs.layout import GRAD_PATTERNS, PRESETS, Layout, read_layout
from .loading import check_protocol, impl_name

Params = list[tuple[np.ndarray, np.ndarray]]

LAYOUTS = tuple(PRESETS)
"""The presets' names."""


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


def _entries(value: Any) -> dict[str, Any] | None:
    """A dict's or an object's named entries (an object's attributes), else None."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes, Sequence, np.ndarray)) or not hasattr(value, "__dict__"):
        return None
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


class Adapter:
    """The seed's protocol in front of ``impl``, an implementation written in ``layout``
    (a :class:`~reference.inputs.layout.Layout`, or anything
    :func:`~reference.inputs.layout.read_layout` reads). ``forward`` and ``update`` exist
    on the adapter only when they exist on ``impl``."""

    def __init__(self, impl: Any, layout: Any) -> None:
        self.declared = read_layout(layout)
        self.layout = str(self.declared)
        """The layout as ``--layout`` spells it: a preset's name or ``key=value`` pairs."""
        self.user = check_protocol(impl)  # plain functions become an object here
        self.__name__ = impl_name(self.user)
        self.SUPPORTS = getattr(self.user, "SUPPORTS", None)
        self.db_shape_declared = True
        """Whether every db of the last gradients came back in the declared shape of b
        (not 1-D in its place): the layout detection's tie-break."""
        self.grad_pattern: str | None = None
        """How the code's gradients were named the last time (``grads="auto"``)."""
        for member in ("forward", "update"):
            if callable(getattr(self.user, member, None)):
                setattr(self, member, getattr(self, f"_{member}"))

    def __repr__(self) -> str:
        return f"<{self.__name__} in the {self.layout} layout>"

    @property
    def one(self) -> bool:
        return self.declared.samples == "one"

    # -- the seed's protocol ------------------------------------------------------------------

    def loss(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, **penalty
    ) -> Any:
        """J from the user's ``loss`` (the guard makes it a float); ``penalty``: ``l2`` when
        the guard passes it, handed on as it is."""
        given = self.params_in(params)
        if not self.one:
            return self.user.loss(given, self.data_in(X), self.data_in(Y),
                                  activations=activations, cost=cost, **penalty)  # fmt: skip
        m, terms, each = X.shape[1], [], _per_sample(penalty, X.shape[1])
        for s in range(m):
            raw = self.user.loss(given, X[:, s : s + 1], Y[:, s : s + 1],
                                 activations=list(activations), cost=cost, **each)  # fmt: skip
            a = _array(raw, f"a loss for sample {s + 1} of {m}")
            if a.size != 1:
                raise StructureError(
                    f"returned an array of shape {a.shape} for sample {s + 1} of {m}, not one "
                    "number (with samples=one loss returns that sample's cost)"
                )
            terms.append(float(a.reshape(())))
        try:  # an exactly rounded sum; fsum refuses inf - inf and overflows past 1.8e308
            return math.fsum(terms) / m
        except (OverflowError, ValueError):
            return sum(terms) / m

    def gradients(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, **penalty
    ) -> Params:
        """``[(dW^l (n_l, n_(l-1)), db^l (n_l, 1))]`` from the user's ``gradients``."""
        given = self.params_in(params)
        if not self.one:
            raw = self.user.gradients(given, self.data_in(X), self.data_in(Y),
                                      activations=activations, cost=cost, **penalty)  # fmt: skip
            return self.params_out(raw, params, gradients=True)
        m, per_sample, each = X.shape[1], [], _per_sample(penalty, X.shape[1])
        for s in range(m):
            raw = self.user.gradients(given, X[:, s : s + 1], Y[:, s : s + 1],
                                      activations=list(activations), cost=cost, **each)  # fmt: skip
            try:
                per_sample.append(self.params_out(raw, params, gradients=True))
            except StructureError as exc:
                raise StructureError(f"{exc} (sample {s + 1} of {m})") from None
        return [
            tuple(np.mean([g[l][k] for g in per_sample], axis=0) for k in (0, 1))
            for l in range(len(params))
        ]

    def _forward(self, params: Params, X: np.ndarray, *, activations) -> np.ndarray:
        """A^L (n_L, m) from the user's ``forward``."""
        given, n_L, m = self.params_in(params), params[-1][0].shape[0], X.shape[1]
        if not self.one:
            raw = self.user.forward(given, self.data_in(X), activations=activations)
            return self.data_out(raw, (n_L, m))
        columns = []
        for s in range(m):
            raw = self.user.forward(given, X[:, s : s + 1], activations=list(activations))
            a = _array(raw, f"A^L for sample {s + 1} of {m}")
            if a.shape != (n_L, 1):
                raise StructureError(
                    f"returned A^L of shape {a.shape} for sample {s + 1} of {m}; with "
                    f"samples=one it is one column, ({n_L}, 1)"
                )
            columns.append(a)
        return np.hstack(columns)

    def _update(self, params: Params, grads: Params, learning_rate: float) -> Params | None:
        """The user's ``update`` in the seed's layout. One that returns None worked in place:
        its result is written back into ``params`` (the guard's copies) and None returned,
        so the guard sees an in-place update as the seed-layout code's."""
        given = self.params_in(params)
        raw = self.user.update(given, self.grads_in(grads), learning_rate)
        new = self.params_out(given if raw is None else raw, params, gradients=False)
        if raw is not None:
            return new
        for (W, b), (W_new, b_new) in zip(params, new):
            W[...], b[...] = W_new, b_new
        return None

    # -- converting ---------------------------------------------------------------------------

    def _arrays_in(self, params: Params) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each pair as the user has it: views of the guard's copies, so that a change in
        place reaches the guard."""
        d = self.declared
        out = []
        for W, b in params:
            W_u = W.T if d.W == "in_out" else W
            b_u = b.T if d.b == "row" else b[:, 0] if d.b == "flat" else b
            out.append((W_u, b_u))
        return out

    def _contain(self, pairs: list[tuple[Any, Any]], gradients: bool) -> Any:
        d = self.declared
        if d.container == "pairs":
            return pairs
        if d.container == "lists":
            return ([W for W, _ in pairs], [b for _, b in pairs])
        name = (lambda p, l: d.grad_key(p, l, self.grad_pattern)) if gradients else d.key
        entries = {
            name(p, l): theta for l, pair in enumerate(pairs, 1) for p, theta in zip("Wb", pair)
        }
        return entries if d.container == "dict" else SimpleNamespace(**entries)

    def params_in(self, params: Params) -> Any:
        return self._contain(self._arrays_in(params), gradients=False)

    def grads_in(self, grads: Params) -> Any:
        return self._contain(self._arrays_in(grads), gradients=True)

    def data_in(self, X: np.ndarray) -> np.ndarray:
        """X (n_0, m) or Y (n_L, m) as the user takes it."""
        return X.T if self.declared.samples == "rows" else X

    def data_out(self, value: Any, shape: tuple[int, int]) -> np.ndarray:
        """A^L as the seed has it, ``shape`` (n_L, m)."""
        a = _array(value, "A^L")
        rows = self.declared.samples == "rows"
        want = shape[::-1] if rows else shape
        if a.shape != want:
            raise StructureError(
                f"returned A^L of shape {a.shape}; with samples={self.declared.samples} it is "
                f"{want} {'(m, n_L)' if rows else '(n_L, m)'}"
            )
        return a.T if rows else a

    def params_out(self, value: Any, params: Params, *, gradients: bool) -> Params:
        """``value`` (gradients, or an ``update``'s new parameters) in the seed's layout,
        checked against ``params``' shapes."""
        pairs = self._loose_pairs(value, len(params), gradients)
        d, out, exact = self.declared, [], []
        for l, ((gW, gb), (W, _)) in enumerate(zip(pairs, params), start=1):
            wW, wb = self._names(l, gradients)
            dW = _array(gW, wW)
            want = W.T.shape if d.W == "in_out" else W.shape
            if dW.shape != want:
                raise StructureError(
                    f"returned {wW} of shape {dW.shape}; with W={d.W} {d.key('W', l)} is "
                    f"{want} {'(n_in, n_out)' if d.W == 'in_out' else '(n_out, n_in)'}"
                    + (f" (the shape of W={_other_W(d.W)})" if dW.shape == want[::-1] else "")
                )
            n = W.shape[0]
            db = _array(gb, wb)
            declared_b = {"column": (n, 1), "row": (1, n), "flat": (n,)}[d.b]
            if db.shape not in (declared_b, (n,)):
                raise StructureError(
                    f"returned {wb} of shape {db.shape}; with b={d.b} {d.key('b', l)} is "
                    f"{declared_b}"
                    + ("" if d.b == "flat" else f" (or 1-D, ({n},))")
                    + _b_fits(db.shape, n)
                )
            exact.append(db.shape == declared_b)
            out.append((dW.T if d.W == "in_out" else dW, db.reshape(n, 1)))
        if gradients:
            self.db_shape_declared = all(exact)
        return out

    def _names(self, layer: int, gradients: bool) -> tuple[str, str]:
        d = self.declared
        if d.container in ("pairs", "lists"):
            prefix = "d" if gradients else ""
            return f"{prefix}W{layer}", f"{prefix}b{layer}"
        if not gradients:
            return d.key("W", layer), d.key("b", layer)
        return (d.grad_key("W", layer, self.grad_pattern),
                d.grad_key("b", layer, self.grad_pattern))  # fmt: skip

    def _loose_pairs(self, value: Any, L: int, gradients: bool) -> list[tuple[Any, Any]]:
        """``value`` as one (W, b) pair per layer, shapes not yet checked."""
        container = self.declared.container
        if container == "pairs":
            return _pairs_of(value, L, "(dW, db) pairs" if gradients else "(W, b) pairs")
        if container == "lists":
            return _lists_of(value, L, "gradients" if gradients else "parameters")
        return self._named_pairs(value, L, gradients)

    def _named_pairs(self, value: Any, L: int, gradients: bool) -> list[tuple[Any, Any]]:
        """A dict's or an object's entries (``container=dict`` or ``object``) as pairs, by
        their declared names (for gradients of ``grads="auto"``, the pattern they fit)."""
        d = self.declared
        entries = _entries(value)
        if entries is None:
            kind = "a dict" if d.container == "dict" else "an object with attributes"
            raise StructureError(
                f"returned {type(value).__name__}, not {kind} of "
                f"{'gradients' if gradients else 'parameters'} "
                f"(container={d.container})" + _container_fits(value)
            )
        if gradients and d.grads == "auto":
            self.grad_pattern = _grad_pattern(entries, d, L)
        names = [n for l in range(1, L + 1) for n in self._names(l, gradients)]
        missing = [n for n in names if n not in entries]
        if missing:
            raise StructureError(
                f"returned no {', '.join(map(repr, missing))} (expected keys {', '.join(names)})"
                + (_keys_fit(entries, d, L) if gradients else "")
            )
        return [(entries[names[2 * k]], entries[names[2 * k + 1]]) for k in range(L)]


def _pairs_of(value: Any, L: int, kind: str) -> list[tuple[Any, Any]]:
    """``container=pairs``: a list of ``L`` pairs (``kind``: "(W, b) pairs" or "(dW, db)
    pairs", as the messages say)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise StructureError(
            f"returned {type(value).__name__}, not a list of {kind}" + _container_fits(value)
        )
    if len(value) != L:
        raise StructureError(f"returned {len(value)} pairs for a network of {L} layers")
    lists = len(value) == 2 and L != 2
    for l, pair in enumerate(value, start=1):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise StructureError(
                f"returned {type(pair).__name__} for layer {l}, not a {kind[:-1]}"
                + (" (a list of two lists fits container=lists)" if lists else "")
            )
    return [(p[0], p[1]) for p in value]


def _lists_of(value: Any, L: int, what: str) -> list[tuple[Any, Any]]:
    """``container=lists``: a pair of lists of ``L`` arrays each (``what``: "parameters" or
    "gradients")."""
    if (
        isinstance(value, (str, bytes, Mapping))
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, Sequence) and len(v) == L for v in value)
    ):
        raise StructureError(
            f"returned {type(value).__name__}, not a pair of lists of {L} "
            f"{what} each (container=lists)" + _container_fits(value)
        )
    return list(zip(value[0], value[1]))


def _other_W(W: str) -> str:
    return "in_out" if W == "out_in" else "out_in"


def _b_fits(shape: tuple[int, ...], n: int) -> str:
    for name, want in (("column", (n, 1)), ("row", (1, n))):
        if shape == want:
            return f" (this fits b={name})"
    return ""


def _container_fits(value: Any) -> str:
    """Which container a result of the wrong kind would fit, in words."""
    if isinstance(value, Mapping):
        return " (a dict fits container=dict)"
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (list, tuple)) for v in value)
    ):
        return ""
    if _entries(value) is not None:
        return " (an object fits container=object)"
    return ""


def _grad_pattern(entries: dict[str, Any], d: Layout, L: int) -> str | None:
    """The one pattern of GRAD_PATTERNS that names every gradient in ``entries``; None when
    none does or several do (the missing keys are then named)."""
    fits = [p for p in GRAD_PATTERNS if _names_all(entries, d, L, p)]
    return fits[0] if len(fits) == 1 else None


def _names_all(entries: dict[str, Any], d: Layout, L: int, pattern: str) -> bool:
    return all(d.grad_key(p, l, pattern) in entries for l in range(1, L + 1) for p in "Wb")


def _keys_fit(entries: dict[str, Any], d: Layout, L: int) -> str:
    """What the keys returned would fit: another ``grads`` pattern, or other parameter names
    (the keys' letters in another case)."""
    fits = [p for p in GRAD_PATTERNS if _names_all(entries, d, L, p)]
    if len(fits) > 1:
        return f"; its keys fit several patterns ({', '.join(fits)}): declare one as grads"
    if fits:
        keys = [repr(d.grad_key(q, l, fits[0])) for l in range(1, L + 1) for q in "Wb"]
        return f"; it has {', '.join(keys)}: they fit grads={fits[0]}"
    lower = {k.lower(): k for k in entries}
    for W_key, b_key in (("W{l}", "b{l}"), ("w{l}", "b{l}"), ("W{i}", "b{i}"), ("w{i}", "b{i}")):
        other = Layout(container=d.container, W_key=W_key, b_key=b_key)
        for p in GRAD_PATTERNS:
            if all(other.grad_key(q, l, p).lower() in lower for l in range(1, L + 1)
                   for q in "Wb"):  # fmt: skip
                found = [lower[other.grad_key(q, 1, p).lower()] for q in "Wb"]
                return f"; it has {found[0]!r}, {found[1]!r}, ...: declare the names it uses"
    return ""


def _per_sample(penalty: dict[str, Any], m: int) -> dict[str, Any]:
    """The penalty keyword for one sample's call: ``l2`` / m. A sample's penalty is then
    (lambda/m)/2 ||W||^2 and its gradient (lambda/m) W, and their mean over the m samples
    is the batch's lambda/(2m) ||W||^2 and (lambda/m) W."""
    return {k: v / m for k, v in penalty.items()}


def adapt(impl: Any, layout: Any) -> Any:
    """``impl`` (a module or object with the protocol's members, written in ``layout``: a
    preset's name, ``key=value,...``, a mapping or a
    :class:`~reference.inputs.layout.Layout`) behind the seed's protocol: an
    :class:`Adapter`, or ``impl`` itself for the seed's layout. An adapter given is
    unwrapped first, so adapting again replaces the layout."""
    try:
        declared = read_layout(layout)
    except ValueError as exc:
        raise ValueError(f"layout: {exc}") from None
    impl = impl.user if isinstance(impl, Adapter) else impl
    return check_protocol(impl) if declared.is_seed else Adapter(impl, declared)


def adapt_declared(impl: Any) -> Any:
    """``impl`` behind the layout its ``SUPPORTS["layout"]`` declares, if any (an adapter
    or a guarded implementation given is returned as it is)."""
    supports = getattr(impl, "SUPPORTS", None)
    if isinstance(impl, Adapter) or not isinstance(supports, Mapping):
        return impl
    declared = supports.get("layout")
    return impl if declared is None or not hasattr(impl, "gradients") else adapt(impl, declared)


def layout_of(impl: Any) -> str:
    """The layout ``impl`` is seen in: an adapter's, else the seed's."""
    return impl.layout if isinstance(impl, Adapter) else "columns"


def describe_param(layout: str, layer: int, param: str, shape: Sequence[int]) -> str:
    """Layer ``layer``'s ``param`` of the seed's ``shape`` as code in ``layout`` has it:
    the shape alone in the seed's layout, else the code's name and shape ("W2 3x2 (W^T)")."""
    d = read_layout(layout)
    if d.is_seed and d.container == "pairs" and d.W_key == "W{l}":
        return _shape(shape)
    n = shape[0]
    if param == "W":
        mine, note = (shape[::-1], " (W^T)") if d.W == "in_out" else (shape, "")
    else:
        mine = {"column": (n, 1), "row": (1, n), "flat": (n,)}[d.b]
        note = " (b^T)" if d.b == "row" else ""
    return f"{d.key(param, layer)} {_shape(mine)}{note}"
