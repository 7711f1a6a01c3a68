"""Where the test suite's CPU time goes, by what each process was doing: py-spy samples every
process the suite starts, the workers and the processes killed by a signal included.

    pip install py-spy                                              # not a dependency
    CI=true python -m benchmarks.suite_profile                      # the working tree
    CI=true python -m benchmarks.suite_profile --rev HEAD --top 20  # a revision, exported
    python -m benchmarks.suite_profile --from samples.txt           # a run's samples again
    CI=true python -m benchmarks.suite_profile -- tests/test_cli.py # pytest's arguments

The suite runs as ``benchmarks.suite_time`` runs it, under ``py-spy record --subprocesses
--nonblocking -f raw``: ``--rate`` times a second py-spy reads the Python stack of every
process of the run that is on a CPU (an idle one gives no sample). A sample stands for 1/rate
seconds of CPU, so the figures are estimates: a process that lives less than a sampling
period may give none; threads that run no Python (BLAS's, XLA's compiler) are not seen, so
the total is below what ``getrusage`` counts; py-spy's count of the reads it missed is
printed. ``--keep`` writes the rate into the file, which ``--from`` then reads.
``benchmarks.suite_processes`` gives each logged process's exact CPU time; this one sees the
workers too, and splits the time by phase:

- imports (any frame of ``importlib``'s ``_find_and_load``);
- pytest's garbage collection at exit (``gc_collect_harder``);
- Hypothesis reading the constants of local modules' source (``_get_local_constants``);
- JAX tracing and lowering (``partial_eval``, ``mlir``), and compiling or loading from the
  compilation cache (``compiler.py``);
- shrinking a failure: Hypothesis's shrinker, and the test's body (the checks, the code under
  test) that it runs again;
- drawing examples: Hypothesis's strategies, and ours in ``reference/inputs`` that they call;
- the code under test (a worker's ``_call``, or ``Guarded._invoke`` in this process);
- everything else: the checks, the oracles' NumPy work, pytest's own.

A stack counts in the first phase of that list it matches.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .suite_processes import MAIN_PROCESS, child_kind, one_revision_parser
from .suite_time import ROOT, export, run_suite, split_args


@dataclass(frozen=True)
class Sample:
    """``count`` samples of one stack: the processes from the run's root down to the one
    sampled (``PID:command line``), and that process's frames, outermost first."""

    processes: tuple[str, ...]
    frames: tuple[str, ...]
    count: int


RATE = 20.0
"""Samples a second, unless ``--rate`` says otherwise."""
_HEADER = re.compile(r'process \d+:"')
_FRAME = re.compile(r".* \(.*:-?\d+\)$")
_END = re.compile(r'[)"] (\d+)$')


def _split(stack: str, strict: bool = True) -> tuple[list[str], list[str]] | None:
    """A record's stack as its processes and its frames; None while a command line is open.

    A command line ends at a ``"`` that the next part (the next ``;``) does not continue: a
    part that opens another process, a frame (``name (file:line)``), or the end. Not
    ``strict``: at the first part that ends with ``"`` (py-spy, reading a process that runs,
    sometimes gives a frame of another shape)."""
    parts = stack.split(";")
    processes: list[str] = []
    i = 0
    while i < len(parts) and _HEADER.match(parts[i]):
        header = parts[i]
        i += 1
        while not header.endswith('"') or (
            strict and i < len(parts) and not _HEADER.match(parts[i]) and not _FRAME.match(parts[i])
        ):
            if i == len(parts):
                return None
            header += ";" + parts[i]
            i += 1
        processes.append(header.removeprefix("process ").replace(':"', ":", 1)[:-1])
    return processes, parts[i:]


def read_samples(text: str, unread: list[str] | None = None) -> Iterator[Sample]:
    """py-spy's raw (collapsed) format: one stack per record, frames joined by ``;``, the
    count last. With ``--subprocesses`` the first frames are ``process PID:"command line"``;
    a command line may hold ``;`` or newlines, so a record ends at the first line that ends
    with a frame or a command line and a count, once every command line is closed. Records
    that do not start with a process, or never close, go to ``unread`` (when given)."""
    record: list[str] = []
    for line in text.split("\n"):
        if line.startswith("#") and not record:  # a note of --keep's
            continue
        record.append(line)
        found = _END.search(line)
        if not found:
            continue
        joined = "\n".join(record)
        stack = joined[: len(joined) - len(line) + found.start() + 1]  # up to the ) or "
        split = _split(stack) or _split(stack, strict=False) if _HEADER.match(joined) else None
        if split is None and _HEADER.match(joined):
            continue  # a command line still open: the count was part of it
        record = []
        if split is None or not split[0]:
            if unread is not None:
                unread.append(joined)
            continue
        yield Sample(tuple(split[0]), tuple(split[1]), int(found.group(1)))
    if unread is not None and any(record):
        unread.append("\n".join(record))


def process_kind(sample: Sample) -> str:
    """The kind of the sampled process: the run's root is the suite's own pytest process."""
    if len(sample.processes) <= 1:
        return MAIN_PROCESS
    return child_kind(sample.processes[-1].split(":", 1)[1])


def _any(*needles: str) -> Callable[[tuple[str, ...]], bool]:
    return lambda frames: any(needle in frame for frame in frames for needle in needles)


PHASES: tuple[tuple[str, Callable[[tuple[str, ...]], bool]], ...] = (
    ("imports", _any("_find_and_load (")),
    ("pytest's garbage collection at exit", _any("gc_collect_harder (")),
    ("Hypothesis: constants of local modules", _any("_get_local_constants (")),
    ("JAX: tracing and lowering", _any("interpreters/partial_eval.py", "interpreters/mlir.py")),
    ("JAX: compiling, or loading from the cache", _any("jax/_src/compiler.py")),
    (
        "shrinking a failure (Hypothesis, and the test's body it runs again)",
        _any("conjecture/shrink"),
    ),
    (
        "drawing examples (Hypothesis, and the strategies of reference/inputs)",
        _any("hypothesis/strategies/", "hypothesis/extra/"),
    ),
    ("the code under test", _any("_call (reference/boundary/server.py", "Guarded._invoke (")),
)
"""Each phase with its test on a stack's frames, in the order they are tried."""
REST = "everything else (the checks, the oracles' NumPy work, pytest)"


def phase(sample: Sample) -> str:
    """The first of :data:`PHASES` whose test ``sample``'s frames pass, else :data:`REST`."""
    return next((name for name, test in PHASES if test(sample.frames)), REST)


def test_of(sample: Sample) -> str | None:
    """The outermost frame of a test module (``test_*.py`` or ``conftest.py``), as
    ``file::function``."""
    for frame in sample.frames:
        found = re.match(r"(\S+) \((?:.*/)?((?:test_\w*|conftest)\.py):\d+\)$", frame)
        if found:
            return f"{found.group(2)}::{found.group(1)}"
    return None


def summarize(samples: list[Sample], rate: float, top: int = 0) -> list[str]:
    """Seconds of CPU by kind of process, by phase, and by test module of the suite's own
    process (and its ``top`` costliest tests)."""
    seconds = 1.0 / rate
    total = sum(s.count for s in samples)
    kinds: Counter[str] = Counter()
    processes: defaultdict[str, set[str]] = defaultdict(set)
    phases: Counter[str] = Counter()
    by_kind_phase: defaultdict[str, Counter[str]] = defaultdict(Counter)
    files: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    for sample in samples:
        kind = process_kind(sample)
        kinds[kind] += sample.count
        processes[kind].add(sample.processes[-1] if sample.processes else "")
        name = phase(sample)
        phases[name] += sample.count
        by_kind_phase[kind][name] += sample.count
        if kind == MAIN_PROCESS:
            test = test_of(sample) or "(outside the tests: collection, pytest, start and exit)"
            files[test.split("::")[0]] += sample.count
            tests[test] += sample.count
    lines = [f"{total} samples at {rate:g} a second: about {total * seconds:.1f} s of CPU"]
    lines.append("by kind of process (how many were sampled at least once):")
    for kind, count in kinds.most_common():
        lines.append(f"  {count * seconds:7.1f} s  {kind} ({len(processes[kind])})")
    lines.append("by phase, with the three kinds of process that spent most on it:")
    for name, count in phases.most_common():
        where = sorted(by_kind_phase, key=lambda k: -by_kind_phase[k][name])[:3]
        spent = ", ".join(
            f"{k} {by_kind_phase[k][name] * seconds:.1f}" for k in where if by_kind_phase[k][name]
        )
        lines.append(f"  {count * seconds:7.1f} s  {name}  ({spent})")
    lines.append(f"the suite's own process, by test module ({MAIN_PROCESS}):")
    for name, count in files.most_common(12):
        lines.append(f"  {count * seconds:7.1f} s  {name}")
    if top:
        lines.append(f"its {top} costliest test functions and fixtures:")
        for name, count in tests.most_common(top):
            lines.append(f"  {count * seconds:7.1f} s  {name}")
    return lines


def _report(text: str, rate: float, top: int) -> list[str]:
    """:func:`summarize` of ``text``, with what could not be read counted."""
    unread: list[str] = []
    lines = summarize(list(read_samples(text, unread)), rate, top)
    if unread:
        lines.append(f"{len(unread)} records could not be read (not counted above)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ours, pytest_args = split_args(argv)
    parser = one_revision_parser("suite_profile", __doc__)
    parser.add_argument(
        "--rate",
        type=float,
        help=f"samples a second (default {RATE:g}; with --from, the rate the file names)",
    )
    parser.add_argument("--top", type=int, default=0, metavar="N", help="the N costliest tests")
    parser.add_argument(
        "--from", dest="source", type=Path, help="read these raw samples instead of running"
    )
    parser.add_argument("--keep", type=Path, help="also write the raw samples to this file")
    args = parser.parse_args(ours)
    if args.rate is not None and args.rate <= 0:
        parser.error(f"--rate must be above 0, got {args.rate}")
    if args.top < 0:
        parser.error(f"--top must be 0 or more, got {args.top}")
    if args.source is not None:
        if args.rev or args.keep or pytest_args:
            parser.error("--from reads samples already taken: --rev, --keep and pytest's "
                         "arguments do not apply")  # fmt: skip
        try:
            text = args.source.read_text()
        except OSError as exc:
            parser.error(f"--from: cannot read {args.source}: {exc.strerror}")
        named = re.match(r"# py-spy raw samples at ([0-9.]+) a second", text)
        if named and args.rate is not None and float(named.group(1)) != args.rate:
            parser.error(f"--rate {args.rate:g}: {args.source} was taken at {named.group(1)}")
        rate = float(named.group(1)) if named else args.rate or RATE
        print("\n".join(_report(text, rate, args.top)))
        return 0
    rate = args.rate or RATE
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="suite-profile-") as tmp:
        raw = Path(tmp, "samples.txt")
        where = export(args.rev, Path(tmp)) if args.rev else ROOT
        prefix = (spy, "record", "--subprocesses", "--nonblocking", "-r", f"{rate:g}",
                  "-f", "raw", "-o", str(raw), "--")  # fmt: skip
        run = run_suite(where, args.rev or "worktree", pytest_args, prefix=prefix)
        if not raw.exists():
            print(
                f"py-spy wrote no samples (exit {run.returncode}): {run.summary}", file=sys.stderr
            )
            return 1
        text = raw.read_text()
        if args.keep:
            args.keep.write_text(f"# py-spy raw samples at {rate:g} a second\n{text}")
    lines = [line for line in run.stdout.splitlines() if line]
    said = [line for line in lines if not line.startswith("py-spy>")]
    print(
        f"{run.label}: {run.wall:.1f} s wall under py-spy, exit {run.returncode}: "
        f"{said[-1] if said else run.summary}"
    )
    # py-spy's own count of samples and of the reads it missed, and its warnings
    print("\n".join(line for line in lines if re.match(r"py-spy> (Samples|.*behind)", line)))
    print("\n".join(_report(text, rate, args.top)))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
