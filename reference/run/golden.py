"""Golden files: the gradients of fixed networks recorded to an ``.npz``, and the drift of a
later version against them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..boundary.isolation import Failed
from ..boundary.loading import ImplementationError
from ..inputs.problems import Problem
from ..inputs.scope import (
    Scope,
)
from ..judging import checks
from ..tolerances import GOLDEN_EPS_FACTOR, GOLDEN_RTOL
from .jobs import as_arrays, gradients_of
from .runner import Runner
from .session import UsageError

GOLDEN_DEPTHS = (1, 4)
"""The depths the golden networks cycle through, every one of them (in the scope)."""

GOLDEN_OUTPUTS = (1, 3)
"""The output widths each (output activation, cost) pair is recorded at: one, and several
(a mistake in the output delta can show only with several); an output that needs two or
more (softmax, one-hot labels) starts at 2."""


def golden_rtol(dtype: Any = np.float64) -> float:
    """The default ``--golden-rtol`` for gradients computed in ``dtype``:
    :data:`GOLDEN_RTOL` in float64, :data:`GOLDEN_EPS_FACTOR` eps of a lower precision."""
    try:
        eps = float(np.finfo(np.dtype(dtype)).eps)
    except (TypeError, ValueError):
        raise ValueError(f"dtype must be a floating dtype, got {dtype!r}") from None
    return max(GOLDEN_RTOL, GOLDEN_EPS_FACTOR * eps)


def _ordered(names: Any, table: list[str]) -> list[str]:
    return [n for n in table if n in names]


def golden_problems(scope: Scope | None = None) -> list[Problem]:
    """A fixed set of networks whose gradients a golden file records (independent of
    --seed): every (output activation, cost) pair of the tables, each at one output and at
    several (:data:`GOLDEN_OUTPUTS`), the depths (:data:`GOLDEN_DEPTHS`) and the hidden
    activations taken in turn, so that every depth and every hidden activation appears.
    With a ``scope``, the same construction from the names, widths and depths inside it.
    A network's data depend on its own name only: a scope that admits the names of an older
    version gives that version's networks."""
    from ..inputs.problems import output_only
    from ..registry import activation_names

    scope = scope if scope is not None else Scope.everything()
    table = activation_names()
    hidden = [a for a in _ordered(scope.names("activations"), table) if not output_only(a)]
    lo = max(GOLDEN_DEPTHS[0], scope.min_depth or GOLDEN_DEPTHS[0])
    hi = min(GOLDEN_DEPTHS[1], scope.max_depth or GOLDEN_DEPTHS[1])
    depths = [d for d in range(lo, hi + 1) if d == 1 or hidden] or [lo]
    problems: list[Problem] = []
    for j, family in enumerate(dict.fromkeys(_golden_families(scope, table))):
        problem = _golden_problem(j, *family, depths[j % len(depths)], hidden)
        if scope.admits(problem):
            problems.append(problem)
    return problems


def _golden_families(scope: Scope, table: list[str]) -> list[tuple[str, str, int]]:
    """``(output activation, cost, output width)`` of every golden network inside
    ``scope``, in the tables' order, each pair at :data:`GOLDEN_OUTPUTS` (or the scope's
    widths), none narrower than the pair needs."""
    from ..inputs.problems import compatible_costs, needs_one_hot, output_only

    families = []
    for out in _ordered(scope.names("output_activations"), table):
        for cost in compatible_costs(out):
            if cost not in scope.names("costs"):
                continue
            least = 2 if output_only(out) or needs_one_hot(out, cost) else 1
            widths = sorted(scope.outputs) if scope.outputs is not None else GOLDEN_OUTPUTS
            families += [(out, cost, max(w, least)) for w in dict.fromkeys(widths) if w >= least
                         or scope.outputs is None]  # fmt: skip
    return families


def _golden_problem(j: int, out: str, cost: str, width: int, L: int, hidden: list[str]) -> Problem:
    """The ``j``-th golden network: ``L`` layers, the hidden activations and widths taken
    in turn from ``j``, its parameters and data drawn from its own name."""
    import itertools
    import zlib

    from ..inputs.problems import needs_one_hot, one_hot_labels, with_relu_margin

    acts = [hidden[(j + l) % len(hidden)] for l in range(L - 1)] + [out]
    sizes = [3, *[2 + (j + l) % 3 for l in range(L - 1)], width]
    name = f"golden {'-'.join(map(str, sizes))} {'/'.join(acts)} {cost}"
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    m = 4
    params = [
        (rng.normal(0, 1 / np.sqrt(p), (n, p)), rng.normal(0, 0.5, (n, 1)))
        for p, n in itertools.pairwise(sizes)
    ]
    X = rng.normal(0, 1, (sizes[0], m))
    if needs_one_hot(out, cost):
        Y = one_hot_labels(rng, width, m)
    elif cost == "bce":
        Y = rng.uniform(0, 1, (width, m))
    else:
        Y = rng.normal(0, 1, (width, m))
    params = with_relu_margin(params, X, acts)
    return Problem(params, X, Y, acts, cost, name=name)


def _golden_gradients(runner: Runner, problems: list[Problem]) -> list[Any]:
    done = runner.run(gradients_of, problems)
    if isinstance(done, Failed):
        raise ImplementationError(f"{runner.name}: {done.finding.describe()}")
    for p, grads in zip(problems, done):
        if as_arrays(grads) is None:
            raise ImplementationError(f"{runner.name} on {p.name}: {grads}")
    return done


def golden_save(runner: Runner, path: Path, scope: Scope | None = None) -> int:
    """Record the gradients of :func:`golden_problems` (inside ``scope``) to ``path``."""
    arrays: dict[str, np.ndarray] = {}
    problems = golden_problems(scope)
    for k, grads in enumerate(_golden_gradients(runner, problems)):
        for l, (dW, db) in enumerate(grads, start=1):
            arrays[f"{k}/layer{l}/W"] = np.asarray(dW, np.float64)
            arrays[f"{k}/layer{l}/b"] = np.asarray(db, np.float64)
    arrays["meta"] = np.array(
        json.dumps(
            {
                "networks": [p.name for p in problems],
                "layers": [len(p.params) for p in problems],
                "families": [
                    {"activations": p.activations, "cost": p.cost, "outputs": p.Y.shape[0]}
                    for p in problems
                ],
                "impl": runner.name,
                "scope": scope.to_dict() if scope is not None else {},
            }
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return len(problems)


def golden_scope_flags(meta: dict[str, Any], scope: Scope | None) -> str | None:
    """The scope flags (``--activations ... --output-activations ... --costs ...``) under
    which this version checks exactly the networks a golden file records (one saved before
    a name was added), or None when no such flags exist."""
    families = meta.get("families")
    if not isinstance(families, list) or not families:
        return None
    try:
        hidden = sorted({a for f in families for a in f["activations"][:-1]})
        outs = sorted({f["activations"][-1] for f in families})
        costs = sorted({f["cost"] for f in families})
    except (KeyError, TypeError, IndexError):
        return None
    flags = {"output_activations": outs, "costs": costs}
    if hidden:
        flags["activations"] = hidden
    candidate = Scope.read(flags, "the golden file's names")
    if scope is not None:
        candidate = candidate.over(scope)
    try:
        if [p.name for p in golden_problems(candidate)] != meta.get("networks"):
            return None
    except (ValueError, KeyError):
        return None
    words = [f"--{key.replace('_', '-')} {','.join(flags[key])}"
             for key in ("activations", "output_activations", "costs") if key in flags]  # fmt: skip
    return " ".join(words)


def _read_golden(path: Path, scope: Scope | None = None) -> dict[str, np.ndarray]:
    if not path.exists():
        raise UsageError(f"golden file {path} does not exist (make it with --golden save {path})")
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as exc:  # truncated, empty, or not ours: all the same to the user
        raise UsageError(
            f"{path} is not a golden file written by backprop-check --golden save "
            f"({type(exc).__name__}: {exc})"
        ) from None
    want = [p.name for p in golden_problems(scope)]
    if meta.get("networks") != want:
        now = scope.describe() if scope is not None else "everything"
        then = Scope.read(meta.get("scope") or None, "the golden file's scope").describe()
        flags = golden_scope_flags(meta, scope)
        raise UsageError(
            f"golden file {path} records other networks than this version checks"
            + (f" (saved for the scope {then}, checked for {now})" if now != then else "")
            + (
                f"; it records the networks of these names only: compare it with {flags}"
                if flags
                else "; save it again with this version (--golden save)"
            )
        )
    return arrays


def golden_compare(
    runner: Runner, path: Path, tolerance: float | None = None, scope: Scope | None = None
) -> tuple[bool, list[str]]:
    """Drift per network and layer against a saved golden file, ||now - then|| / ||then||,
    against ``tolerance`` (None: :func:`golden_rtol` of the precision the gradients come
    back in); the last line names the worst array and, in it, the entry that moved most."""
    ok, lines, _ = golden_results(runner, path, tolerance, scope)
    return ok, lines


def golden_results(
    runner: Runner, path: Path, tolerance: float | None = None, scope: Scope | None = None
) -> tuple[bool, list[str], list[tuple[str, checks.CheckResult]]]:
    """:func:`golden_compare`'s verdict and lines, and one check result per network (``same
    as PATH``, where the network's name), for the run's JSON, JUnit and CI outputs."""
    if tolerance is not None and not 0 < tolerance < float("inf"):
        raise ValueError(f"tolerance must be a number > 0, got {tolerance!r}")
    saved = _read_golden(path, scope)
    problems = golden_problems(scope)
    done = _golden_gradients(runner, problems)
    if tolerance is None:
        tolerance = _tolerance_for(done, scope)
    lines, ok = [], True
    results: list[tuple[str, checks.CheckResult]] = []
    worst: tuple[float, str] | None = None
    for k, (p, grads) in enumerate(zip(problems, done)):
        _check_recorded(saved, k, p, path)
        mine: tuple[float, str] | None = None
        for l, name, drift, entry in _drifts(saved, k, grads):
            bad = not drift <= tolerance
            ok &= not bad
            lines.append(
                f"  {'DRIFT' if bad else 'same ':<5} {p.name:<40} "
                f"layer {l} d{name}: drift {drift:.2e}"
            )
            where = f"layer {l} d{name}, {entry}"
            if mine is None or not drift <= mine[0]:
                mine = (drift, where)
            if worst is None or not drift <= worst[0]:
                worst = (drift, f"{p.name} {where}")
        if mine is not None:
            results.append((p.name, _network_result(mine, tolerance, path)))
    if worst is not None:
        lines.append(
            f"  worst: {worst[1]}; relative difference {worst[0]:.2e} (--golden-rtol {tolerance:g})"
        )
    return ok, lines, results


def _tolerance_for(done: list[Any], scope: Scope | None) -> float:
    """:func:`golden_rtol` of the declared precision, else of the lowest the gradients came
    back in."""
    kinds = [np.asarray(a).dtype for grads in done for pair in grads for a in pair]
    floats = [k for k in kinds if np.issubdtype(k, np.floating)] or [np.dtype(np.float64)]
    if scope is not None and scope.dtype is not None:
        floats.append(np.dtype(scope.dtype))
    return golden_rtol(min(floats, key=lambda k: np.finfo(k).bits))


def _check_recorded(saved: dict[str, np.ndarray], k: int, p: Problem, path: Path) -> None:
    """A usage error unless the file records exactly network ``k``'s layers."""
    recorded = sorted(key for key in saved if key.startswith(f"{k}/"))
    expected = sorted(f"{k}/layer{l}/{n}" for l in range(1, len(p.params) + 1) for n in "Wb")
    if recorded != expected:
        raise UsageError(
            f"golden file {path} records {len(recorded) // 2} layers for {p.name}, "
            f"which has {len(p.params)}: was it saved by this version?"
        )


def _drifts(
    saved: dict[str, np.ndarray], k: int, grads: list[Any]
) -> Iterator[tuple[int, str, float, str]]:
    """``(layer, "W" or "b", drift, the entry that moved most)`` for each of network ``k``'s
    arrays, layer by layer."""
    for l, (dW, db) in enumerate(grads, start=1):
        for name, now in (("W", dW), ("b", db)):
            drift, entry = _drift(np.asarray(now, np.float64), saved[f"{k}/layer{l}/{name}"])
            yield l, name, drift, entry


def _drift(now: np.ndarray, then: np.ndarray) -> tuple[float, str]:
    """||now - then|| / ||then|| (inf for another shape), and the entry that moved most."""
    if now.shape != then.shape or not np.isrealobj(then):
        return float("inf"), f"shape {now.shape} now, {then.shape} recorded"
    drift = float(np.linalg.norm(now - then) / max(np.linalg.norm(then), 1e-300))
    if not now.size:
        return drift, ""
    gap = np.abs(now - then)
    gap[~np.isfinite(gap)] = np.inf
    i = np.unravel_index(int(np.argmax(gap)), now.shape)
    entry = (
        f"entry {tuple(int(j) for j in i)}: {float(now[i]):.10g} now, "
        f"{float(then[i]):.10g} recorded"
    )
    return drift, entry


def _network_result(mine: tuple[float, str], tolerance: float, path: Path) -> checks.CheckResult:
    """A network's ``same as PATH`` check: its largest drift against ``tolerance``."""
    fine = mine[0] <= tolerance
    text = (
        f"{'largest drift' if fine else 'drifted at'} {mine[1]}; relative difference "
        f"{mine[0]:.2e} {'<=' if fine else '>'} --golden-rtol {tolerance:g}"
    )
    return checks.CheckResult(f"same as {path.name}", fine, text)
