"""``backprop-check --impl FORK --against UPSTREAM``: where two implementations part.

Both are judged by the oracles as usual (the fork's report is the run's; the upstream's is
run on the same networks, behind its own boundary, in its own worker or in this process
under ``--in-process``), and besides, they are compared with each other on every network:
each layer's dW and db, the loss, and the outcome of every non-gradient check.

The tolerance is the oracles' own: the checker allows each side a norm-wise relative error
b_f (the fork's) and b_u (the upstream's) against JAX for an array, so two implementations
that both pass may differ by

    ||f - u|| <= ||f - j|| + ||j - u|| <= b_f (||f|| + ||j||) + b_u (||u|| + ||j||),

which is (b_f + b_u)(||f|| + ||u||) to first order, as ||j|| lies between them: an array
parts when its relative difference ||f - u|| / (||f|| + ||u||) exceeds b_f + b_u (the
finite-difference bounds where there is no JAX twin). The loss parts when |L_f - L_u|
exceeds the sum of the two absolute bounds the checker put on each loss. The difference is
named with the checker's diagnosis (a constant factor, a transpose, a sign), said of the
side the oracles fail, against the other.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..boundary.guard import Guarded, ImplementationFailed
from ..boundary.isolation import Failed, Worker
from ..boundary.loading import load_impl
from ..inputs.differences import KINDS, Difference, Differences
from ..inputs.differences import from_pyproject as differences_from_pyproject
from ..inputs.problems import Problem
from ..judging import checks, diagnosis
from ..judging.checker import FD_FLOOR, JAX_FLOOR, LOSS_RTOL
from ..judging.outcome import Outcome
from ..judging.records import ParamCheck, Report
from .runner import InProcess, Runner, WithDtype


def numbers_of(impl: Guarded, problems: list[Problem]) -> list[Any]:
    """Each problem's ``(gradients, loss)`` through the boundary, or the failure's one-line
    description (a job: it runs in the worker)."""
    out: list[Any] = []
    for p in problems:
        try:
            grads = impl.gradients(p.params, p.X, p.Y, **p.kwargs())
            out.append((grads, float(impl.loss(p.params, p.X, p.Y, **p.kwargs()))))
        except ImplementationFailed as failed:
            out.append(failed.finding.describe())
    return out


def row_tolerance(mine: ParamCheck | None, theirs: ParamCheck | None) -> tuple[float, str]:
    """The relative difference two passing implementations may show on one array: the sum
    of their JAX bounds (of their finite-difference bounds without JAX), and what it is."""
    for attr, words, floor in (
        ("bound_jax", "both JAX bounds", JAX_FLOOR),
        ("bound_fd", "both finite-difference bounds", FD_FLOOR),
    ):
        bounds = [getattr(c, attr) for c in (mine, theirs) if c is not None]
        if bounds and all(b is not None for b in bounds):
            return sum(bounds) + floor * (2 - len(bounds)), words
    return 2 * JAX_FLOOR, "twice the JAX floor"


def loss_tolerance(mine: Report | None, theirs: Report | None, reference: float) -> float:
    """|L_f - L_u| two passing implementations may show: the sum of the checker's absolute
    bounds on each loss (LOSS_RTOL |L| + 1e-15 for a side without one)."""
    default = LOSS_RTOL * abs(reference) + 1e-15
    return sum(
        float(r.loss["bound"]) if r is not None and "bound" in r.loss else default
        for r in (mine, theirs)
    )


def compare_network(
    problem: Problem,
    mine: Any,
    theirs: Any,
    report_mine: Report | None,
    report_theirs: Report | None,
    names: tuple[str, str],
    convention: Difference | None = None,
) -> tuple[bool | None, str]:
    """``(ok, message)`` for one network: ``ok`` False where the two part, None where they
    cannot be compared. The message names the first array that differs in the order the
    backward pass computes them (from the output layer down, dW before db: where a
    mistake first shows), the relative difference, the tolerance and the diagnosis.

    ``convention``: the fork's declared cost convention for this network's cost: where the
    fork's report names a cost scale, the upstream's numbers are taken times the ratio of
    the two losses (the constant the convention puts on the cost), and the loss itself is
    not compared."""
    if isinstance(mine, str) or isinstance(theirs, str):
        return _one_side_failed(problem, mine, theirs, names)
    (grads_f, loss_f), (grads_u, loss_u) = mine, theirs
    grads_u, loss_u, scaled = _up_to_convention(convention, report_mine, grads_u, loss_f, loss_u)
    parted = _parted_arrays(problem, grads_f, grads_u, report_mine, report_theirs, names)
    if len(grads_f) != len(grads_u):
        parted.append(f"{len(grads_f)} layers of gradients against {len(grads_u)}")
    tol = loss_tolerance(report_mine, report_theirs, loss_u)
    if not abs(loss_f - loss_u) <= tol:
        parted.append(
            f"loss {loss_f:.12g} against {loss_u:.12g} (difference {abs(loss_f - loss_u):.2e} "
            f"> {tol:.1e}, the sum of both loss bounds)"
        )
    if not parted:
        return True, "the gradients and the loss agree within both oracles' bounds" + scaled
    return False, _parted_message(problem, parted, names, report_mine, convention, scaled)


def _one_side_failed(
    problem: Problem, mine: Any, theirs: Any, names: tuple[str, str]
) -> tuple[bool | None, str]:
    """The verdict where one side or both failed on the network (a failure's description in
    place of its numbers)."""
    fork, upstream = names
    if isinstance(mine, str) and isinstance(theirs, str):
        return None, f"not compared: both failed ({fork}: {mine}; {upstream}: {theirs})"
    who, what = (fork, mine) if isinstance(mine, str) else (upstream, theirs)
    lacking = _lacked_name(problem, what) if who == upstream else None
    if lacking is not None:
        return None, (
            f"not compared: {upstream} lacks {lacking!r} ({what}); declare it: "
            f'[tool.backprop-check.differences] {lacking} = {{ kind = "new", reason = ... }}'
        )
    return False, f"only the {who} fails here: {what}"


def _up_to_convention(
    convention: Difference | None,
    report_mine: Report | None,
    grads_u: Any,
    loss_f: float,
    loss_u: float,
) -> tuple[Any, float, str]:
    """The upstream's gradients and loss times L_f / L_u where the fork's report names a
    cost scale of its declared ``convention`` (and both losses allow it), and the words
    that say so; else as they are."""
    if convention is None or report_mine is None or not report_mine.conventions:
        return grads_u, loss_u, ""
    if not (np.isfinite(loss_u) and loss_u != 0 and np.isfinite(loss_f)):
        return grads_u, loss_u, ""
    c = loss_f / loss_u
    grads_u = [(c * np.asarray(W, np.float64), c * np.asarray(b, np.float64))
               for W, b in grads_u]  # fmt: skip
    return (
        grads_u,
        loss_f,
        f" up to the declared convention ({convention.describe()}; factor {c:.6g})",
    )


def _parted_arrays(
    problem: Problem,
    grads_f: Any,
    grads_u: Any,
    report_mine: Report | None,
    report_theirs: Report | None,
    names: tuple[str, str],
) -> list[str]:
    """Each array where the two part, in the order the backward pass computes them (from the
    output layer down, dW before db), with its difference, tolerance and diagnosis."""
    rows = {(c.layer, c.param): c for c in (report_mine.layers if report_mine else [])}
    rows_u = {(c.layer, c.param): c for c in (report_theirs.layers if report_theirs else [])}
    parted: list[str] = []
    pairs = list(enumerate(zip(grads_f, grads_u), start=1))
    for l, (pair_f, pair_u) in reversed(pairs):  # the order the backward pass computes them
        for k, param in enumerate("Wb"):
            f = np.asarray(pair_f[k], np.float64)
            u = np.asarray(pair_u[k], np.float64)
            if f.shape != u.shape:
                parted.append(f"layer {l} d{param}: shape {f.shape} against {u.shape}")
                continue
            tol, words = row_tolerance(rows.get((l, param)), rows_u.get((l, param)))
            rel = diagnosis.relative_error(f, u)
            if not rel <= tol:
                parted.append(
                    f"layer {l} d{param}: relative difference {rel:.2e} > {tol:.1e} (the sum "
                    f"of {words}); {_diagnose(f, u, problem.m, param, names, rows, rows_u, l)}"
                )
    return parted


def _parted_message(
    problem: Problem,
    parted: list[str],
    names: tuple[str, str],
    report_mine: Report | None,
    convention: Difference | None,
    scaled: str,
) -> str:
    """Where the two part first (and how many more), with a hint to declare a difference
    the oracles pass on both sides."""
    fork, upstream = names
    more = f" (and {len(parted) - 1} more differences)" if len(parted) > 1 else ""
    head = ""
    if "the oracles pass both" in parted[0] and convention is None:
        kind = "convention" if report_mine is not None and report_mine.conventions else "formula"
        head = (
            f"an undeclared difference, which the oracles pass on both sides (on purpose? "
            f'declare it: [tool.backprop-check.differences] {problem.cost} = {{ kind = "{kind}", '
            'reason = "..." }): '
        )
    return f"{head}{fork} and {upstream} part at {parted[0]}{more}{scaled}"


def _lacked_name(problem: Problem, failure: str) -> str | None:
    """The name of the network's (an activation or its cost) that the upstream's failure
    names, if it names one: the upstream does not have it (``unknown activation 'softplus'``)."""
    for name in [*dict.fromkeys(problem.activations), problem.cost]:
        if f"'{name}'" in failure or f'"{name}"' in failure:
            return name
    return None


def _diagnose(f, u, m, param, names, rows, rows_u, layer) -> str:
    """The checker's diagnosis of the side the oracles fail, against the other side."""
    fork, upstream = names
    ok_f = rows.get((layer, param))
    ok_u = rows_u.get((layer, param))
    fork_ok = ok_f is not None and ok_f.ok
    upstream_ok = ok_u is not None and ok_u.ok
    if fork_ok and not upstream_ok:
        return f"{upstream}'s {diagnosis.diagnose(u, f, m, param)}; the oracles back {fork}"
    text = f"{fork}'s {diagnosis.diagnose(f, u, m, param)}"
    if upstream_ok and not fork_ok:
        return text + f"; the oracles back {upstream}"
    if fork_ok and upstream_ok:
        return text + "; the oracles pass both"
    return text + "; the oracles fail both"


def compare_checks(
    mine: list[tuple[str, checks.CheckResult]],
    theirs: list[tuple[str, checks.CheckResult]],
    names: tuple[str, str],
) -> list[tuple[str, bool, str, str]]:
    """``(where, False, message, severity)`` for every non-gradient check that holds for one
    side and fails for the other, with the failing side's severity (a saturation warning on
    one side parts the two as a warning, not an error), or one ``(where, True, message,
    "error")`` saying none does. A check that applies to one side only (an optional member,
    such as ``update``, that one lacks) is counted in that line, not failed."""
    fork, upstream = names
    theirs_by = {(where, c.name): c for where, c in theirs}
    out, compared, one_sided = [], 0, set()
    for where, c in mine:
        other = theirs_by.get((where, c.name))
        if other is None:
            continue
        compared += 1
        if c.ok is None or other.ok is None:
            if c.ok != other.ok:
                one_sided.add(f"{c.name} ({fork if c.ok is not None else upstream} only)")
            continue
        if c.ok != other.ok:
            failing, holds = (c, upstream) if c.ok is False else (other, fork)
            loser = fork if c.ok is False else upstream
            text = f"{c.name} fails for {loser} and holds for {holds}"
            out.append((where, False, f"{text} ({failing.message})", failing.severity))
    if not out:
        text = f"all {compared} non-gradient checks have the same outcome"
        if one_sided:
            text += f", or apply to one side only: {', '.join(sorted(one_sided))}"
        out.append(("all", True, text, "error"))
    return out


def compare_outcomes(
    mine: Outcome,
    theirs: Outcome,
    numbers_mine: list[Any],
    numbers_theirs: list[Any],
    problems: list[Problem],
    names: tuple[str, str],
    declared: Differences | None = None,
) -> list[tuple[str, checks.CheckResult]]:
    """The comparison as check results: one per network (``same as UPSTREAM``, where the
    network's name), then the non-gradient checks' outcomes (``same checks as UPSTREAM``).
    A network that uses a ``declared`` cost convention is compared up to its factor; one
    the upstream fails on for lack of a name is not compared (nor are its checks)."""
    upstream = names[1]
    declared = declared or Differences()
    out = _network_results(mine, theirs, numbers_mine, numbers_theirs, problems, names, declared)
    apart = {where for where, c in out if c.ok is None}
    kept_mine, kept_theirs = _comparable_checks(mine, theirs, apart, declared)
    for where, ok, text, severity in compare_checks(kept_mine, kept_theirs, names):
        name = f"same checks as {upstream}"
        out.append((where, checks.CheckResult(name, ok, text, severity=severity)))
    return out


def _network_results(
    mine: Outcome,
    theirs: Outcome,
    numbers_mine: list[Any],
    numbers_theirs: list[Any],
    problems: list[Problem],
    names: tuple[str, str],
    declared: Differences,
) -> list[tuple[str, checks.CheckResult]]:
    """``same as UPSTREAM`` per network: not compared where a side does not support it,
    else :func:`compare_network` (up to a declared cost convention)."""
    fork, upstream = names
    reports = {p.name: r for p, r in mine.reports}
    reports_u = {p.name: r for p, r in theirs.reports}
    unsupported = {p.name: fork for p, _ in mine.unsupported}
    unsupported.update({p.name: upstream for p, _ in theirs.unsupported})
    out = []
    for p, a, b in zip(problems, numbers_mine, numbers_theirs):
        if p.name in unsupported:
            ok, text = None, f"not compared: {unsupported[p.name]} does not support it"
        else:
            convention = next((d for d in declared.used_by(p.activations, p.cost)
                               if d.kind == "convention" and d.name == p.cost), None)  # fmt: skip
            ok, text = compare_network(p, a, b, reports.get(p.name), reports_u.get(p.name),
                                       names, convention)  # fmt: skip
        out.append((p.name, checks.CheckResult(f"same as {upstream}", ok, text)))
    return out


def _comparable_checks(
    mine: Outcome, theirs: Outcome, apart: set[str], declared: Differences
) -> tuple[list[tuple[str, checks.CheckResult]], list[tuple[str, checks.CheckResult]]]:
    """Each side's non-gradient checks that can be compared: not those of a network set
    ``apart``, nor a check whose outcome names a name declared new or changed (it judged the
    upstream by the fork's spec of it, or one side lacks it)."""
    names_apart = [d.name for d in declared.entries if d.kind in ("new", "formula")]
    said = re.compile(r"\b(" + "|".join(map(re.escape, names_apart)) + r")\b")
    by_key = {(w, c.name): c for w, c in [*mine.checks, *theirs.checks]
              if names_apart and said.search(c.message)}  # fmt: skip
    kept_mine = [(w, c) for w, c in mine.checks if w not in apart and (w, c.name) not in by_key]
    kept_theirs = [(w, c) for w, c in theirs.checks
                   if w not in apart and (w, c.name) not in by_key]  # fmt: skip
    return kept_mine, kept_theirs


def cannot_import(spec: str, cwd: str | None = None) -> str | None:
    """Why the upstream ``spec`` cannot be imported, found without running any of its code
    (``None`` when it looks importable): a missing file or directory for a path, a missing
    module or package for ``package.module`` (searched as the worker searches: the current
    directory first, then ``sys.path``). ``--against`` asks this before the fork's run, so
    that a wrong spec is a usage error at once, not after the whole check."""
    import importlib.machinery
    import importlib.util
    import os
    import sys

    from ..boundary.loading import is_path

    if not isinstance(spec, str) or not spec:
        raise TypeError(f"spec must be a non-empty str, got {spec!r}")
    module, _, _ = spec.partition(":")
    if not module:
        return f"--against {spec!r}: write package.module, package.module:object or a path"
    if is_path(module):
        path = Path(module).expanduser()
        if not path.exists():
            return f"--against {spec!r}: no such file or directory {str(path)!r}"
        if path.is_dir() and not (path / "__init__.py").is_file():
            return f"--against {spec!r}: the directory {str(path)!r} has no __init__.py"
        return None
    parts = module.split(".")
    if parts[0] in sys.modules:
        return None  # already imported here (the built-in backprop, say): importable
    search = [cwd or os.getcwd(), *sys.path]
    try:
        found = importlib.machinery.PathFinder.find_spec(parts[0], search)
        if found is None:
            found = importlib.util.find_spec(parts[0])  # other finders: editable installs
        for k, part in enumerate(parts[1:], start=1):
            if found is None or found.submodule_search_locations is None:
                break
            found = importlib.machinery.PathFinder.find_spec(
                part, list(found.submodule_search_locations)
            )
            if found is None:
                return (
                    f"--against {spec!r}: no module named {'.'.join(parts[: k + 1])!r} (the "
                    'upstream beside a fork of the same name: CONTRIBUTING.md, "The upstream '
                    'beside the fork")'
                )
    except (ImportError, ValueError):
        return None  # let the worker's import say it in full
    if found is None:
        return (
            f"--against {spec!r}: no module named {parts[0]!r} (the upstream beside a fork of "
            'the same name: CONTRIBUTING.md, "The upstream beside the fork")'
        )
    return None


def preflight(spec: str) -> str | None:
    """What stops ``--against spec`` before the fork's run starts (a usage error), or None:
    an upstream that cannot be imported (:func:`cannot_import`), or a fork's declared
    differences that cannot be read, name no activation or cost the harness checks, or
    declare a convention of something other than a cost."""
    from ..inputs.scope import ScopeError
    from ..registry import activation_names, cost_names

    why = cannot_import(spec)
    if why is None:
        try:
            declared = declared_differences()
        except ScopeError as exc:
            return str(exc)
        costs, names = cost_names(), [*activation_names(), *cost_names()]
        for d in declared.entries:
            if d.name not in names:
                why = (f"[tool.backprop-check.differences]: {d.name} is not an activation or a "
                       f"cost the harness checks ({', '.join(names)})")  # fmt: skip
            elif d.kind == "convention" and d.name not in costs:
                why = f"[tool.backprop-check.differences]: {d.name}: a convention names a cost"
    return why


def upstream_runner(spec: str, in_process: bool, timeout: float) -> Any:
    """The upstream implementation behind its own boundary: a started Worker, or in this
    process; its declared layout and precision applied."""
    if in_process:
        runner: Runner = InProcess(load_impl(spec), spec)
    else:
        runner = Worker(spec, timeout=timeout)
        runner.start()
    declared = runner.declared
    if declared is not None and declared.layout not in (None, "columns"):
        runner.use_layout(declared.layout)
    if declared is not None and declared.dtype is not None:
        runner = WithDtype(runner, declared.dtype)
    return runner


def run_against(
    args: argparse.Namespace,
    outcome: Outcome,
    runner: Runner,
    problems: list[Problem],
    scope: Any,
    spread: Callable[[Any], Any],
) -> Outcome:
    """The fork's ``outcome`` with the comparison against ``args.against`` appended to its
    checks (and its verdict failed where the two part). ``spread`` wraps the upstream's
    runner as the fork's was (``--jobs``, ``--shard``)."""
    spec = args.against
    names = (args.impl, spec)
    differences = declared_differences()
    # networks using a name the fork declares new or changed: never run on the upstream
    apart = {p.name: [d for d in differences.used_by(p.activations, p.cost)
                      if d.kind in ("new", "formula")] for p in problems}  # fmt: skip
    set_apart = [p for p in problems if apart[p.name]]
    problems = [p for p in problems if not apart[p.name]]
    up = upstream_runner(spec, bool(getattr(args, "in_process", False)), args.timeout)
    # networks with an L2 penalty only where the upstream declares it too (never called with l2)
    declared = getattr(up, "declared", None)
    takes_l2 = declared is not None and declared.admits_penalty("l2")
    skipped = [p for p in problems if p.l2 and not takes_l2]
    problems = [p for p in problems if not p.l2 or takes_l2]
    theirs, numbers_theirs = _upstream_run(args, up, problems, scope, spread)
    numbers_mine = _numbers(runner.run(numbers_of, problems), problems)
    found = compare_outcomes(outcome, theirs, numbers_mine, numbers_theirs, problems, names,
                             differences)  # fmt: skip
    found += _not_compared(spec, skipped, set_apart, apart)
    found += declared_checks(differences, found, set_apart, names)
    outcome.checks.extend(found)
    outcome.ok = outcome.ok and not any(c.is_error for _, c in found)
    return outcome


def _upstream_run(
    args: argparse.Namespace,
    up: Runner,
    problems: list[Problem],
    scope: Any,
    spread: Callable[[Any], Any],
) -> tuple[Outcome, list[Any]]:
    """The upstream's outcome on ``problems`` (through ``spread(up)``) and its numbers for
    the comparison; ``up`` is closed after."""
    from .session import Progress, run_checks

    try:
        many = spread(up)
        try:
            many.prefetch(problems)
            theirs = run_checks(
                many, problems, Progress(1, False), scope, getattr(args, "relu_at_zero", None)
            )
        finally:
            many.close_extra()
        numbers_theirs = up.run(numbers_of, problems)
    finally:
        up.close()
    return theirs, _numbers(numbers_theirs, problems)


def _numbers(done: Any, problems: list[Problem]) -> list[Any]:
    """:func:`numbers_of`'s answer, or, where the job itself failed (a hang or a crash in the
    comparison's own calls), its description for every network."""
    if isinstance(done, Failed):
        return [done.finding.describe()] * len(problems)
    return done


def _not_compared(
    spec: str,
    skipped: list[Problem],
    set_apart: list[Problem],
    apart: dict[str, list[Difference]],
) -> list[tuple[str, checks.CheckResult]]:
    """``same as UPSTREAM`` for the networks left out: those with an L2 penalty the upstream
    does not declare, and those using a name the fork declares new or changed."""
    found = [
        (p.name, checks.CheckResult(f"same as {spec}", None,
                                    f"not compared: {spec} does not declare the l2 penalty"))
        for p in skipped
    ]  # fmt: skip
    found += [
        (p.name, checks.CheckResult(f"same as {spec}", None, "not compared: declared "
                                    + "; ".join(d.describe() for d in apart[p.name])))
        for p in set_apart
    ]  # fmt: skip
    return found


def declared_differences() -> Differences:
    """The fork's ``[tool.backprop-check.differences]`` in ./pyproject.toml."""
    return differences_from_pyproject(Path.cwd())


def declared_checks(
    differences: Differences,
    found: list[tuple[str, checks.CheckResult]],
    set_apart: list[Problem],
    names: tuple[str, str],
) -> list[tuple[str, checks.CheckResult]]:
    """One ``declared NAME`` line per declared difference, each a convention (listed
    in the report, failing the run only under ``--strict``, as every deliberate difference
    does), saying what it is, the fork's reason and how many networks it kept apart or
    compared up to its factor."""
    fork, upstream = names
    out = []
    for d in differences.entries:
        apart = sum(1 for p in set_apart if d in _uses(differences, p))
        scaled = sum(1 for _, c in found if c.ok is not None and f"({d.describe()};" in c.message)
        if d.kind == "convention":
            what = f"{scaled} networks compared up to its factor"
        else:
            what = f"{apart} networks not compared"
        if not (apart or scaled):
            what += " (no network of this run uses it)"
        text = f"{KINDS[d.kind]} ({d.reason}); declared by {fork}, {what} with {upstream}"
        out.append((f"with {upstream}", checks.CheckResult(f"declared {d.name}", False, text,
                                                           severity="convention")))  # fmt: skip
    return out


def _uses(differences: Differences, problem: Problem) -> list[Difference]:
    return differences.used_by(problem.activations, problem.cost)
