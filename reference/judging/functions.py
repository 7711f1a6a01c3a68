"""Any function's hand-written gradient, checked as rigorously as the network's.

- :func:`check_function`: a scalar ``f(*arrays)`` and its gradient ``grad_f(*arrays)``,
  which returns one array per argument (a single array where there is one argument).
- :func:`check_vjp`: a layer's forward pass ``f(*arrays)`` (an array out, or a tuple of
  arrays of any shapes) and its hand-written backward pass ``vjp_f(upstream, *arrays)``,
  which returns one gradient per input: dL/dx_k = J_k^T upstream, for the loss
  L = sum(upstream * f(*arrays)). The upstream gradient comes first, as ``dout`` does in the
  per-layer ``forward``/``backward`` course assignments; a backward pass that reads a cache
  is wrapped as ``lambda dout, x, w: affine_backward(dout, affine_forward(x, w)[1])``.

Both use the network check's machinery: a step per entry from the value's magnitude,
Richardson estimates with error bounds (:mod:`reference.oracles.function_fd`, kinks found
from the differences themselves), a bound of ten times those error bounds (no fixed floor),
an optional JAX cross-check (``jax_f``, computed in float64), one row per argument with its
worst entry, and the diagnosis of :mod:`.diagnosis` (a constant factor inside the function,
transpose, sign, zeros). Kinks are judged, not excused: at an entry on a kink the gradient
must lie between the one-sided slopes (every subgradient does), and entries on kinks moved
together must add up to a rate between the one-sided rates along them
(:func:`_kinks_together`: the tie of a maximum). Every
call into the user's code goes through :mod:`reference.boundary.functions`: copies in, the
caller's arrays never changed, an exception names the member and the user's line.

``batched=True`` declares that ``f`` accepts a batch: every argument with one extra leading
axis of B points, returning B values (``check_function``) or an array (B, *out)
(``check_vjp``); NumPy's broadcasting matmul (``x @ w``) and ``axis=-1`` reductions
usually make a layer batch-ready. The finite differences then cost one call per chunk of
points instead of four calls per entry.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..boundary.functions import GuardedFunction
from ..boundary.guard import ImplementationFailed
from ..oracles import function_fd
from ..oracles.finite_diff import EXCLUDED
from ..tolerances import DETERMINISM_RTOL, FD_ROUNDING, SUM_ROUNDING, VALUE_RTOL
from ..tolerances import FUNCTION_FD_SAFETY as FD_SAFETY
from ..tolerances import FUNCTION_JAX_BOUND as JAX_BOUND
from ..tolerances import SUBGRADIENT_SAFETY as KINK_SAFETY
from . import diagnosis
from .records import _jsonable, _num

UPSTREAM_STREAM = 0x6A7C
"""The default upstream gradient is drawn from ``default_rng([UPSTREAM_STREAM, seed])``, a
stream of its own: with ``default_rng(seed)`` it would equal the caller's first array whenever
both use the same seed (x = upstream makes x^T upstream symmetric, and a transposed dw right)."""
UPSTREAM_HINT = (
    ": the caller may use dout again (another branch, a residual connection); "
    "copy it first, dx = dout.copy()"
)
"""Appended to the finding of a backward pass that writes into the upstream gradient."""


@dataclass
class ArgumentCheck:
    """One argument's gradient: errors, bounds, worst entry, verdict, diagnosis."""

    name: str
    shape: tuple[int, ...]
    error_fd: float | None = None
    bound_fd: float | None = None
    error_jax: float | None = None
    bound_jax: float | None = None
    ok: bool = False
    diagnosis: str = ""
    worst: dict[str, Any] | None = None
    one_sided: int = 0
    """Entries next to a kink, estimated from the side that does not cross it."""
    on_kink: int = 0
    """Entries on a kink: held to the interval between their one-sided slopes."""
    outside: int = 0
    """Of those, how many lie outside it (each one fails the argument)."""
    excluded: int = 0
    """Entries between two kinks, on kinks of both kinds at once, or where f is not finite
    nearby: not compared."""
    fd_ok: bool | None = None
    jax_ok: bool | None = None


@dataclass
class FunctionReport:
    """The verdict on one function's gradient (:func:`check_function`) or one backward pass
    (:func:`check_vjp`). ``str()`` (or :meth:`render`) is the terminal form, ``to_dict()``
    the JSON-serializable one; a notebook shows :meth:`_repr_html_`."""

    ok: bool
    kind: str
    name: str
    arguments: list[ArgumentCheck]
    value: float
    summary: str
    one_sided: int = 0
    on_kink: int = 0
    excluded: int = 0
    calls: int = 0
    jax_value: float | None = None
    findings: list[str] = field(default_factory=list)
    """Arguments the user's code changed in place; any of them fails the report."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What looks wrong but does not fail the report (``WARN``)."""

    def failing(self) -> list[ArgumentCheck]:
        return [a for a in self.arguments if not a.ok]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def render(self) -> str:
        """The report as a table a person reads in a terminal."""
        lines = [f"{self.kind} {self.name}: value {self.value:.12g}"]
        w = max(8, *(len(a.name) for a in self.arguments))
        s = max(9, *(len(str(a.shape)) for a in self.arguments))
        lines.append(
            f"  {'argument':<{w}} {'shape':>{s}} {'err FD':>9} {'bound':>8} "
            f"{'err JAX':>9} {'bound':>8}  verdict  diagnosis"
        )
        for a in self.arguments:
            lines.append(
                f"  {a.name:<{w}} {a.shape!s:>{s}} {_num(a.error_fd):>9} {_num(a.bound_fd, 1):>8} "
                f"{_num(a.error_jax):>9} {_num(a.bound_jax, 1):>8}  "
                f"{'ok' if a.ok else 'FAIL':<7}  {a.diagnosis}"
            )
        for a in self.failing():
            if a.worst is not None:
                lines.append(f"  {_worst_line(a)}")
        if self.jax_value is not None:
            lines.append(f"  value {self.value:.12g} vs JAX {self.jax_value:.12g}")
        lines += [f"  {line}" for line in self._kink_lines()]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  WARN: {warning}" for warning in self.warnings]
        lines += [f"  FAIL: {finding}" for finding in self.findings if finding != self.summary]
        lines.append(f"  {'PASS' if self.ok else 'FAIL'}: {self.summary}")
        return "\n".join(lines)

    def _kink_lines(self) -> list[str]:
        lines = []
        if self.one_sided:
            lines.append(
                f"{self.one_sided} entries next to a kink: estimated from the side that does "
                "not cross it"
            )
        if self.on_kink:
            outside = sum(a.outside for a in self.arguments)
            lines.append(
                f"{self.on_kink} entries on a kink: held to the interval between their "
                "one-sided slopes (any value in it is a subgradient)"
                + (f", {outside} outside it" if outside else "")
            )
        if self.excluded:
            lines.append(
                f"{self.excluded} entries between two kinks, on kinks of both kinds at once "
                "(f neither convex nor concave in them), or where f is not finite nearby: "
                "not compared"
            )
        return lines

    def __str__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        """The same content as :meth:`render`, as an HTML table with failing rows marked."""
        e = html.escape
        cell = "padding:2px 6px;border:1px solid #ccc;text-align:left"
        head = ("argument", "shape", "err FD", "bound", "err JAX", "bound", "verdict", "diagnosis")
        rows = []
        for a in self.arguments:
            style = "" if a.ok else ' style="background:#fdd"'
            values = (a.name, str(a.shape), _num(a.error_fd), _num(a.bound_fd, 1),
                      _num(a.error_jax), _num(a.bound_jax, 1), "ok" if a.ok else "FAIL",
                      a.diagnosis)  # fmt: skip
            rows.append(
                f'<tr class="{"ok" if a.ok else "fail"}"{style}>'
                + "".join(f'<td style="{cell}">{e(v)}</td>' for v in values)
                + "</tr>"
            )
        extra = [_worst_line(a) for a in self.failing() if a.worst is not None]
        extra += self._kink_lines() + [f"note: {n}" for n in self.notes]
        extra += [f"WARN: {w}" for w in self.warnings]
        extra += [f"FAIL: {f}" for f in self.findings if f != self.summary]
        verdict = "PASS" if self.ok else "FAIL"
        return (
            '<div class="bp-function-report" style="font-family:sans-serif;font-size:13px">'
            f"<p><b>{e(self.kind)} {e(self.name)}</b>: value {self.value:.12g}</p>"
            '<table style="border-collapse:collapse">'
            + "<thead><tr>"
            + "".join(f'<th style="{cell}">{e(h)}</th>' for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + "".join(f"<p>{e(x)}</p>" for x in extra)
            + f"<p><b>{verdict}</b>: {e(self.summary)}</p></div>"
        )


def _worst_line(a: ArgumentCheck) -> str:
    """The worst entry of a failing argument: its index, yours, and the references'."""
    w = a.worst or {}
    text = f"worst entry of d{a.name} at {tuple(w['index'])}"
    if w.get("left") is not None:
        return text + (
            f", on a kink: yours {w['yours']:.6g}, one-sided slopes {w['left']:.6g} (from the "
            f"left) and {w['right']:.6g} (from the right)"
        )
    text += f": yours {w['yours']:.6g}, finite differences {w['fd']:.6g}"
    return text + ("" if w.get("jax") is None else f", JAX {w['jax']:.6g}")


# --- the entry points -----------------------------------------------------------------------


def check_function(
    f: Callable[..., Any],
    grad_f: Callable[..., Any],
    *arrays: Any,
    batched: bool = False,
    jax_f: Callable[..., Any] | None = None,
    m: int | None = None,
    names: Sequence[str] | None = None,
) -> FunctionReport:
    """Check ``grad_f``, the hand-written gradient of the scalar function ``f``.

    ``f(*arrays)`` returns one number; ``grad_f(*arrays)`` returns d f / d arrays[k] for every
    k (a tuple of arrays of the arguments' shapes; a single array where there is one).
    Arrays with no gradient (integer labels, a mask, a mode flag, a parameter dict) belong
    in ``f``'s closure, not in ``arrays``: ``check_function(lambda x: loss(x, y), lambda x:
    grad(x, y), x)``; an integer, boolean or non-array argument is a TypeError that says so.
    ``f`` is called twice at the given point first: a function whose result changes from
    call to call (a dropout mask drawn anew) raises ImplementationFailed, since its finite
    differences would be differences of two random draws.

    - ``batched``: ``f`` accepts every argument with an extra leading axis of B points and
      returns B values (see the module docstring).
    - ``jax_f``: the same function written with ``jax.numpy``: its ``jax.grad`` (float64) is
      compared too, and it is the reference the diagnosis reads.
    - ``m``: the batch size, so that a factor m or 1/m is named as such.
    - ``names``: the arguments' names (default: ``f``'s parameter names, else x0, x1, ...).

    Returns a :class:`FunctionReport` (``.ok``, ``print(report)``). A call into ``f`` or
    ``grad_f`` that raises raises :class:`~reference.boundary.guard.ImplementationFailed`
    naming the member and the line; bad arguments raise TypeError or ValueError.
    """
    xs, names = _validate("check_function", f, grad_f, arrays, batched, jax_f, m, names)
    f_g = GuardedFunction(f, "f", names)
    grad_g = GuardedFunction(grad_f, "grad_f", names)
    value = _scalar(f_g, f_g(*xs, record=True))
    _same_twice(f_g, value, _scalar(f_g, f_g(*xs)), "values")
    grads = grad_g.gradients(grad_g(*xs, record=True), names)

    if batched:

        def phi(*points: np.ndarray) -> np.ndarray:
            values = f_g.value(f_g(*points), "f's batched values")
            if values.shape != (len(points[0]),):
                raise f_g.fail(
                    f"returned shape {values.shape} for a batch of {len(points[0])} points, not "
                    f"({len(points[0])},): batched=True asks for one value per point"
                )
            return values
    else:

        def phi(*points: np.ndarray) -> float:
            return _scalar(f_g, f_g(*points))

    fd = _differences(phi, xs, abs(value), batched)
    reference = None
    if jax_f is not None:
        reference = _jax_function(jax_f, xs, names)
    groups = _kink_groups(phi, xs, fd, batched)
    together = _kinks_together(phi, xs, grads, fd, batched, groups)
    return _judge("check_function", _name(f, grad_f), xs, names, grads, value, fd,
                  reference, m, [f_g, grad_g], together, groups)  # fmt: skip


def check_vjp(
    f: Callable[..., Any],
    vjp_f: Callable[..., Any],
    *arrays: Any,
    upstream: Any = None,
    seed: int = 0,
    batched: bool = False,
    jax_f: Callable[..., Any] | None = None,
    m: int | None = None,
    names: Sequence[str] | None = None,
) -> FunctionReport:
    """Check ``vjp_f``, the hand-written backward pass of the layer ``f``.

    ``f(*arrays)`` returns an array ``out``; ``vjp_f(upstream, *arrays)`` returns, for every
    input k, J_k^T upstream: the gradient of L = sum(upstream * out) with respect to
    arrays[k] (a tuple; a single array where there is one input). ``upstream`` (out's shape)
    defaults to standard normal numbers drawn with ``seed`` (from a stream of the harness's
    own, :data:`UPSTREAM_STREAM`): a wrong Jacobian shows along a random upstream gradient
    with probability one.

    A layer with several outputs returns them as a tuple of arrays (of any shapes, such as
    an LSTM step's (h, c) or attention's (out, weights)); ``upstream`` is then a tuple with
    one array per output, and L = sum_k sum(upstream[k] * out[k]).

    The other arguments are :func:`check_function`'s, and so are the rules for arguments
    without a gradient (closed over) and for a random ``f`` (refused); with ``batched``,
    ``f`` returns (B, *out.shape) for B points (each output so, for a tuple). A backward
    pass that writes into ``upstream`` (``dout``) or its inputs fails the report: the
    caller's arrays are not its to change.
    """
    xs, names = _validate("check_vjp", f, vjp_f, arrays, batched, jax_f, m, names)
    f_g = GuardedFunction(f, "f", names)
    vjp_g = GuardedFunction(vjp_f, "vjp_f", ["upstream", *names])
    outs, several = f_g.outputs(f_g(*xs, record=True), "f's output")
    again, _ = f_g.outputs(f_g(*xs), "f's output")
    _same_twice(f_g, _flat(outs), _flat(again) if len(again) == len(outs) else None, "outputs")
    us = _upstream(upstream, seed, outs, several)
    handed = tuple(us) if several else us[0]
    grads = vjp_g.gradients(vjp_g(handed, *xs, record=True), names)
    value = float(sum(np.sum(u * o) for u, o in zip(us, outs)))
    shapes = [o.shape for o in outs]

    if batched:

        def phi(*points: np.ndarray) -> np.ndarray:
            B = len(points[0])
            os_, _ = f_g.outputs(f_g(*points), "f's batched output")
            if [o.shape for o in os_] != [(B, *sh) for sh in shapes]:
                got = ", ".join(str(o.shape) for o in os_)
                want = ", ".join(str((B, *sh)) for sh in shapes)
                raise f_g.fail(
                    f"returned shape {got} for a batch of {B} points, not {want}: "
                    "batched=True asks for one output per point"
                )
            return sum(np.sum((u * o).reshape(B, -1), axis=1) for u, o in zip(us, os_))
    else:

        def phi(*points: np.ndarray) -> float:
            os_, _ = f_g.outputs(f_g(*points), "f's output")
            if [o.shape for o in os_] != shapes:
                got = ", ".join(str(o.shape) for o in os_)
                raise f_g.fail(
                    f"returned shape {got} here, {', '.join(map(str, shapes))} at the given point"
                )
            return float(sum(np.sum(u * o) for u, o in zip(us, os_)))

    scale = float(sum(np.sum(np.abs(u * o)) for u, o in zip(us, outs)))
    fd = _differences(phi, xs, scale, batched)
    reference = None
    if jax_f is not None:
        reference = _jax_vjp(jax_f, xs, us, several, names)
    groups = _kink_groups(phi, xs, fd, batched)
    together = _kinks_together(phi, xs, grads, fd, batched, groups)
    return _judge("check_vjp", _name(f, vjp_f), xs, names, grads, value, fd, reference, m,
                  [f_g, vjp_g], together, groups)  # fmt: skip


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)


def _upstream(upstream: Any, seed: Any, outs: list[np.ndarray], several: bool) -> list[np.ndarray]:
    """The upstream gradient, one array per output: the caller's (checked against the
    outputs' shapes), or standard normal numbers from ``seed``."""
    if upstream is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        rng = np.random.default_rng([UPSTREAM_STREAM, int(seed)])
        return [rng.standard_normal(o.shape) for o in outs]
    if several:
        if not isinstance(upstream, (tuple, list)) or len(upstream) != len(outs):
            raise ValueError(
                f"upstream must be a tuple of {len(outs)} arrays, one per output of f (shapes "
                f"{', '.join(str(o.shape) for o in outs)}), got {type(upstream).__name__}"
            )
        us = [_array(f"upstream[{k}]", u) for k, u in enumerate(upstream)]
    else:
        us = [_array("upstream", upstream)]
    for k, (u, o) in enumerate(zip(us, outs)):
        if u.shape != o.shape:
            which = f"upstream[{k}]" if several else "upstream"
            output = f"f's output #{k}" if several else "f's output"
            raise ValueError(f"{which} has shape {u.shape}; {output} has shape {o.shape}")
    return us


def _differences(
    phi: Callable[..., Any], xs: list[np.ndarray], scale: float, batched: bool
) -> function_fd.FunctionFD:
    """The finite differences of ``phi``; with ``batched``, an ``f`` that raises on a batch
    is told that it was handed one."""
    try:
        return function_fd.function_gradients(phi, xs, scale=lambda *_: scale, batched=batched)
    except ImplementationFailed as exc:
        if not batched or exc.finding.kind != "raised":
            raise
        finding = replace(
            exc.finding,
            message=exc.finding.message + BATCHED_HINT,
        )
        raise ImplementationFailed(finding) from None


@dataclass
class _Together:
    """Entries on a kink whose sum, moved together, falls outside the rates along them."""

    masks: list[np.ndarray]
    """Per argument, the entries moved."""
    diagnosis: str


@dataclass
class _KinkGroup:
    """The entries on a kink of one kind: convex (the slope from the right above the slope
    from the left: a maximum, a relu, a hinge under a positive upstream) or concave."""

    masks: list[np.ndarray]
    """Per argument, the entries in the group."""
    judged: bool
    """Whether ``phi`` bends only the group's way along every direction tried in them: only
    then are its entries held to their slopes, alone and together."""


DIRECTIONS = 8
"""How many random directions in a cluster of coupled kinks are tried for a bend of the other
kind."""


def _kink_groups(
    phi: Callable[..., Any], xs: list[np.ndarray], fd: function_fd.FunctionFD, batched: bool
) -> list[_KinkGroup]:
    """The convex and the concave kinks at the point, each judged or not.

    Where ``phi`` is convex in a set of entries, every subgradient lies between each entry's
    one-sided slopes, and the entries' sum between the one-sided rates along them; likewise
    where it is concave; and an entry whose kink no other entry's moves (a relu's, an
    abs's) is a function of that entry alone there. So the entries on a kink are split into
    clusters of coupled kinks (:func:`reference.oracles.function_fd.coupled_pairs`: tied
    maxima, a hinge's classes) and a cluster is judged where all its kinks are of one kind
    and ``phi`` bends only that way along random directions in its entries
    (:func:`reference.oracles.function_fd.kink_curvature`). A sum of convex and concave
    kinks that share entries (overlapping max-pooling windows under an upstream gradient of
    both signs, one entry tied in several windows) has subgradients outside those
    intervals: there, no verdict. Above COUPLED_MAX entries on kinks, none is judged.
    """
    if fd.slopes is None:
        return []
    entries = [(k, int(i)) for k in range(len(xs)) for i in np.flatnonzero(fd.on_kink(k).ravel())]
    if not entries:
        return []
    pairs = function_fd.coupled_pairs(phi, xs, entries, fd.roundoff, batched=batched)
    parent = list(range(len(entries)))

    def root(e: int) -> int:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for a, b in pairs or []:
        parent[root(a)] = root(b)
    clusters: dict[int, list[int]] = {}
    for e in range(len(entries)):
        clusters.setdefault(root(e), []).append(e)
    kinds = np.array([np.sign(fd.slopes[k][0].flat[i] - fd.slopes[k][2].flat[i])
                      for k, i in entries])  # fmt: skip
    judged = np.zeros(len(entries), dtype=bool)
    rng = np.random.default_rng(len(entries))
    for members in clusters.values() if pairs is not None else []:
        kind = kinds[members]
        if not (np.all(kind == kind[0]) and kind[0] != 0):
            continue  # kinks of both kinds coupled: neither convex nor concave
        inside = [(a, b) for a, b in pairs if a in members]
        if len(members) > 1 and not _bends_one_way(phi, xs, entries, members, inside, kind[0],
                                                   fd, batched, rng):  # fmt: skip
            continue
        judged[members] = True
    groups = []
    for sign in (1.0, -1.0):
        masks = [np.zeros(x.shape, dtype=bool) for x in xs]
        unjudged = [np.zeros(x.shape, dtype=bool) for x in xs]
        for e, (k, i) in enumerate(entries):
            if kinds[e] == sign:
                (masks if judged[e] else unjudged)[k].flat[i] = True
        if any(mk.any() for mk in masks):
            groups.append(_KinkGroup(masks, True))
        if any(mk.any() for mk in unjudged):
            groups.append(_KinkGroup(unjudged, False))
    return groups


SPREAD = 16.0
"""For each coupled pair of a cluster, its kinks are looked at two points beside the given
one too: the pair kept as it is (a tie kept a tie, so its kink stays at the point) and the
cluster's other entries moved below it, then above it, by SPREAD steps or more, so that the
pair's coupling bends alone. A sum of a large convex and a small concave kink can bend one
way along every line through the point itself, and the other way at such a point."""


def _one_hot(xs: list[np.ndarray], k: int, i: int, value: float = 1.0) -> list[np.ndarray]:
    d = [np.zeros(x.shape) for x in xs]
    d[k].flat[i] = value
    return d


def _bends_one_way(
    phi: Callable[..., Any],
    xs: list[np.ndarray],
    entries: list[tuple[int, int]],
    members: list[int],
    pairs: list[tuple[int, int]],
    sign: float,
    fd: function_fd.FunctionFD,
    batched: bool,
    rng: np.random.Generator,
) -> bool:
    """Whether ``phi`` bends only the ``sign`` way (1 convex, -1 concave) in a cluster's
    entries: along random directions in them at the point, and, for each coupled pair, along
    each of the two at the points beside it where that pair's coupling bends alone
    (:data:`SPREAD`)."""
    largest = max(abs(float(xs[k].flat[i])) for k, i in (entries[e] for e in members))
    t = float(function_fd.steps(np.array([largest]))[0])
    bases: list[tuple[list[np.ndarray], list[list[np.ndarray]]]] = []
    directions = []
    for _ in range(DIRECTIONS):
        d = [np.zeros(x.shape) for x in xs]
        for e in members:
            k, i = entries[e]
            d[k].flat[i] = rng.standard_normal()
        directions.append(d)
    bases.append((xs, directions))
    for a, b in pairs:
        for side in (-1.0, 1.0):  # the others below the pair (a maximum's ties), then above
            y = [x.copy() for x in xs]
            for e in members:
                if e not in (a, b):
                    k, i = entries[e]
                    y[k].flat[i] += side * SPREAD * t * (1.0 + abs(rng.standard_normal()))
            bases.append((y, [_one_hot(xs, *entries[a]), _one_hot(xs, *entries[b])]))
    for base, ds in bases:
        kappa, noise = function_fd.kink_curvature(phi, base, ds, fd.roundoff, batched=batched)
        with np.errstate(invalid="ignore"):
            if not np.all(sign * kappa >= -noise):
                return False
    return True


def _kinks_together(
    phi: Callable[..., Any],
    xs: list[np.ndarray],
    grads: list[np.ndarray],
    fd: function_fd.FunctionFD,
    batched: bool,
    groups: list[_KinkGroup],
) -> list[_Together]:
    """The entries of each judged group, moved together: the gradient's entries there must
    add up to a rate between the one-sided rates of ``phi`` along that direction.

    Each entry alone is held to its own one-sided slopes (:func:`_compare`); a max-pooling
    backward pass that hands the upstream gradient to every tied maximum passes that, entry
    by entry, and is wrong in sum: moving every tied entry moves the maximum at the rate of
    one. For a function convex (or concave) in the entries moved (:func:`_kink_groups`),
    every subgradient satisfies g . d <= the rate from the right along d and >= the rate
    from the left.
    """
    if any(g.shape != x.shape for g, x in zip(grads, xs)):
        return []
    found = []
    for group in groups:
        masks = [mk & np.isfinite(g) for mk, g in zip(group.masks, grads)]
        count = int(sum(mk.sum() for mk in masks))
        if not group.judged or count < 2:  # one entry alone is judged by its own slopes
            continue
        direction = [mk.astype(np.float64) for mk in masks]
        estimate, error, method, slopes = function_fd.along(
            phi, xs, direction, fd.roundoff, batched=batched
        )
        if np.isfinite(slopes).all():  # a kink along them: any rate between the two sides
            # (one side judged to cross another kink still bounds it: wider, never a false
            # alarm; each entry moved sits on a kink, so a kink along them is the usual case)
            low, high = sorted((slopes[0], slopes[2]))
            allowed = KINK_SAFETY * (slopes[1] + slopes[3])
        elif method == function_fd.CENTRAL:
            low = high = estimate
            allowed = KINK_SAFETY * error
        else:
            continue
        if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(allowed)):
            continue  # between two kinks along it, or f not finite: nothing to hold it to
        parts = np.concatenate([g[mk] for g, mk in zip(grads, masks)])
        yours = float(parts.sum())
        allowed += SUM_ROUNDING * float(np.abs(parts).sum())
        if low - allowed <= yours <= high + allowed:
            continue
        found.append(_Together(masks, _together_diagnosis(grads, fd, masks, yours, low, high)))
    return found


def _together_diagnosis(
    grads: list[np.ndarray],
    fd: function_fd.FunctionFD,
    masks: list[np.ndarray],
    yours: float,
    low: float,
    high: float,
) -> str:
    """What a sum outside the rates along the kinked entries looks like."""
    count = int(sum(mk.sum() for mk in masks))
    rate = (
        f"{low:.6g}"
        if high - low <= 1e-9 * max(abs(low), abs(high), 1e-300)
        else (f"between {low:.6g} and {high:.6g}")
    )
    full = True
    for k, (g, mk) in enumerate(zip(grads, masks)):
        right, e_right, left, e_left = (s[mk] for s in fd.slopes[k])
        steep = np.where(np.abs(right) >= np.abs(left), right, left)
        full &= bool(np.all(np.abs(g[mk] - steep) <= KINK_SAFETY * (e_right + e_left)))
    facts = (
        f"the {count} entries on a kink, moved together, change f at a rate {rate}; your "
        f"gradient's entries there add up to {yours:.6g}"
    )
    if full and abs(yours) > max(abs(low), abs(high)):
        return (
            f"every tied maximum got the full gradient: {facts}. At a tie of a maximum "
            "(max-pooling, a window of zeros after a relu) the gradient goes to one tied entry "
            "or is shared among them, never to each in full"
        )
    return (
        f"{facts}: each entry is a valid one-sided slope alone, but together they are not a "
        "subgradient"
    )


def _bound_fd(err: np.ndarray, denom: float) -> float:
    """The norm-wise bound from the entries' error bounds: FD_SAFETY ||err|| / denom."""
    if denom == 0.0:
        return FD_ROUNDING
    return min(1.0, max(FD_ROUNDING, FD_SAFETY * float(np.linalg.norm(err)) / denom))


BATCHED_HINT = (
    "; with batched=True, f is handed every argument with an extra leading axis of points "
    "(x.reshape(x.shape[0], -1) or axis=0 sums do not allow it): leave batched=False"
)
"""Appended to an exception ``f`` raised on a batch of points."""


# --- validation -----------------------------------------------------------------------------


def _array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array (a copy), or a TypeError/ValueError naming ``name``."""
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be an array, got {type(value).__name__} ({exc})") from None
    if not name.startswith("upstream") and (
        a.dtype == object or a.dtype.kind in "biuSUV" or isinstance(value, (dict, str))
    ):
        what = (
            f"holds {a.dtype} values" if a.dtype.kind in "biu" else f"is a {type(value).__name__}"
        )
        raise TypeError(
            f"{name} {what}, not float64 numbers to differentiate. Labels, indices, a mask, "
            f"a mode flag or a parameter dict have no gradient: leave them out of the arrays "
            f"and close over them, as in check_function(lambda x: f(x, y), lambda x: grad(x, y), "
            f"x). If it is data to differentiate, convert it with .astype(np.float64)"
        )
    if a.dtype == object or np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"{name} must be a float64 array, got dtype {a.dtype} (from {type(value).__name__}); "
            "convert with np.asarray(..., dtype=np.float64)"
        )
    if a.dtype != np.float64:
        raise TypeError(
            f"{name} is {a.dtype}; finite differences need float64 (convert with "
            ".astype(np.float64))"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or inf; the gradient is checked at finite points")
    return np.array(a, dtype=np.float64)


def _validate(
    entry: str,
    f: Any,
    grad: Any,
    arrays: tuple,
    batched: Any,
    jax_f: Any,
    m: Any,
    names: Any,
) -> tuple[list[np.ndarray], list[str]]:
    which = "grad_f" if entry == "check_function" else "vjp_f"
    for label, fn in (("f", f), (which, grad)):
        if not callable(fn):
            raise TypeError(f"{label} must be callable, got {type(fn).__name__}")
    if jax_f is not None and not callable(jax_f):
        raise TypeError(f"jax_f must be callable or None, got {type(jax_f).__name__}")
    if not arrays:
        raise TypeError(f"{entry} needs at least one array to differentiate with respect to")
    if not isinstance(batched, bool):
        raise TypeError(f"batched must be True or False, got {batched!r}")
    if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1):
        raise ValueError(f"m must be a positive int (the batch size) or None, got {m!r}")
    if names is None:
        names = _parameter_names(f, len(arrays))
    elif isinstance(names, str) or len(names) != len(arrays):
        raise ValueError(f"names must be a sequence of {len(arrays)} names, got {names!r}")
    names = [str(n) for n in names]
    xs = [_array(f"arrays[{k}] ({n})", a) for k, (a, n) in enumerate(zip(arrays, names))]
    return xs, names


def _parameter_names(f: Callable[..., Any], count: int) -> list[str]:
    """``f``'s positional parameter names where there are exactly ``count``, else x0, x1..."""
    try:
        params = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return params if len(params) == count else [f"x{k}" for k in range(count)]


def _name(f: Any, grad: Any) -> str:
    def one(fn: Any) -> str:
        if getattr(fn, "__name__", None) == "<lambda>":
            called = _called_by_lambda(fn)
            if called:
                return f"{called} (in a lambda)"
        return getattr(fn, "__qualname__", None) or type(fn).__name__

    return f"{one(f)} / {one(grad)}"


def _called_by_lambda(fn: Any) -> str | None:
    """The first function a lambda names (``lambda x: affine_forward(x, w, b)[0]``), found
    among its globals and the variables it closes over; None when it names none."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    cells = dict(zip(code.co_freevars, getattr(fn, "__closure__", None) or ()))
    for name in (*code.co_names, *code.co_freevars):
        if name in cells:
            try:
                value = cells[name].cell_contents
            except ValueError:  # an empty cell
                continue
        else:
            value = getattr(fn, "__globals__", {}).get(name)
        if callable(value) and not isinstance(value, type):
            return name
    return None


def _same_twice(f_g: GuardedFunction, first: Any, second: Any, what: str) -> None:
    """Refuse an ``f`` that returns different results for the same arrays: a dropout mask or
    noise drawn at every call makes every finite difference a difference of two draws."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape == b.shape and np.allclose(a, b, rtol=DETERMINISM_RTOL, atol=0.0, equal_nan=True):
        return
    gap = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("nan")
    raise f_g.fail(
        f"returned different {what} for the same arrays (two calls at the given point, apart by "
        f"up to {gap:.3g}): a random draw at every call, such as a dropout mask, leaves nothing "
        "to differentiate. Fix the randomness inside f (a seed set at every call, or one mask "
        "closed over) and give the backward pass the same mask"
    )


def _scalar(f_g: GuardedFunction, raw: Any) -> float:
    a = f_g.value(raw, "f's value")
    if a.size != 1:
        raise f_g.fail(
            f"returned an array of shape {a.shape}, not one number (check_function is for a "
            "scalar function; check_vjp checks a layer's backward pass)"
        )
    return float(a.reshape(()))


# --- JAX --------------------------------------------------------------------------------------


def _jax_function(
    jax_f: Callable[..., Any], xs: list[np.ndarray], names: list[str]
) -> tuple[float, list[np.ndarray]]:
    """jax_f's value and jax.grad with respect to every argument, in float64."""
    import jax

    from ..oracles.jax_x64 import enable_x64

    def run(*args: np.ndarray) -> tuple[Any, Any]:
        with enable_x64():
            value, grads = jax.value_and_grad(jax_f, argnums=tuple(range(len(args))))(*args)
            return np.asarray(value), [np.asarray(g) for g in grads]

    g = GuardedFunction(run, "jax_f", names)
    value, grads = g(*xs)
    return float(np.asarray(value).reshape(())), [np.asarray(x, np.float64) for x in grads]


def _jax_vjp(
    jax_f: Callable[..., Any],
    xs: list[np.ndarray],
    us: list[np.ndarray],
    several: bool,
    names: list[str],
) -> tuple[float, list[np.ndarray]]:
    """sum(u * jax_f) and jax.vjp's gradients for the upstream ``us`` (one per output), in
    float64."""
    import jax

    from ..oracles.jax_x64 import enable_x64

    def run(*args: np.ndarray) -> tuple[Any, Any]:
        with enable_x64():
            out, pullback = jax.vjp(jax_f, *args)
            outs = list(out) if several else [out]
            if len(outs) != len(us):
                return [np.asarray(o) for o in outs], None
            cot = [u.astype(o.dtype) for u, o in zip(us, outs)]
            grads = pullback(tuple(cot) if several else cot[0])
            return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]

    g = GuardedFunction(run, "jax_f", names)
    outs, grads = g(*xs)
    if grads is None or [o.shape for o in outs] != [u.shape for u in us]:
        got = ", ".join(str(o.shape) for o in outs)
        raise g.fail(f"returned shape {got}; f returned {', '.join(str(u.shape) for u in us)}")
    value = float(sum(np.sum(u * o) for u, o in zip(us, outs)))
    return value, [np.asarray(x, np.float64) for x in grads]


# --- judging ----------------------------------------------------------------------------------


def _compare(
    name: str,
    x: np.ndarray,
    a: np.ndarray,
    fd: function_fd.FunctionFD,
    k: int,
    jax_grad: np.ndarray | None,
    m: int,
    kinked: np.ndarray,
) -> ArgumentCheck:
    """One argument's hand-written gradient ``a`` against the finite differences and JAX;
    at the entries on a kink that ``kinked`` marks (those of a judged group,
    :func:`_kink_groups`), against the interval between the one-sided slopes."""
    c = ArgumentCheck(name, tuple(x.shape))
    method = fd.method[k]
    c.one_sided = int(((method != 0) & (method != EXCLUDED)).sum())
    c.on_kink = int(kinked.sum())
    c.excluded = int((method == EXCLUDED).sum()) - c.on_kink
    if a.shape != x.shape:
        c.diagnosis = diagnosis.shape_mismatch(name, a.shape, x.shape)
        return c
    n = fd.grads[k]
    valid = method != EXCLUDED
    denom = float(np.linalg.norm(a[valid]) + np.linalg.norm(n[valid]))
    if valid.any():
        c.error_fd = diagnosis.relative_error(a[valid], n[valid])
        c.bound_fd = _bound_fd(fd.errors[k][valid], denom)
        c.fd_ok = bool(c.error_fd <= c.bound_fd)
    truth = np.where(valid, n, a)
    if jax_grad is not None:
        if jax_grad.shape != x.shape:
            raise ValueError(
                f"jax_f's gradient of {name} has shape {jax_grad.shape}, not {x.shape}"
            )
        c.error_jax = diagnosis.relative_error(a[valid], jax_grad[valid])
        c.bound_jax = JAX_BOUND
        c.jax_ok = bool(c.error_jax <= c.bound_jax)
        truth = np.where(valid, jax_grad, a)
    c.ok = bool(c.jax_ok) if c.jax_ok is not None else c.fd_ok is not False
    if not np.isfinite(a).all():
        c.ok = False
    outside, beyond = _outside_slopes(a, fd.slopes[k] if fd.slopes else None, kinked)
    c.outside = int(outside.sum())
    gap = np.abs(a - truth)
    gap[~np.isfinite(gap)] = np.inf
    if c.outside and (c.ok or not np.any(gap > 0)):
        gap = beyond  # the kink is what fails: show its worst entry
    idx = np.unravel_index(int(np.argmax(gap)), a.shape) if a.size else ()
    if a.size:
        c.worst = {
            "index": [int(i) for i in idx],
            "yours": float(a[idx]),
            "fd": float(n[idx]),
            "jax": None if jax_grad is None else float(jax_grad[idx]),
        }
        if kinked[idx]:
            at = fd.slopes[k][(slice(None), *idx)]
            c.worst["right"], c.worst["left"] = float(at[0]), float(at[2])
    if c.outside:
        was_ok, c.ok, c.fd_ok = c.ok, False, False
        if was_ok:
            c.diagnosis = _outside_diagnosis(name, a, fd.slopes[k], outside, c.on_kink)
            return c
    if not c.ok and not np.isfinite(truth[~np.isfinite(a)]).any() and not valid.any():
        c.diagnosis = f"d{name} holds NaN or inf, and f is not finite near the point either"
    elif not c.ok:
        if c.outside:  # against the steeper slope there: a sign or a factor shows whole
            right, left = fd.slopes[k][0], fd.slopes[k][2]
            steep = np.where(np.abs(right) >= np.abs(left), right, left)
            truth = np.where(outside, steep, truth)
        c.diagnosis = diagnosis.diagnose(a, truth, m, name, within="function")
        if c.outside:
            c.diagnosis += f"; and {c.outside} entries on a kink lie outside their one-sided slopes"
    elif c.fd_ok is False:
        c.diagnosis = "agrees with JAX; finite differences disagree (kink or precision)"
    elif c.fd_ok is None and c.jax_ok is None:
        c.diagnosis = (
            "ok (every entry on a kink, each within its one-sided slopes)"
            if c.on_kink
            else "ok (no entry could be compared: between kinks, or f not finite nearby)"
        )
    elif c.bound_fd == 1.0:
        c.diagnosis = "ok (inconclusive: the gradient is below the differences' noise)"
    else:
        c.diagnosis = "ok"
    return c


def _outside_slopes(
    a: np.ndarray, slopes: np.ndarray | None, kinked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where ``a`` lies outside [min, max] of the one-sided slopes (widened by their error
    bounds) at the entries on a kink, and how far beyond (0 elsewhere)."""
    beyond = np.zeros(a.shape)
    if slopes is None or not kinked.any():
        return np.zeros(a.shape, dtype=bool), beyond
    right, e_right, left, e_left = (s[kinked] for s in slopes)
    low, high = np.minimum(right, left), np.maximum(right, left)
    allowed = KINK_SAFETY * (e_right + e_left) + SUM_ROUNDING * np.abs(a[kinked])
    g = a[kinked]
    with np.errstate(invalid="ignore"):
        distance = np.maximum(low - g, g - high)
        out = ~(distance <= allowed)  # NaN in the gradient is outside too
    beyond[kinked] = np.where(out, np.where(np.isfinite(distance), distance, np.inf), 0.0)
    return beyond > 0, beyond


def _outside_diagnosis(
    name: str, a: np.ndarray, slopes: np.ndarray, outside: np.ndarray, on_kink: int
) -> str:
    """A sentence on entries of d``name`` outside the interval of their one-sided slopes."""
    right, left = slopes[0][outside], slopes[2][outside]
    count = int(outside.sum())
    text = (
        f"{count} of the {on_kink} entries of d{name} on a kink lie outside the interval "
        "between the slopes from the left and from the right, where every subgradient lies"
    )
    g = a[outside]
    if np.all(g == 0):
        return text + ": yours are 0 there, and f moves on both sides (a term left out?)"
    steep = np.where(np.abs(right) >= np.abs(left), right, left)
    ratio = g / np.where(steep == 0, np.nan, steep)
    with np.errstate(invalid="ignore"):
        if np.all(np.abs(ratio + 1) <= 1e-6):
            return text + ": yours have the opposite sign (the sign is flipped)"
        c = float(np.nanmedian(ratio))
        if np.isfinite(c) and np.all(np.abs(ratio - c) <= 1e-6 * abs(c)):
            return text + f": yours are {c:.6g} times the steeper slope"
    return text


def _judge(
    kind: str,
    name: str,
    xs: list[np.ndarray],
    names: list[str],
    grads: list[np.ndarray],
    value: float,
    fd: function_fd.FunctionFD,
    reference: tuple[float, list[np.ndarray]] | None,
    m: int | None,
    guarded: list[GuardedFunction],
    together: list[_Together],
    groups: list[_KinkGroup],
) -> FunctionReport:
    jax_value, jax_grads = reference if reference is not None else (None, None)
    judged = [np.zeros(x.shape, dtype=bool) for x in xs]
    for group in groups:
        if group.judged:
            judged = [j | mk for j, mk in zip(judged, group.masks)]
    rows = [
        _compare(n, x, a, fd, k, None if jax_grads is None else jax_grads[k], m or 1, judged[k])
        for k, (n, x, a) in enumerate(zip(names, xs, grads))
    ]
    for group in together:  # entries on a kink that do not add up: their arguments fail
        for k, (row, mask) in enumerate(zip(rows, group.masks)):
            if mask.any():
                if row.ok:
                    row.diagnosis = group.diagnosis
                    idx = tuple(int(i) for i in np.argwhere(mask)[0])
                    at = fd.slopes[k][(slice(None), *idx)]
                    row.worst = {"index": list(idx), "yours": float(grads[k][idx]),
                                 "fd": float("nan"), "jax": None, "right": float(at[0]),
                                 "left": float(at[2])}  # fmt: skip
                row.ok, row.fd_ok = False, False
    findings = [
        i.describe() + (UPSTREAM_HINT if i.argument == "upstream" else "")
        for g in guarded
        for i in g.impurities
    ]
    if not np.isfinite(value):
        findings.insert(0, (
            f"f is not finite at the given point (the checked value is {value}): no gradient "
            "can be checked there. An overflow (exp of a large number: subtract the row's "
            "maximum first) or a log of 0?"
        ))  # fmt: skip
    notes = [line for g in guarded for line in g.warning_lines()]
    value_ok = True
    if jax_value is not None:
        value_ok = abs(jax_value - value) <= VALUE_RTOL * max(abs(value), abs(jax_value)) + 1e-300
        if not value_ok:
            findings.append(
                f"jax_f is not f: {jax_value:.12g} vs {value:.12g} at the given point; the JAX "
                "comparison is of another function's gradient"
            )
    if fd.calls and kind == "check_vjp":
        notes.append("value is sum(upstream * f): the loss whose gradient the backward pass gives")
    failing = [r.name for r in rows if not r.ok]
    ok = not failing and not findings and value_ok
    if not np.isfinite(value):
        summary = findings[0]
    elif not value_ok and all(r.fd_ok is not False for r in rows):
        summary = (
            "f and jax_f are different functions, and your gradients are those of f (finite "
            "differences agree): the backward pass matches the forward pass. If jax_f is the "
            "function you meant, the mistake is in f, the forward pass"
        )
    elif failing:
        summary = f"the gradient of {', '.join(failing)} is wrong"
        top = next(r for r in rows if not r.ok)
        summary += f": {top.diagnosis}"
    elif findings:
        summary = findings[0]
    else:
        summary = "the gradient agrees" if len(rows) == 1 else f"all {len(rows)} gradients agree"
        summary += " with finite differences" + (" and JAX" if jax_grads is not None else "")
    return FunctionReport(
        ok=ok,
        kind=kind,
        name=name,
        arguments=rows,
        value=value,
        summary=summary,
        one_sided=fd.one_sided,
        on_kink=sum(r.on_kink for r in rows),
        excluded=fd.excluded + fd.kinks - sum(r.on_kink for r in rows),
        calls=sum(g.calls for g in guarded),
        jax_value=jax_value,
        findings=findings,
        notes=notes,
    )
