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
from typing import TextIO

from ..boundary.isolation import Failed, LoadFailed, Worker
from ..boundary.loading import ImplementationError, load_impl
from ..inputs.networks import undrawn
from ..inputs.penalties import penalty_problems
from ..inputs.scope import (
    DTYPES,
    KEYS,
    Scope,
    ScopeError,
    from_pyproject,
)
from ..judging.outcome import Outcome
from ..report.formulas import explain
from ..report.junit import write_junit  # noqa: F401 (cli.write_junit, as before)
from ..report.text import print_outcome, summary_line
from ..run.golden import golden_results, golden_save
from ..run.plots import write_plots
from ..run.runner import InProcess, Runner, Timed, WithDtype
from ..run.scaling import parse_shard, run_networks
from ..run.session import UsageError, writable


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


SUBCOMMANDS = {
    "check": "check an implementation (what backprop-check does with no subcommand)",
    "against": "check an implementation and an upstream on the same networks, and say where "
    "they part",
    "golden": "record the gradients of fixed networks to an .npz, or compare against one",
    "grade": "points per rubric item, in Gradescope's results format, for one implementation "
    "or a folder of submissions",
    "bugs": "run the harness on every catalogued mistake and print the detection matrix",
    "explain": "explain the seed network's matrices and formulas",
}
"""``backprop-check``'s subcommands, each with only its own options."""

MODE_FLAGS = {
    "explain": "explain",
    "bugs": "bugs",
    "golden": "golden save|compare PATH",
    "against": "against UPSTREAM",
    "gradescope": "grade --gradescope PATH",
    "submissions": "grade --submissions DIR",
}
"""The options that chose a mode before the subcommands, with the subcommand each is now:
still accepted for one release, with a one-line note."""


def _add_impl(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--impl",
        default="backprop",
        metavar="MODULE",
        help="implementation to check: package.module or package.module:object (default: backprop)",
    )


def _add_networks(parser: argparse.ArgumentParser) -> None:
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


def _add_output(parser: argparse.ArgumentParser, plots: bool = True) -> None:
    out = parser.add_argument_group("output")
    out.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    out.add_argument(
        "--verbose", action="store_true", help="print every network's table and every check"
    )
    out.add_argument("--json", type=Path, metavar="PATH", help="write the whole result as JSON")
    out.add_argument(
        "--junit-xml", type=Path, metavar="PATH", help="write JUnit XML for CI systems"
    )
    out.add_argument(
        "--format",
        choices=("text", "github"),
        default="text",
        help="text (the default): the terminal report; github: the report folded, then GitHub "
        "Actions annotations (::error file=...,line=...) at the code at fault, and a Markdown "
        "summary appended to $GITHUB_STEP_SUMMARY when it is set",
    )
    out.add_argument(
        "--progress",
        action="store_true",
        help="show networks done / total, the rate and the time left on stderr even when it "
        "is not a terminal (on a terminal it is shown anyway; never with --quiet)",
    )
    if plots:
        out.add_argument(
            "--plot",
            type=Path,
            metavar="DIR",
            help="write PNG heatmaps and the FD step curve (needs matplotlib)",
        )
        out.add_argument(
            "--html",
            type=Path,
            metavar="PATH",
            help="write the run as one self-contained HTML page: every network's table with "
            "the failing cells marked, the other checks, heatmaps of the failing gradients",
        )


def _add_scope(parser: argparse.ArgumentParser) -> None:
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
        metavar="NAME|KEY=VALUE,...",
        help="how the implementation lays out its arrays: a preset, columns (the seed's, the "
        "default), rows, dicts or samples, or keys samples=columns|rows|one, W=out_in|in_out, "
        "b=column|row|flat, container=pairs|lists|dict|object, W_key=W{l}, b_key=b{l}, "
        "grads=auto|d{} (e.g. samples=rows,b=flat); the harness converts, exactly, and "
        "detects it where the shapes say",
    )
    scope.add_argument(
        "--dtype",
        choices=DTYPES,
        help="the precision the implementation computes in: it is given its arrays in it and "
        "judged at its unit roundoff (default: float64, or what its results come back in)",
    )


def _add_verdict(parser: argparse.ArgumentParser, relu: bool = True) -> None:
    verdict = parser.add_argument_group("verdict")
    verdict.add_argument(
        "--strict",
        action="store_true",
        help="warnings (numerical robustness) and conventions (deliberate differences from the "
        "seed) fail the run too",
    )
    if relu:
        verdict.add_argument(
            "--relu-at-zero",
            type=float,
            choices=(0.0, 1.0),
            metavar="0|1",
            help="require this relu'(0) (default: any value in [0, 1] is a valid subgradient, "
            "and the report says which one the code uses)",
        )


def _add_worker(parser: argparse.ArgumentParser, in_process: bool = True) -> None:
    worker = parser.add_argument_group("the code under test")
    worker.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit on each call into the implementation (default 60); a call that runs "
        "longer is a TIMEOUT finding and the run goes on",
    )
    if in_process:
        worker.add_argument(
            "--in-process",
            action="store_true",
            help="run the implementation in this process: no worker, no time limit, its output "
            "not captured (for debugging the implementation with pdb)",
        )


def _add_scaling(parser: argparse.ArgumentParser) -> None:
    scaling = parser.add_argument_group("scaling out")
    scaling.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="check only the K-th of N disjoint slices of the networks (a CI matrix of N "
        "entries covers the whole run); the fixed checks run in shard 1",
    )
    scaling.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes at once: the networks of one check, with the same report as one "
        "(default 1: each worker compiles its own JAX model, which a short run does not repay)",
    )
    scaling.add_argument(
        "--layer-view",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="for the first network of each mistake that blames the backward pass, check each "
        "step of it alone and say whether a local derivative or the chaining of the deltas is "
        "wrong (default: on; --no-layer-view leaves it out)",
    )


def _add_golden_rtol(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--golden-rtol",
        type=float,
        metavar="RTOL",
        help="with compare: the relative drift ||now - then|| / ||then|| allowed per layer and "
        "parameter (default 1e-10 in float64, 1024 eps of a lower precision the gradients come "
        "back in), so that an intended numerical change passes",
    )


def _add_grading(parser: argparse.ArgumentParser, jobs: bool = True) -> None:
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
        help="a course's rubric (TOML; default: the one shipped, reference/grading/rubric.toml)",
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
    if jobs:
        grading.add_argument(
            "--jobs",
            type=int,
            metavar="N",
            help="with --submissions, submissions graded in parallel (default: the number of "
            "cores)",
        )


def _add_check(parser: argparse.ArgumentParser) -> None:
    """The options of a check (``check``, and ``against`` beside its upstream)."""
    _add_impl(parser)
    _add_networks(parser)
    _add_output(parser)
    _add_scope(parser)
    _add_verdict(parser)
    _add_worker(parser)
    _add_scaling(parser)


def build_parser() -> argparse.ArgumentParser:
    """``backprop-check SUBCOMMAND [options]``: each subcommand with only its own options, so
    a combination that means nothing is a usage error. With no subcommand, ``check``."""
    parser = argparse.ArgumentParser(
        prog="backprop-check",
        description="Verify a hand-written backprop implementation against finite differences "
        "and jax.grad, layer by layer, and say what is wrong. With no subcommand: check "
        "(backprop-check check --help lists its options).",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, text in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=text, description=text, allow_abbrev=False)
        if name in ("check", "against"):
            if name == "against":
                command.add_argument(
                    "upstream",
                    metavar="UPSTREAM",
                    help="the implementation to compare with (package.module[:object]), in its "
                    "own worker: the first network, layer and parameter where the two part, by "
                    "how much against the oracles' bounds, and what kind of difference it is",
                )
            _add_check(command)
        elif name == "golden":
            command.add_argument("mode", choices=("save", "compare"), help="save or compare")
            command.add_argument("path", type=Path, metavar="PATH", help="the .npz file")
            _add_impl(command)
            _add_golden_rtol(command)
            _add_output(command, plots=False)
            _add_scope(command)
            _add_verdict(command, relu=False)
            _add_worker(command)
        elif name == "grade":
            _add_impl(command)
            _add_grading(command)
            _add_worker(command)
            command.add_argument(
                "--quiet", action="store_true", help="print the summary, not each item"
            )
        elif name == "bugs":
            command.add_argument(
                "--json", type=Path, metavar="PATH", help="write the detection matrix as JSON"
            )
    return parser


def legacy_parser() -> argparse.ArgumentParser:
    """The options of every mode in one list, as before the subcommands (kept for one
    release: a mode flag, :data:`MODE_FLAGS`, prints a one-line note)."""
    parser = argparse.ArgumentParser(
        prog="backprop-check",
        description="Verify a hand-written backprop implementation against finite differences "
        "and jax.grad, layer by layer, and say what is wrong. Subcommands: "
        + ", ".join(SUBCOMMANDS) + " (backprop-check SUBCOMMAND --help).",
    )  # fmt: skip
    _add_impl(parser)
    _add_networks(parser)
    _add_output(parser)
    _add_scope(parser)
    _add_verdict(parser)
    _add_worker(parser)
    _add_scaling(parser)
    _add_golden_rtol(parser)
    _add_grading(parser, jobs=False)
    modes = parser.add_argument_group("modes (now subcommands; the flags go in the next release)")
    modes.add_argument("--golden", nargs=2, metavar=("save|compare", "PATH"),
                       help="now: backprop-check golden save|compare PATH")  # fmt: skip
    modes.add_argument("--explain", action="store_true", help="now: backprop-check explain")
    modes.add_argument("--bugs", action="store_true", help="now: backprop-check bugs")
    modes.add_argument("--against", metavar="MODULE", help="now: backprop-check against MODULE")
    return parser


def parse(argv: Sequence[str], err: TextIO | None = None) -> argparse.Namespace:
    """``argv`` as the run's options: a subcommand's (:func:`build_parser`), or the flags of
    before (:func:`legacy_parser`, a note on ``err`` for each mode flag). Either way every
    option of :func:`legacy_parser` is set, at its default where the subcommand has none, and
    the subcommand is ``args.command``."""
    argv = list(argv)
    if argv and (argv[0] in SUBCOMMANDS or argv[0] in ("-h", "--help")):
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # named against the subcommand, whose options they are not
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            sub.choices[args.command].error(
                f"unrecognized arguments: {' '.join(extra)} (not options of {args.command}: "
                f"backprop-check {args.command} --help lists its options)"
            )
        if args.command == "against":
            args.against = args.upstream
            del args.upstream
        elif args.command == "golden":
            args.golden = [args.mode, str(args.path)]
            del args.mode, args.path
        elif args.command in ("bugs", "explain"):
            setattr(args, args.command, True)
    else:
        args = legacy_parser().parse_args(argv)
        given = [flag for flag in MODE_FLAGS if getattr(args, flag, None) not in (None, False)]
        for flag in given:
            if err is not None:
                err.write(
                    f"backprop-check: note: --{flag} is now `backprop-check {MODE_FLAGS[flag]}`;"
                    " the flag goes in the next release\n"
                )
        args.command = _legacy_command(args)
    for action in legacy_parser()._actions:  # argparse keeps no public list of its options
        if action.dest != "help" and not hasattr(args, action.dest):
            setattr(args, action.dest, action.default)
    return args


def _legacy_command(args: argparse.Namespace) -> str:
    if args.explain:
        return "explain"
    if args.bugs:
        return "bugs"
    if args.gradescope is not None or args.submissions is not None:
        return "grade"
    if args.golden:
        return "golden"
    return "against" if args.against else "check"


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
            writable(path, option)
    if args.plot is not None:
        writable(args.plot, "--plot", directory=True)
    if args.html is not None:
        writable(args.html, "--html")
    if args.golden and args.golden[0] not in ("save", "compare"):
        raise UsageError(f"--golden takes save or compare, got {args.golden[0]!r}")
    if args.golden and args.golden[0] == "save":
        writable(Path(args.golden[1]), "--golden save")
    if args.golden_rtol is not None:
        if not (args.golden and args.golden[0] == "compare"):
            raise UsageError("--golden-rtol applies to --golden compare PATH")
        if not 0 < args.golden_rtol < float("inf"):
            raise UsageError(f"--golden-rtol must be a number > 0, got {args.golden_rtol}")
    if args.golden and args.golden[0] == "compare" and (args.against or args.shard):
        raise UsageError("--golden compare compares with the file: not with --against or --shard")
    if args.against:
        from ..run.against import preflight

        why = preflight(args.against)  # before the fork's run, not after it
        if why:
            raise UsageError(why)
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
    scope = resolve_scope(args, runner.declared)
    if scope.layout not in (None, "columns"):
        runner.use_layout(scope.layout)
    from ..boundary.detect import Detection, detect_layout, probe_problem

    found = runner.run(detect_layout, scope.layout, probe_problem(scope))  # boundary/detect.py
    found = Detection() if isinstance(found, Failed) else found  # the checks will say why
    if found.error is not None:  # said once, not at every check
        out.write(f"FAIL layout: {found.error}\n")
        return 1
    if found.layout is not None:
        runner.use_layout(found.layout)
        out.write(f"{found.note}\n")
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
    from ..report.provenance import provenance
    from ..run import streaming

    try:
        problems = streaming.ProblemStream(args.seed, args.networks, scope)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None
    problems.extra = penalty_problems(args.seed, scope)  # L2-penalised, where declared
    progress = streaming.progress_for(args, len(problems))
    runner = Timed(runner)  # each network's time, for the JUnit file (every --jobs worker's)
    head = provenance(args, legacy_parser()) if args.json else None
    viewer = None
    if args.layer_view:  # where the backward pass goes wrong, in failing reports (layer_views.py)
        from ..run.layer_views import Viewer

        viewer = Viewer(runner)
    with streaming.Stream(args, name, runner.times, head, viewer) as stream:  # a stopped run, too
        # run_checks on --shard's slice, over --jobs workers, and --against (scaling.py)
        if golden is not None:  # --golden compare: the drift per network, no network judged
            outcome = Outcome(golden[0], checks=golden[2])
        else:
            outcome = run_networks(args, runner, problems, progress,
                                   scope, sink=stream)  # fmt: skip
        if args.strict:
            outcome.judge_strictly()
        outcome.out_of_scope = undrawn(args.seed, scope) if golden is None else 0
        outcome.scope = scope.to_dict()
        outcome.times = dict(runner.times)
        stream.finish(outcome)  # the JSON and JUnit files' ends
    if args.format == "github":
        from ..report import github
        from ..report.provenance import member_locations

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
        from ..report.html import failing_sets, write_html
        from ..run.plots import heatmap_gradients

        grads = heatmap_gradients(runner, outcome, failing_sets(outcome))
        write_html(args.html, outcome, name, seed=args.seed,
                   summary=summary_line(outcome, name), gradients=grads)  # fmt: skip
        if not args.quiet:
            out.write(f"wrote {args.html}\n")
    return 0 if outcome.ok else 1


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
