"""``backprop-check``'s options: one group per concern, the subcommands that take them (each
only its own), and the flag form of before (:func:`legacy_parser`), kept for one release."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..inputs.scope import DTYPES
from ..run.scaling import parse_shard


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _widths(text: str) -> list[int]:
    try:
        return [int(n) for n in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths such as 1,2, got {text!r}") from None


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
