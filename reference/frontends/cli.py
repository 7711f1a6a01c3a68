"""``backprop-check``: verify a backprop implementation and say what is wrong.

With no arguments it checks the built-in implementation on every valid
activation/cost combination of the seed's 2-3-2-1 network and on seeded random
networks, with the gradient checker and the non-gradient checks. Exit status:
0 when there is no error (warnings and conventions are listed), 1 on an error (on
anything listed, with ``--strict``), 2 on a usage error or a module that cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..boundary.guard import Finding
from ..boundary.isolation import Failed, LoadFailed, Worker
from ..boundary.loading import ImplementationError, load_impl
from ..inputs import combinations
from ..inputs.penalties import penalty_problems
from ..inputs.problems import Problem, random_problem, seed_problem
from ..inputs.scope import (
    DTYPES,
    KEYS,
    LAYOUTS,
    Scope,
    ScopeError,
    from_pyproject,
    random_problem_in,
)
from ..judging import checks, diagnosis
from ..judging.checker import ATTRIBUTIONS, Report, failed_report
from .jobs import (
    InProcess,
    WithDtype,
    as_arrays,
    check_network,
    fixed_checks,
    gradients_of,
    whole_run_consistency,
)
from .junit import Timed, write_junit  # noqa: F401 (cli.write_junit, as before)
from .scaling import parse_shard, run_networks


class UsageError(Exception):
    """A mistake on the command line; exit status 2."""


def default_problems(seed: int, networks: int, scope: Scope | None = None) -> list[Problem]:
    """The activation/cost combinations on the seed's network (every one, or a pairwise
    covering set once there are many: :mod:`reference.inputs.combinations`), then ``networks``
    random ones; with a ``scope``, only the combinations inside it, and random networks drawn
    inside it."""
    from ..registry import activation_names

    names = sorted(activation_names())

    def keep(acts: tuple[str, str, str], cost: str) -> bool:
        return scope is None or scope.admits(seed_problem(acts, cost, seed=seed))

    out = [
        seed_problem(acts, cost, seed=seed)
        for acts, cost in combinations.seed_combinations(names, keep)
    ]
    rng = np.random.default_rng(seed)
    for k in range(networks):
        name = f"random #{k + 1}"
        if scope is None:
            out.append(random_problem(rng, depth=(1, 4), width=(1, 6), samples=(2, 6), name=name))
        else:
            out.append(random_problem_in(rng, scope, name=name))
    return out


def seed_combinations() -> int:
    """How many seed networks the default run has before a scope filters them."""
    return len(default_problems(0, 0))


def undrawn(seed: int, scope: Scope) -> int:
    """How many of the default run's seed networks (before a scope filters them) ``scope``
    leaves out: the JUnit file's skipped "not in scope" suites, one each. (A scoped run
    covers the pairs of its own names, so it may check seed networks the unscoped set does
    not hold; those are not counted here.)"""
    return sum(not scope.admits(p) for p in default_problems(seed, 0))


class Progress:
    """A progress bar on stderr, shown only on a terminal and only once a run passes a second."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr  # as it is now, not at import
        self.enabled = enabled and self.stream.isatty()
        self.start = time.perf_counter()
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled or time.perf_counter() - self.start < 1.0:
            return
        filled = int(30 * done / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} checks")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


WHOLE_RUN = "whole run"
"""Where the run's own check (repeatability over every call the boundary saw) is reported;
a shard names its own (:func:`~reference.frontends.scaling.whole_run_label`)."""

HANGS_IN_A_ROW = 3
"""Networks in a row whose check ran past the time limit before the rest of the run is not
waited on: code that hangs on every network would otherwise cost the limit on each (38
networks at the default 60 s is 38 minutes)."""


def _timed_out(done: Any) -> bool:
    return isinstance(done, Failed) and done.finding.kind == "timeout"


def _not_run(last: Finding) -> Finding:
    """The finding of a job left out after :data:`HANGS_IN_A_ROW` time-outs in a row."""
    return Finding(
        "timeout", last.member,
        f"not run: {last.member} ran past the time limit on the {HANGS_IN_A_ROW} networks "
        "before this one, so the rest of the run was not waited on",
        exception=last.exception, where=last.where,
    )  # fmt: skip


def run_checks(
    runner: Any,
    problems: list[Problem],
    progress: Progress,
    scope: Scope | None = None,
    relu_at_zero: float | None = None,
    sink: Any = None,
) -> dict[str, Any]:
    """Gradient reports for every problem, non-gradient checks on the seed network and on the
    random ones, the fixed checks, and the whole run's consistency; each through ``runner``
    (a :class:`~reference.boundary.isolation.Worker` or an in-process runner). A network whose
    job hung or ended the worker gets a failing report naming the member, and the run goes on.
    ``problems`` may be any iterable. A ``sink`` (:class:`~reference.frontends.streaming.
    Stream`) supplies the lists the networks and checks go into: it writes each network out
    as it comes and keeps it compact."""
    reports: list[tuple[Problem, Report]] = [] if sink is None else sink.reports
    unsupported: list[tuple[Problem, Report]] = [] if sink is None else sink.unsupported
    results: list[tuple[str, checks.CheckResult]] = [] if sink is None else sink.results
    checked_one = False
    hung: list[Finding] = []  # the time-outs in a row, up to the last network
    returned: Problem | None = None  # the first network whose check the code answered
    for k, problem in enumerate(problems):
        with_checks = not checked_one or problem.name.startswith("random")
        if len(hung) >= HANGS_IN_A_ROW:  # it hangs on every network: do not wait on the rest
            done: Any = Failed(_not_run(hung[-1]))
        else:
            done = runner.run(check_network, problem, with_checks)
            hung = [*hung, done.finding] if _timed_out(done) else []
        if isinstance(done, Failed):
            network = {"sizes": problem.sizes, "activations": problem.activations,
                       "cost": problem.cost, "m": problem.m}  # fmt: skip
            done.finding.network = problem.describe()
            reports.append((problem, failed_report(done.finding, network, runner.name)))
        else:
            report, found = done
            if report.attribution == "unsupported":
                unsupported.append((problem, report))
                progress.update(k + 1)
                continue
            reports.append((problem, report))
            if returned is None and report.finding is None:
                returned = problem
            results.extend((problem.name, c) for c in found)
            checked_one |= with_checks and bool(found)
        progress.update(k + 1)
    stopped = len(hung) >= HANGS_IN_A_ROW
    fixed = Failed(_not_run(hung[-1])) if stopped else runner.run(fixed_checks, scope, relu_at_zero)
    if isinstance(fixed, Failed):
        found = fixed.finding
        results.extend(
            ("fixed", checks.CheckResult(name, False, found.describe(), found.to_dict()))
            for name in checks.FIXED_CHECKS
        )
    else:
        results.extend(("fixed", c) for c in fixed)
    if returned is None or stopped:  # no call came back: nothing was repeated to compare
        why = (
            f"{hung[-1].member} ran past the time limit on {HANGS_IN_A_ROW} networks in a row"
            if stopped else "no call into the implementation returned"
        )  # fmt: skip
        results.append((WHOLE_RUN, checks.CheckResult("repeatability", None, f"not run: {why}")))
    else:
        seen = runner.run(whole_run_consistency, returned)
        if not isinstance(seen, Failed):
            results.append(
                (
                    WHOLE_RUN,
                    checks.CheckResult("repeatability", not seen, seen[0] if seen else
                                       "every repeated call returned what it did before"),
                )
            )  # fmt: skip
    progress.close()
    ok = all(r.ok for _, r in reports) and not any(c.is_error for _, c in results)
    return {
        "ok": ok,
        "reports": reports,
        "checks": results,
        "unsupported": unsupported,
        "printed": runner.printed(),
    }


_LABELS = {"error": "FAIL", "warning": "WARN", "convention": "NOTE"}
"""How each severity of a failed check is marked in the terminal."""


def summary_line(outcome: dict[str, Any], impl: str) -> str:
    reports, results = outcome["reports"], outcome["checks"]
    bad_nets = sum(not r.ok for _, r in reports)
    bad_checks = [c for _, c in results if c.is_error]
    notes = sorted({f"{c.severity} {c.name}" for _, c in results
                    if c.ok is False and not c.is_error})  # fmt: skip
    if any(r.conventions for _, r in reports):
        notes.append("convention cost scale")
    if any(r.warnings for _, r in reports):
        notes.append("warning saturated loss")
    verdict = "PASS" if outcome["ok"] else "FAIL"
    applicable = [c for _, c in results if c.ok is not None]
    outside = outcome.get("out_of_scope", 0) + len(outcome.get("unsupported", []))
    return (
        f"{verdict}: {impl}: {len(reports) - bad_nets}/{len(reports)} networks' gradients and "
        f"losses agree with finite differences and JAX"
        + (f" ({outside} not in scope)" if outside else "")
        + f"; {len(applicable) - len(bad_checks)}/{len(applicable)} other checks hold"
        + (f" (failed: {', '.join(sorted({c.name for c in bad_checks}))})" if bad_checks else "")
        + (f"; {', '.join(notes)} (not errors; --strict fails them)" if notes else "")
    )


def suggest_scope(
    supported: list[tuple[Problem, Report]],
    unsupported: list[tuple[Problem, Report]],
    declared: Scope | None = None,
) -> str:
    """The declaration that admits the networks that ran and none that raised
    NotImplementedError (as far as their activations, costs, output widths and depths tell),
    naming only what ``declared`` (the run's scope) does not already say
    (:meth:`~reference.inputs.scope.Scope.suggest`)."""
    declared = declared if declared is not None else Scope()
    if not supported:
        return "SUPPORTS = {...} in the module (see the README's scope section)"
    keys = declared.suggest([p for p, _ in supported], [p for p, _ in unsupported])
    if not keys:
        return ("nothing SUPPORTS can say: the networks that ran and those that raised differ "
                "in no key of it")  # fmt: skip
    if not declared.to_dict():  # nothing declared anywhere
        return f"SUPPORTS = {keys!r} in the module"
    return f"{keys!r} added to the module's SUPPORTS (what it declares already stays)"


def _run_scope(outcome: dict[str, Any]) -> Scope:
    """The scope the run was drawn in, as its outcome records it (nothing: none declared)."""
    try:
        return Scope.read(outcome.get("scope") or None, "the run's scope")
    except ScopeError:
        return Scope()


_NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?|[-+]?\d+e[-+]?\d+")


def mistake_groups(
    failing: list[tuple[Problem, Report]],
) -> list[list[tuple[Problem, Report]]]:
    """Failing networks grouped by what their reports say, measured numbers aside: one
    mistake shows once, with the networks it affects; the largest group first."""
    groups: dict[tuple[str, str], list[tuple[Problem, Report]]] = {}
    for problem, report in failing:
        key = (report.attribution, _NUMBER.sub("#", report.summary))
        groups.setdefault(key, []).append((problem, report))
    return sorted(groups.values(), key=len, reverse=True)


def print_outcome(
    outcome: dict[str, Any], impl: str, out: TextIO, quiet: bool, verbose: bool
) -> None:
    """Failing networks first, one group per mistake (its first network's table and the
    networks it affects), then a line counting the passing ones (with the seed network's
    table when nothing failed), what is not in scope, the non-gradient checks grouped by
    name, and the summary. ``verbose`` prints every table and every check."""
    reports = outcome["reports"]
    failing = [(p, r) for p, r in reports if not r.ok]
    groups = mistake_groups(failing)
    if verbose:
        for problem, report in reports:
            out.write(f"{problem.name}\n{report.render()}\n\n")
    elif not quiet and reports and not failing:
        problem, report = reports[0]
        out.write(f"{problem.name}\n{report.render()}\n\n")
    for k, group in enumerate(groups):
        problem, report = group[0]
        if not quiet and not verbose and k < 3:
            out.write(f"{problem.name}\n{report.render()}\n\n")
        names = ", ".join(p.name for p, _ in group[:4]) + (", ..." if len(group) > 4 else "")
        count = f"{len(group)} network{'s' if len(group) > 1 else ''}"
        out.write(f"  FAIL ({count}: {names}): {report.summary[:400]}\n")
    across = diagnosis.across_networks([getattr(r, "factor", None) for _, r in failing])
    if across:  # a factor that equals several causes on one network, told apart by the rest
        out.write(f"  {across}\n")
    if reports:
        hint = "" if verbose or quiet else "; --verbose shows every table"
        passed = len(reports) - len(failing)
        out.write(f"  {passed} of {len(reports)} networks in scope passed{hint}\n")
    notes: dict[tuple[str, str], list[str]] = {}  # one line each, measured numbers aside
    for _, report in reports:
        for label, texts in (("WARN loss", report.warnings), ("NOTE cost", report.conventions)):
            for text in texts:
                notes.setdefault((label, _NUMBER.sub("#", text)), []).append(text)
    for (label, _), texts in notes.items():
        count = f"{len(texts)} network{'s' if len(texts) > 1 else ''}"
        out.write(f"  {label}: {texts[0]} ({count})\n")
    unsupported = outcome.get("unsupported") or []
    if unsupported:
        _, example = unsupported[0]
        out.write(
            f"  not in scope: {len(unsupported)} networks raised NotImplementedError "
            f"(first: {unsupported[0][0].name}: {example.summary[:200]}); "
            f"say so once with {suggest_scope(reports, unsupported, _run_scope(outcome))}\n"
        )
    by_name: dict[str, list[tuple[str, checks.CheckResult]]] = {}
    for where, c in outcome["checks"]:
        by_name.setdefault(c.name, []).append((where, c))
    for name, results in by_name.items():
        failed = [(w, c) for w, c in results if c.ok is False]
        if failed:
            where, c = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            label = _LABELS[c.severity]
            out.write(f"  {label} {name}: {where}: {c.message[:300]}{more}\n")
        elif verbose:
            for where, c in results:
                mark = "ok" if c.ok else "n/a"
                out.write(f"  {mark:<4} {name}: {where}: {c.message}\n")
    printed = outcome.get("printed") or []
    if printed:
        out.write(
            f"note: the implementation printed {len(printed)} lines (not shown"
            + ("; the first 20 follow)\n" if verbose else "; --verbose shows the first 20)\n")
        )
        if verbose:
            out.writelines(f"  | {line[:200]}\n" for line in printed[:20])
    out.write(summary_line(outcome, impl) + "\n")


def outcome_json(outcome: dict[str, Any], impl: str) -> dict[str, Any]:
    return {
        "ok": outcome["ok"],
        "impl": impl,
        "networks": [{"name": p.name, **r.to_dict()} for p, r in outcome["reports"]],
        "checks": [{"where": where, **asdict(c)} for where, c in outcome["checks"]],
        "scope": outcome.get("scope", {}),
        "not_in_scope": {
            "undrawn": outcome.get("out_of_scope", 0),
            "unsupported": [
                {"name": p.name, **r.to_dict()} for p, r in outcome.get("unsupported", [])
            ],
        },
        "attributions": ATTRIBUTIONS,
    }


# --- golden files --------------------------------------------------------------------------

GOLDEN_RTOL = 1e-10
"""The drift ``--golden compare`` allows per array in float64 unless ``--golden-rtol`` says
otherwise: float64 gradients recomputed by the same code agree to rounding."""

GOLDEN_EPS_FACTOR = 2.0**10
"""Below float64, the default drift is this many units of the gradients' own roundoff
(:func:`golden_rtol`): a float32 network's gradients are off the float64 ones by tens of
its eps (3.8e-6, 32 eps, on the default float32 file), and a regression by far more."""

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
    import itertools
    import zlib

    from ..inputs.problems import (
        compatible_costs,
        needs_one_hot,
        one_hot_labels,
        output_only,
        with_relu_margin,
    )
    from ..registry import activation_names

    scope = scope if scope is not None else Scope.everything()
    table = activation_names()
    hidden = [a for a in _ordered(scope.names("activations"), table) if not output_only(a)]
    lo = max(GOLDEN_DEPTHS[0], scope.min_depth or GOLDEN_DEPTHS[0])
    hi = min(GOLDEN_DEPTHS[1], scope.max_depth or GOLDEN_DEPTHS[1])
    depths = [d for d in range(lo, hi + 1) if d == 1 or hidden] or [lo]
    families = []
    for out in _ordered(scope.names("output_activations"), table):
        for cost in compatible_costs(out):
            if cost not in scope.names("costs"):
                continue
            least = 2 if output_only(out) or needs_one_hot(out, cost) else 1
            widths = sorted(scope.outputs) if scope.outputs is not None else GOLDEN_OUTPUTS
            families += [(out, cost, max(w, least)) for w in dict.fromkeys(widths) if w >= least
                         or scope.outputs is None]  # fmt: skip
    problems: list[Problem] = []
    for j, (out, cost, width) in enumerate(dict.fromkeys(families)):
        L = depths[j % len(depths)]
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
        problem = Problem(params, X, Y, acts, cost, name=name)
        if scope.admits(problem):
            problems.append(problem)
    return problems


def _golden_gradients(runner: Any, problems: list[Problem]) -> list[Any]:
    done = runner.run(gradients_of, problems)
    if isinstance(done, Failed):
        raise ImplementationError(f"{runner.name}: {done.finding.describe()}")
    for p, grads in zip(problems, done):
        if as_arrays(grads) is None:
            raise ImplementationError(f"{runner.name} on {p.name}: {grads}")
    return done


def golden_save(runner: Any, path: Path, scope: Scope | None = None) -> int:
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
    runner: Any, path: Path, tolerance: float | None = None, scope: Scope | None = None
) -> tuple[bool, list[str]]:
    """Drift per network and layer against a saved golden file, ||now - then|| / ||then||,
    against ``tolerance`` (None: :func:`golden_rtol` of the precision the gradients come
    back in); the last line names the worst array and, in it, the entry that moved most."""
    ok, lines, _ = golden_results(runner, path, tolerance, scope)
    return ok, lines


def golden_results(
    runner: Any, path: Path, tolerance: float | None = None, scope: Scope | None = None
) -> tuple[bool, list[str], list[tuple[str, checks.CheckResult]]]:
    """:func:`golden_compare`'s verdict and lines, and one check result per network (``same
    as PATH``, where the network's name), for the run's JSON, JUnit and CI outputs."""
    if tolerance is not None and not 0 < tolerance < float("inf"):
        raise ValueError(f"tolerance must be a number > 0, got {tolerance!r}")
    saved = _read_golden(path, scope)
    problems = golden_problems(scope)
    done = _golden_gradients(runner, problems)
    if tolerance is None:  # the declared precision, else the lowest the gradients came in
        kinds = [np.asarray(a).dtype for grads in done for pair in grads for a in pair]
        floats = [k for k in kinds if np.issubdtype(k, np.floating)] or [np.dtype(np.float64)]
        if scope is not None and scope.dtype is not None:
            floats.append(np.dtype(scope.dtype))
        tolerance = golden_rtol(min(floats, key=lambda k: np.finfo(k).bits))
    lines, ok = [], True
    results: list[tuple[str, checks.CheckResult]] = []
    worst: tuple[float, str] | None = None
    for k, (p, grads) in enumerate(zip(problems, done)):
        recorded = sorted(key for key in saved if key.startswith(f"{k}/"))
        expected = sorted(f"{k}/layer{l}/{n}" for l in range(1, len(p.params) + 1) for n in "Wb")
        if recorded != expected:
            raise UsageError(
                f"golden file {path} records {len(recorded) // 2} layers for {p.name}, "
                f"which has {len(p.params)}: was it saved by this version?"
            )
        mine: tuple[float, str] | None = None
        for l, (dW, db) in enumerate(grads, start=1):
            for name, now in (("W", dW), ("b", db)):
                now = np.asarray(now, np.float64)
                then = saved[f"{k}/layer{l}/{name}"]
                entry = ""
                if now.shape != then.shape or not np.isrealobj(then):
                    drift = float("inf")
                    entry = f"shape {now.shape} now, {then.shape} recorded"
                else:
                    drift = float(np.linalg.norm(now - then) / max(np.linalg.norm(then), 1e-300))
                    if now.size:
                        gap = np.abs(now - then)
                        gap[~np.isfinite(gap)] = np.inf
                        i = np.unravel_index(int(np.argmax(gap)), now.shape)
                        entry = (
                            f"entry {tuple(int(j) for j in i)}: {float(now[i]):.10g} now, "
                            f"{float(then[i]):.10g} recorded"
                        )
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
            fine = mine[0] <= tolerance
            text = (
                f"{'largest drift' if fine else 'drifted at'} {mine[1]}; relative difference "
                f"{mine[0]:.2e} {'<=' if fine else '>'} --golden-rtol {tolerance:g}"
            )
            results.append((p.name, checks.CheckResult(f"same as {path.name}", fine, text)))
    if worst is not None:
        lines.append(
            f"  worst: {worst[1]}; relative difference {worst[0]:.2e} (--golden-rtol {tolerance:g})"
        )
    return ok, lines, results


# --- explain -------------------------------------------------------------------------------


def explain(out: TextIO) -> None:
    """The seed's section 9, for its 2-3-2-1 network: which matrix holds which connections."""
    sizes = [2, 3, 2, 1]
    out.write(
        "The seed's network: layer 0 has 2 inputs, layers 1 and 2 have 3 and 2 units, layer 3 "
        "has 1 output.\nW^l has shape (n_l, n_{l-1}): row i holds every connection into unit i "
        "of layer l.\n\n"
    )
    for l in range(len(sizes) - 1, 0, -1):
        n, n_prev = sizes[l], sizes[l - 1]
        out.write(
            f"layer {l}: W^{l} is {n}x{n_prev}, b^{l} is {n}x1; "
            f"dJ/dW^{l} and dJ/db^{l} have the same shapes\n"
        )
        for i in range(n):
            for j in range(n_prev):
                out.write(f"  W^{l}[{i}, {j}]: layer {l - 1}, index {j} -> layer {l}, index {i}\n")
        out.write(f"  b^{l}[i, 0]: the bias of unit i of layer {l}\n")
        if l == len(sizes) - 1:
            out.write(
                f"  dZ^{l} = dJ/dA^{l} * g'_{l}(Z^{l})   "
                f"({n}x m; with sigmoid + bce: (A^{l} - Y)/m)\n"
            )
        else:
            out.write(
                f"  dZ^{l} = (W^{l + 1})^T dZ^{l + 1} * g'_{l}(Z^{l})   "
                f"({n}x m: the transpose takes "
                f"the {sizes[l + 1]} units above back to these {n})\n"
            )
        out.write(
            f"  dJ/dW^{l} = dZ^{l} (A^{l - 1})^T   ({n}x m times m x{n_prev} = {n}x{n_prev})\n"
            f"  dJ/db^{l} = dZ^{l} summed over the m columns   ({n}x1)\n\n"
        )
    from .formulas import explain_tables

    explain_tables(out)


# --- plots ---------------------------------------------------------------------------------


def write_plots(runner: Any, outcome: dict[str, Any], directory: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib: pip install 'backprop-harness[plot]' "
            "(or pip install matplotlib)"
        ) from None
    from ..oracles import finite_diff, numpy_model
    from ..oracles.jax_model import jax_gradients

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    chosen = [pr for pr in outcome["reports"] if not pr[1].ok][:3] or outcome["reports"][:1]
    chosen = [(p, r) for p, r in chosen if r.attribution not in ("crash", "structure")]
    computed = runner.run(gradients_of, [p for p, _ in chosen]) if chosen else []
    if isinstance(computed, Failed):
        computed = [None] * len(chosen)
    for (problem, report), grads in zip(chosen, computed):
        grads = as_arrays(grads)
        if grads is None:
            continue
        _, ref = jax_gradients(problem.params, problem.X, problem.Y, **problem.kwargs())
        L = len(grads)
        fig, axes = plt.subplots(L, 3, figsize=(11, 2.6 * L), squeeze=False)
        for l in range(L):
            mine = np.hstack([grads[l][0], grads[l][1]])
            truth = np.hstack(ref[l])
            lim = max(np.abs(mine).max(), np.abs(truth).max(), 1e-300)
            for ax, data, title, cmap, vlim in (
                (axes[l][0], mine, f"layer {l + 1}: implementation [dW | db]", "RdBu_r", lim),
                (axes[l][1], truth, f"layer {l + 1}: reference (JAX)", "RdBu_r", lim),
                (
                    axes[l][2],
                    mine - truth,
                    f"difference (largest {np.abs(mine - truth).max():.1e})",
                    "PuOr_r",
                    lim,  # on the gradient's scale: rounding noise stays white
                ),
            ):
                im = ax.imshow(data, cmap=cmap, vmin=-vlim, vmax=vlim, aspect="auto")
                ax.set_title(title, fontsize=9)
                ax.axvline(data.shape[1] - 1.5, color="k", lw=0.8)
                fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(
            f"{problem.name}: {'PASS' if report.ok else 'FAIL: ' + report.summary[:90]}", fontsize=9
        )
        fig.tight_layout()
        path = directory / f"gradients_{len(written) + 1}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # The V curve: error of a central difference against its step, on the first network.
    problem = outcome["reports"][0][0]
    model = numpy_model.build(
        problem.params, problem.X, problem.Y, problem.activations, problem.cost, problem.l2
    )
    _, ref = jax_gradients(problem.params, problem.X, problem.Y, **problem.kwargs())
    direction = np.random.default_rng(0).normal(size=problem.params[0][0].shape)
    direction /= np.linalg.norm(direction)
    exact = float(np.sum(direction * ref[0][0]))  # the directional derivative along it
    steps = np.logspace(-13, -1, 49)
    errors = []
    for h in steps:
        up = [(problem.params[0][0] + h * direction, problem.params[0][1]), *problem.params[1:]]
        down = [(problem.params[0][0] - h * direction, problem.params[0][1]), *problem.params[1:]]
        d = (numpy_model.loss_at(model, up) - numpy_model.loss_at(model, down)) / (2 * h)
        errors.append(abs(d - exact) + 1e-300)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(steps, errors, "o-", ms=3)
    ax.axvline(
        finite_diff.STEP, color="r", ls="--", label=f"chosen h = eps^(1/3) = {finite_diff.STEP:.1e}"
    )
    ax.set_xlabel("step h")
    ax.set_ylabel("|central difference - JAX|")
    ax.set_title("Truncation (right, ~h^2) against round-off (left, ~eps/h)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = directory / "fd_error_vs_step.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


# --- main ----------------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _widths(text: str) -> list[int]:
    try:
        return [int(n) for n in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths such as 1,2, got {text!r}") from None


def resolve_scope(args: argparse.Namespace, declared: Scope) -> Scope:
    """The flags over ./pyproject.toml's [tool.backprop-check] over the module's SUPPORTS."""
    flags = {key: getattr(args, key, None) for key in KEYS}
    try:
        given = Scope.read(flags, "the scope flags")
        return given.over(from_pyproject(Path.cwd()).over(declared))
    except ScopeError as exc:
        raise UsageError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-check",
        description="Verify a hand-written backprop implementation against finite differences "
        "and jax.grad, layer by layer, and say what is wrong.",
    )
    parser.add_argument(
        "--impl",
        default="backprop",
        metavar="MODULE",
        help="implementation to check: package.module or package.module:object (default: backprop)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the networks and data (default 0)"
    )
    parser.add_argument(
        "--networks",
        type=int,
        default=8,
        metavar="N",
        help="random networks besides the seed's (default 8)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument(
        "--verbose", action="store_true", help="print every network's table and every check"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the whole result as JSON")
    parser.add_argument(
        "--junit-xml", type=Path, metavar="PATH", help="write JUnit XML for CI systems"
    )
    ci = parser.add_argument_group("CI output")
    ci.add_argument(
        "--format",
        choices=("text", "github"),
        default="text",
        help="text (the default): the terminal report; github: the report folded, then GitHub "
        "Actions annotations (::error file=...,line=...) at the code at fault, and a Markdown "
        "summary appended to $GITHUB_STEP_SUMMARY when it is set",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="DIR",
        help="write PNG heatmaps and the FD step curve (needs matplotlib)",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="write the run as one self-contained HTML page: every network's table with the "
        "failing cells marked, the other checks, heatmaps of the failing gradients",
    )
    parser.add_argument(
        "--golden",
        nargs=2,
        metavar=("save|compare", "PATH"),
        help="record gradients of fixed networks to an .npz, or compare against one",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="explain the seed network's matrices and formulas, then exit",
    )
    scope = parser.add_argument_group(
        "scope",
        "what the implementation supports (also: SUPPORTS in the module, or "
        "[tool.backprop-check] in ./pyproject.toml; these flags win); networks outside it "
        "are not checked",
    )
    scope.add_argument("--activations", type=_names, metavar="A,B", help="hidden activations")
    scope.add_argument(
        "--output-activations", type=_names, metavar="A,B", help="output activations"
    )
    scope.add_argument("--costs", type=_names, metavar="C,D", help="costs")
    scope.add_argument("--outputs", type=_widths, metavar="N,M", help="output widths n_L")
    scope.add_argument("--min-depth", type=int, metavar="L", help="fewest layers")
    scope.add_argument("--max-depth", type=int, metavar="L", help="most layers")
    scope.add_argument(
        "--penalties",
        type=_names,
        metavar="l2",
        help="penalties the implementation takes (l2: the keyword l2=lambda of loss and "
        "gradients); none unless declared",
    )
    scope.add_argument(
        "--layout",
        choices=LAYOUTS,
        help="how the implementation lays out its arrays: columns (the seed's, the default), "
        "rows (samples as rows, W as (n_in, n_out)), dicts (W1, b1 / dW1, db1 dicts), samples "
        "(loss and gradients of one sample); the harness converts, exactly",
    )
    scope.add_argument(
        "--dtype",
        choices=DTYPES,
        help="the precision the implementation computes in: it is given its arrays in it and "
        "judged at its unit roundoff (default: float64, or what its results come back in)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="warnings (numerical robustness) and conventions (deliberate differences from the "
        "seed) fail the run too",
    )
    parser.add_argument(
        "--relu-at-zero",
        type=float,
        choices=(0.0, 1.0),
        metavar="0|1",
        help="require this relu'(0) (default: any value in [0, 1] is a valid subgradient, "
        "and the report says which one the code uses)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit on each call into the implementation (default 60); a call that runs "
        "longer is a TIMEOUT finding and the run goes on",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the implementation in this process: no worker, no time limit, its output "
        "not captured (for debugging the implementation with pdb)",
    )
    parser.add_argument(
        "--bugs",
        action="store_true",
        help="run the harness on every catalogued mistake and print the detection matrix",
    )
    # --- grading (reference/frontends/grading.py, submissions.py) ---
    grading = parser.add_argument_group(
        "grading", "points per rubric item, in Gradescope's results format"
    )
    grading.add_argument(
        "--gradescope",
        type=Path,
        metavar="PATH",
        help="grade --impl on the rubric and write Gradescope's results.json to PATH",
    )
    grading.add_argument(
        "--submissions",
        type=Path,
        metavar="DIR",
        help="grade every submission in DIR (a .py file, a .ipynb notebook or a package "
        "directory each), each in its own worker; writes --grades DIR/gradebook.csv and one "
        "results JSON per submission",
    )
    grading.add_argument(
        "--roster",
        type=Path,
        metavar="CSV",
        help="with --submissions, a CSV with columns 'submission' (a file or folder name, with "
        "or without .py/.ipynb) and 'id' (the student's identifier in the gradebook)",
    )
    grading.add_argument(
        "--grades",
        type=Path,
        default=Path("grades"),
        metavar="DIR",
        help="where --submissions writes the gradebook and the results files (default ./grades)",
    )
    grading.add_argument(
        "--rubric",
        type=Path,
        metavar="PATH",
        help="a course's rubric (TOML; default: the one shipped, reference/frontends/rubric.toml)",
    )
    grading.add_argument(
        "--hidden-seed",
        type=int,
        metavar="N",
        help="secret seed of the rubric's hidden networks (default: $BACKPROP_HIDDEN_SEED; "
        "neither: they are not graded); never shown in the output",
    )
    grading.add_argument(
        "--hidden-visibility",
        choices=("visible", "hidden", "after_due_date", "after_published"),
        help="Gradescope visibility of the hidden groups (default: the rubric's, after_due_date)",
    )
    grading.add_argument(
        "--submission-timeout",
        type=float,
        metavar="SECONDS",
        help="wall-time limit on grading one submission, all its calls together (default "
        "300); --timeout still limits each call",
    )
    grading.add_argument(
        "--user",
        metavar="NAME",
        help="run each graded submission's worker as this less privileged user (when "
        "backprop-check runs as root, as Gradescope's autograder does)",
    )
    grading.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a graded worker's resource limit: memory_mb (default 4096), cpu_seconds (600), "
        "processes (512), file_mb (64); 0 lifts it; repeat for several",
    )
    # --- forks against upstream, golden tolerance, scaling out (against.py, scaling.py) ---
    parser.add_argument(
        "--against",
        metavar="MODULE",
        help="also check this implementation (an upstream) on the same networks, in its own "
        "worker, and say where the two part: the first network, layer and parameter, by how "
        "much against the oracles' bounds, and what kind of difference it is",
    )
    parser.add_argument(
        "--golden-rtol",
        type=float,
        metavar="RTOL",
        help="with --golden compare: the relative drift ||now - then|| / ||then|| allowed per "
        "layer and parameter (default 1e-10 in float64, 1024 eps of a lower precision the "
        "gradients come back in), so that an intended numerical change passes",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="check only the K-th of N disjoint slices of the networks (a CI matrix of N "
        "entries covers the whole run); the fixed checks run in shard 1",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes at once: the networks of one check, with the same report as one "
        "(default 1: each worker compiles its own JAX model, which a short run does not repay); "
        "with --submissions, submissions graded in parallel (default: the number of cores)",
    )
    # --- the layer view of failing networks (reference/frontends/layer_views.py) ---
    parser.add_argument(
        "--layer-view",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="for the first network of each mistake that blames the backward pass, check each "
        "step of it alone and say whether a local derivative or the chaining of the deltas is "
        "wrong (default: on; --no-layer-view leaves it out)",
    )
    # --- streaming (reference/frontends/streaming.py) ---
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show networks done / total, the rate and the time left on stderr even when it "
        "is not a terminal (on a terminal it is shown anyway; never with --quiet)",
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    from .streaming import TERMINATED_STATUS, Terminated
    from .terminal import SafeWriter

    # everything printed may hold the implementation's text: made safe (terminal.py)
    out = SafeWriter(out or sys.stdout)
    err = SafeWriter(sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args, out)
    except Terminated as exc:  # CI's SIGTERM: the files were closed, complete: false
        err.write(f"backprop-check: stopped: {exc}\n")
        return TERMINATED_STATUS
    except (UsageError, ImplementationError, LoadFailed) as exc:
        err.write(f"backprop-check: error: {exc}\n")
        return 2
    except BrokenPipeError:  # piped into head: the reader has seen enough
        sys.stderr.close()
        return 1
    except OSError as exc:  # a report could not be written after all (a full disk)
        err.write(f"backprop-check: error: cannot write {exc.filename}: {exc.strerror}\n")
        return 1


def _writable(path: Path, option: str, directory: bool = False) -> None:
    """Fail before the run, not after it, when an output cannot be written."""
    if directory:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path}: not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"{option} {path}: cannot create the directory ({exc.strerror})"
            ) from None
        if not os.access(path, os.W_OK):
            raise UsageError(f"{option} {path}: the directory is not writable")
        return
    if path.is_dir():
        raise UsageError(f"{option} {path}: a directory, not a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror})") from None


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.networks < 0:
        raise UsageError(f"--networks must be >= 0, got {args.networks}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if args.quiet and args.verbose:
        raise UsageError("--quiet and --verbose contradict each other")
    for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml)):
        if path is not None:
            _writable(path, option)
    if args.plot is not None:
        _writable(args.plot, "--plot", directory=True)
    if args.html is not None:
        _writable(args.html, "--html")
    if args.golden and args.golden[0] not in ("save", "compare"):
        raise UsageError(f"--golden takes save or compare, got {args.golden[0]!r}")
    if args.golden and args.golden[0] == "save":
        _writable(Path(args.golden[1]), "--golden save")
    if args.golden_rtol is not None:
        if not (args.golden and args.golden[0] == "compare"):
            raise UsageError("--golden-rtol applies to --golden compare PATH")
        if not 0 < args.golden_rtol < float("inf"):
            raise UsageError(f"--golden-rtol must be a number > 0, got {args.golden_rtol}")
    if args.golden and args.golden[0] == "compare" and (args.against or args.shard):
        raise UsageError("--golden compare compares with the file: not with --against or --shard")
    if args.against:
        from .against import preflight

        why = preflight(args.against)  # before the fork's run, not after it
        if why:
            raise UsageError(why)
    if args.explain:
        explain(out)
        return 0
    if args.bugs:
        return _bugs(args, out)
    asked = (args.gradescope, args.submissions, args.rubric, args.roster)
    if any(a is not None for a in asked) or args.hidden_seed is not None:
        from .submissions import main_grading

        return main_grading(args, out)
    name = args.impl if args.impl != "backprop" else "backprop (built-in)"
    if not args.in_process:
        from ..registry import process_only

        if process_only():  # the worker would check the name against tables without it
            raise UsageError(
                f"{', '.join(process_only())} registered in this process only: the worker "
                "process that runs the implementation does not have it; use --in-process, or "
                "register it through a backprop_harness entry point (CONTRIBUTING.md)"
            )
    from ..oracles.jax_cache import compilation_cache

    with compilation_cache():  # the worker's compiled JAX programs kept on disk (jax_cache.py)
        if args.in_process:
            runner: Any = InProcess(load_impl(args.impl), args.impl)
        else:
            runner = Worker(args.impl, timeout=args.timeout)
            runner.start()
        try:
            return _check(args, runner, name, out)
        finally:
            runner.close()


def _check(args: argparse.Namespace, runner: Any, name: str, out: TextIO) -> int:
    scope = resolve_scope(args, runner.declared)
    if scope.layout not in (None, "columns"):
        runner.use_layout(scope.layout)
    if scope.dtype is not None:  # every job from here on gives it arrays in that precision
        runner = WithDtype(runner, scope.dtype)
    golden = None
    if args.golden:
        mode, path = args.golden[0], Path(args.golden[1])
        if mode == "save":
            n = golden_save(runner, path, scope)
            out.write(f"saved the gradients of {n} networks to {path}\n")
            return 0
        golden = golden_results(runner, path, args.golden_rtol, scope)  # checks, as a run's
    # --- streaming: networks drawn, written and summarized as they come (streaming.py) ---
    from . import streaming
    from .provenance import provenance

    try:
        problems = streaming.ProblemStream(args.seed, args.networks, scope)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None
    problems.extra = penalty_problems(args.seed, scope)  # L2-penalised, where declared
    progress = streaming.progress_for(args, len(problems))
    runner = Timed(runner)  # each network's time, for the JUnit file (every --jobs worker's)
    head = provenance(args, build_parser()) if args.json else None
    viewer = None
    if args.layer_view:  # where the backward pass goes wrong, in failing reports (layer_views.py)
        from .layer_views import Viewer

        viewer = Viewer(runner)
    with streaming.Stream(args, name, runner.times, head, viewer) as stream:  # a stopped run, too
        # run_checks on --shard's slice, over --jobs workers, and --against (scaling.py)
        if golden is not None:  # --golden compare: the drift per network, no network judged
            outcome = {"ok": golden[0], "reports": [], "checks": golden[2]}
        else:
            outcome = run_networks(args, runner, problems, progress,
                                   scope, sink=stream)  # fmt: skip
        if args.strict and (
            any(c.ok is False for _, c in outcome["checks"])
            or any(r.conventions or r.warnings for _, r in outcome["reports"])
        ):
            outcome["ok"] = False
        outcome["out_of_scope"] = undrawn(args.seed, scope) if golden is None else 0
        outcome["scope"] = scope.to_dict()
        outcome["times"] = dict(runner.times)
        stream.finish(outcome)  # the JSON and JUnit files' ends
    if args.format == "github":
        from . import github
        from .provenance import member_locations

        locations = runner.run(member_locations)
        github.print_github(
            outcome, name, out,
            lambda stream: (stream.write("".join(f"{line}\n" for line in golden[1]))
                            if golden is not None else None,
                            print_outcome(outcome, name, stream, args.quiet, args.verbose)),
            locations if isinstance(locations, dict) else {}, strict=args.strict,
        )  # fmt: skip
    else:
        if golden is not None:
            out.write("\n".join(golden[1]) + "\n")
        print_outcome(outcome, name, out, args.quiet, args.verbose)
    if golden is not None:
        verdict = "same gradients as" if golden[0] else "gradients DRIFTED from"
        out.write(f"{verdict} {args.golden[1]}\n")
    if args.plot:
        for path in write_plots(runner, outcome, args.plot):
            if not args.quiet:
                out.write(f"wrote {path}\n")
    if args.html:
        from .html import write_html

        write_html(args.html, runner, outcome, name, seed=args.seed,
                   summary=summary_line(outcome, name))  # fmt: skip
        if not args.quiet:
            out.write(f"wrote {args.html}\n")
    return 0 if outcome["ok"] else 1


def _bugs(args: argparse.Namespace, out: TextIO) -> int:
    from ..bugs.detect import correct_passes, detection_matrix, render_matrix

    rows = detection_matrix()
    out.write(render_matrix(rows) + "\n")
    base = correct_passes()
    out.write(
        "the correct base passes every check\n" if not base else f"the correct base FAILS: {base}\n"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"bugs": [r.to_dict() for r in rows], "correct_passes": not base}, indent=1)
        )
    return 0 if all(r.detected for r in rows) and not base else 1


if __name__ == "__main__":
    raise SystemExit(main())
