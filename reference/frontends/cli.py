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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..boundary.detect import Detection
from ..boundary.isolation import LoadFailed, Worker
from ..boundary.loading import ImplementationError, load_impl
from ..inputs.scope import (
    KEYS,
    Scope,
    ScopeError,
    from_pyproject,
)
from ..judging.outcome import Outcome
from ..judging.results import CheckResult
from ..report.formulas import explain
from ..report.provenance import provenance
from ..report.text import print_outcome, summary_line
from ..run.golden import golden_results, golden_save
from ..run.plots import write_plots
from ..run.runner import InProcess, Runner, Timed, WithDtype, settle_layout
from ..run.session import UsageError, refused, session, writable
from .options import legacy_parser, parse


def resolve_scope(args: argparse.Namespace, declared: Scope) -> Scope:
    """The flags over ./pyproject.toml's [tool.backprop-check] over the module's SUPPORTS."""
    flags = {key: getattr(args, key, None) for key in KEYS}
    try:
        given = Scope.read(flags, "the scope flags")
        return given.over(from_pyproject(Path.cwd()).over(declared))
    except ScopeError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    from ..report.terminal import SafeWriter
    from ..run.streaming import TERMINATED_STATUS, Terminated

    # everything printed may hold the implementation's text: made safe (terminal.py)
    out = SafeWriter(out or sys.stdout)
    err = SafeWriter(sys.stderr)
    args = parse(sys.argv[1:] if argv is None else argv, err)
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


def _usage(args: argparse.Namespace) -> None:
    """Refuse, before anything runs, what the options cannot mean: a UsageError naming it."""
    if args.networks < 0:
        raise UsageError(f"--networks must be >= 0, got {args.networks}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if args.quiet and args.verbose:
        raise UsageError("--quiet and --verbose contradict each other")
    _golden_usage(args)
    if args.against:
        from ..run.against import preflight

        why = preflight(args.against)  # before the fork's run, not after it
        if why:
            raise UsageError(why)


def _outputs(args: argparse.Namespace) -> None:
    """Fail before the run, not after it, when an output file cannot be written."""
    for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml)):
        if path is not None:
            writable(path, option)
    if args.plot is not None:
        writable(args.plot, "--plot", directory=True)
    if args.html is not None:
        writable(args.html, "--html")
    if args.golden and args.golden[0] == "save":
        writable(Path(args.golden[1]), "--golden save")


def _golden_usage(args: argparse.Namespace) -> None:
    mode = args.golden[0] if args.golden else None
    if mode not in (None, "save", "compare"):
        raise UsageError(f"--golden takes save or compare, got {mode!r}")
    if args.golden_rtol is not None:
        if mode != "compare":
            raise UsageError("--golden-rtol applies to --golden compare PATH")
        if not 0 < args.golden_rtol < float("inf"):
            raise UsageError(f"--golden-rtol must be a number > 0, got {args.golden_rtol}")
    if mode == "compare" and (args.against or args.shard):
        raise UsageError("--golden compare compares with the file: not with --against or --shard")


def _run(args: argparse.Namespace, out: TextIO) -> int:
    """The subcommand ``args.command`` (set by :func:`~reference.frontends.options.parse`)."""
    _usage(args)
    _outputs(args)
    if args.explain:
        explain(out)
        return 0
    if args.bugs:
        return _bugs(args, out)
    asked = (args.gradescope, args.submissions, args.rubric, args.roster, args.hidden_seed)
    if args.command == "grade" or any(a is not None for a in asked):
        from ..grading.submissions import main_grading

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
            runner: Runner = InProcess(load_impl(args.impl), args.impl)
        else:
            runner = Worker(args.impl, timeout=args.timeout)
            runner.start()
        try:
            return _check(args, runner, name, out)
        finally:
            runner.close()


def _check(args: argparse.Namespace, runner: Runner, name: str, out: TextIO) -> int:
    """check, against and golden: the implementation's layout and precision, then the
    session (:func:`~reference.run.session.session`), then its report; ``SIGTERM`` from the
    first call on ends it as :class:`~reference.run.streaming.Terminated`."""
    from ..run.streaming import sigterm_raises

    with sigterm_raises():
        return _checked(args, runner, name, out)


def _checked(args: argparse.Namespace, runner: Runner, name: str, out: TextIO) -> int:
    scope = resolve_scope(args, runner.declared)
    found = _settle_layout(runner, scope, out)
    head = provenance(args, legacy_parser()) if args.json else None
    if found.error is not None:  # checks nothing; the JSON, JUnit and HTML files say it too
        outcome = refused(args, name, scope, CheckResult("layout", False, found.error), head)
        if args.html:
            from ..report.html import write_html

            write_html(args.html, outcome, name, seed=args.seed,
                       summary=summary_line(outcome, name), gradients={})  # fmt: skip
        return 1
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
    runner = Timed(runner)  # each network's time, for the JUnit file (every --jobs worker's)
    outcome = session(args, runner, name, scope, head, golden)
    _report(args, runner, name, outcome, golden, out)
    return 0 if outcome.ok else 1


def _settle_layout(runner: Runner, scope: Scope, out: TextIO) -> Detection:
    """Set ``runner`` to the declared or detected layout (``run/runner.py``), and say which
    was detected, or, once, that the declared one does not fit."""
    found = settle_layout(runner, scope)
    if found.error is not None:  # said once, not at every check
        out.write(f"FAIL layout: {found.error}\n")
    elif found.note:
        out.write(f"{found.note}\n")
    return found


def _report(
    args: argparse.Namespace,
    runner: Runner,
    name: str,
    outcome: Outcome,
    golden: tuple[bool, list[str], list[Any]] | None,
    out: TextIO,
) -> None:
    """The terminal report (text, or GitHub's), then the plots and the HTML page asked for."""
    drift = [f"{line}\n" for line in golden[1]] if golden is not None else []
    if args.format == "github":
        from ..report import github
        from ..report.provenance import member_locations

        locations = runner.run(member_locations)
        github.print_github(
            outcome, name, out,
            lambda stream: (stream.write("".join(drift)),
                            print_outcome(outcome, name, stream, args.quiet, args.verbose)),
            locations if isinstance(locations, dict) else {}, strict=args.strict,
        )  # fmt: skip
    else:
        out.write("".join(drift))
        print_outcome(outcome, name, out, args.quiet, args.verbose)
    if golden is not None:
        verdict = "same gradients as" if golden[0] else "gradients DRIFTED from"
        out.write(f"{verdict} {args.golden[1]}\n")
    if args.plot:
        for path in write_plots(runner, outcome, args.plot):
            if not args.quiet:
                out.write(f"wrote {path}\n")
    if args.html:
        from ..report.html import failing_sets, write_html
        from ..run.plots import heatmap_gradients

        grads = heatmap_gradients(runner, outcome, failing_sets(outcome))
        write_html(args.html, outcome, name, seed=args.seed,
                   summary=summary_line(outcome, name), gradients=grads)  # fmt: skip
        if not args.quiet:
            out.write(f"wrote {args.html}\n")


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
