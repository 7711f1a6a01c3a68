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
(:func:`.subgradients.kinks_together`: the tie of a maximum). Every
call into the user's code goes through :mod:`reference.boundary.functions`: copies in, the
caller's arrays never changed, an exception names the member and the user's line.

``batched=True`` declares that ``f`` accepts a batch: every argument with one extra leading
axis of B points, returning B values (``check_function``) or an array (B, *out)
(``check_vjp``); NumPy's broadcasting matmul (``x @ w``) and ``axis=-1`` reductions
usually make a layer batch-ready. The finite differences then cost one call per chunk of
points instead of four calls per entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..boundary.functions import GuardedFunction
from ..boundary.guard import ImplementationFailed
from ..oracles import function_fd
from ..tolerances import FD_ROUNDING as FD_ROUNDING  # the bound's floor, read here too
from .function_args import as_array, function_name, same_twice, scalar, validate
from .function_report import FunctionReport
from .function_verdict import UPSTREAM_HINT as UPSTREAM_HINT  # the finding's hint, read here too
from .function_verdict import judge
from .subgradients import kink_groups, kinks_together

UPSTREAM_STREAM = 0x6A7C
"""The default upstream gradient is drawn from ``default_rng([UPSTREAM_STREAM, seed])``, a
stream of its own: with ``default_rng(seed)`` it would equal the caller's first array whenever
both use the same seed (x = upstream makes x^T upstream symmetric, and a transposed dw right)."""

BATCHED_HINT = (
    "; with batched=True, f is handed every argument with an extra leading axis of points "
    "(x.reshape(x.shape[0], -1) or axis=0 sums do not allow it): leave batched=False"
)
"""Appended to an exception ``f`` raised on a batch of points."""


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
    xs, names = validate("check_function", f, grad_f, arrays, batched, jax_f, m, names)
    f_g = GuardedFunction(f, "f", names)
    grad_g = GuardedFunction(grad_f, "grad_f", names)
    value = scalar(f_g, f_g(*xs, record=True))
    same_twice(f_g, value, scalar(f_g, f_g(*xs)), "values")
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
            return scalar(f_g, f_g(*points))

    fd = _differences(phi, xs, abs(value), batched)
    reference = None
    if jax_f is not None:
        reference = _jax_function(jax_f, xs, names)
    groups = kink_groups(phi, xs, fd, batched)
    together = kinks_together(phi, xs, grads, fd, batched, groups)
    return judge("check_function", function_name(f, grad_f), xs, names, grads, value, fd,
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
    xs, names = validate("check_vjp", f, vjp_f, arrays, batched, jax_f, m, names)
    f_g = GuardedFunction(f, "f", names)
    vjp_g = GuardedFunction(vjp_f, "vjp_f", ["upstream", *names])
    outs, several = f_g.outputs(f_g(*xs, record=True), "f's output")
    again, _ = f_g.outputs(f_g(*xs), "f's output")
    same_twice(f_g, _flat(outs), _flat(again) if len(again) == len(outs) else None, "outputs")
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
    groups = kink_groups(phi, xs, fd, batched)
    together = kinks_together(phi, xs, grads, fd, batched, groups)
    return judge("check_vjp", function_name(f, vjp_f), xs, names, grads, value, fd, reference, m,
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
        us = [as_array(f"upstream[{k}]", u) for k, u in enumerate(upstream)]
    else:
        us = [as_array("upstream", upstream)]
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
