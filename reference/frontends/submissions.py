"""Grading a class at once: every submission in a folder, each in its own worker process.

A submission is a ``.py`` file or a package directory (with ``__init__.py``) directly in
the folder; anything else there (files starting with ``.`` or ``_``, data files) is
skipped. Each is imported by its path under a name of its own
(:func:`reference.boundary.loading.import_path`), in a worker process of its own that runs
in a temporary copy of that submission alone (:class:`~reference.boundary.isolation.Worker`,
under the grading policy of :mod:`reference.boundary.policy`), so that two students'
``backprop.py`` never meet, a classmate's files are out of reach, and a file called
``backprop.py`` is not mistaken for the built-in package. ``jobs`` submissions are judged at
a time, each in a grading process of its own (the judging is Python: threads would share one
core), and each has a wall-time limit on all its calls together: a submission that hangs,
crashes, exits, fails to import or runs slowly costs its own row only.

:func:`grade_class` writes ``gradebook.csv`` (submission, score, max, first error) and
one Gradescope results file per submission (``<name>.json``) into the output folder. What
the isolation does and does not stop is in the README's grading section.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from ..boundary.policy import Policy
from .grading import Grade, failed_grade, grade, write_gradescope
from .rubric import Rubric

GRADEBOOK = "gradebook.csv"
COLUMNS = ("submission", "score", "max", "first error")
"""The gradebook's columns."""


@dataclass
class Row:
    """One submission's line of the gradebook, and where its results file is."""

    submission: str
    grade: Grade
    results: Path
    folder: str = ""
    """The class folder, left out of the first error's paths."""

    def cells(self) -> list[str]:
        error = (
            self.grade.first_error().replace(self.folder + os.sep, "")
            if self.folder
            else (self.grade.first_error())
        )
        return [
            self.submission,
            f"{self.grade.score:g}",
            f"{self.grade.max_score:g}",
            " ".join(error.split())[:300],
        ]


def find_submissions(directory: Path) -> list[Path]:
    """The submissions in ``directory``, by name: each ``.py`` file and each directory
    (a package needs an ``__init__.py``; one without is listed, and its grade says so)."""
    if not directory.is_dir():
        raise ValueError(f"submissions: {str(directory)!r} is not a directory")
    found = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")):
            continue
        if (entry.is_file() and entry.suffix == ".py") or entry.is_dir():
            found.append(entry)
    return found


def _results_names(entries: list[Path]) -> list[str]:
    """A results file name per submission: its name without ``.py``, unless a package of
    the same name is there too."""
    stems = [e.stem if e.is_file() else e.name for e in entries]
    return [
        f"{e.name if stems.count(s) > 1 and e.is_file() else s}.json"
        for e, s in zip(entries, stems)
    ]


_CACHE_SETTINGS = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


@contextmanager
def _shared_compilation_cache() -> Iterator[None]:
    """Every worker started meanwhile shares one on-disk JAX compilation cache (a temporary
    directory, unless ``JAX_COMPILATION_CACHE_DIR`` names one already): the submissions are
    graded on the same networks, so the JAX model is compiled once for the class, not once
    per submission, which is most of a fresh worker's time."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        yield
        return
    saved = {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR", *_CACHE_SETTINGS)}
    with tempfile.TemporaryDirectory(prefix="backprop-grading-jax-") as directory:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
        for key, value in _CACHE_SETTINGS.items():
            os.environ.setdefault(key, value)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def grade_class(
    directory: Path,
    out: Path,
    *,
    rubric: Rubric,
    hidden_seed: int | None = None,
    jobs: int | None = None,
    timeout: float = 60.0,
    wall_limit: float = 300.0,
    on_done: Callable[[Row], None] | None = None,
    limits: dict[str, int | None] | None = None,
    user: str | None = None,
) -> list[Row]:
    """Grade every submission in ``directory`` (:func:`find_submissions`) and write
    ``out/gradebook.csv`` and ``out/<name>.json``; returns the rows in name order.

    ``jobs``: submissions graded at once (None: the number of cores; above 1, each is judged
    in one of ``jobs`` spawned grading processes); each runs in its own worker process,
    with ``timeout`` seconds per call and ``wall_limit`` seconds for the whole submission.
    ``on_done`` is called with each row as it finishes. Each worker runs in a temporary copy
    of its submission alone, under
    :meth:`~reference.boundary.policy.Policy.grading` (the rubric's forbidden modules; the
    class folder, ``out`` and the rubric unreadable; ``limits`` over the default resource
    limits), as ``user`` when given.
    """
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if not wall_limit > 0:
        raise ValueError(f"wall_limit must be > 0 seconds, got {wall_limit!r}")
    entries = find_submissions(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = _results_names(entries)
    # the class folder (every classmate's files), the results and the rubric: unreadable
    unreadable = [directory.resolve(), out.resolve()]
    if Path(rubric.source).is_file():
        unreadable.append(Path(rubric.source).resolve())
    policy = Policy.grading(rubric.forbid, unreadable, limits)

    settings = {"rubric": rubric, "hidden_seed": hidden_seed, "timeout": timeout,
                "wall_limit": wall_limit, "policy": policy, "user": user}  # fmt: skip

    def finish(k: int, graded: Grade) -> Row:
        row = Row(entries[k].name, graded, out / names[k], str(directory.resolve()))
        write_gradescope(graded, row.results)
        if on_done is not None:
            on_done(row)
        return row

    rows: list[Row | None] = [None] * len(entries)
    with _shared_compilation_cache():
        if jobs == 1 or len(entries) < 2:
            for k, entry in enumerate(entries):
                rows[k] = finish(k, _grade_entry(entry, settings))
        else:
            # The judging is Python and NumPy in the grading process: a process each, not a
            # thread each, lets two submissions be judged at once (the GIL would not).
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                started = {pool.submit(_grade_entry, e, settings): k for k, e in enumerate(entries)}
                for future in as_completed(started):
                    k = started[future]
                    try:
                        graded = future.result()
                    except Exception as exc:  # the pool itself failed (a process killed)
                        graded = _grader_failed(entries[k], settings, exc)
                    rows[k] = finish(k, graded)
    done = [row for row in rows if row is not None]
    with open(out / GRADEBOOK, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(row.cells() for row in done)
    return done


def _grade_entry(entry: Path, settings: dict) -> Grade:
    """One submission's grade (run in the grading process, or in one of the pool's): in a
    worker of its own, run in a copy of ``entry`` alone."""
    try:
        return grade(str(entry.resolve()), name=entry.name, copy=entry, **settings)
    except Exception as exc:  # the grader's own failure: this row says so, the rest go on
        return _grader_failed(entry, settings, exc)


def _grader_failed(entry: Path, settings: dict, exc: BaseException) -> Grade:
    message = f"the grader failed: {type(exc).__name__}: {exc}"
    hidden = settings["hidden_seed"] is not None
    return failed_grade(settings["rubric"], entry.name, message, 0.0, hidden)


def _item_lines(graded: Grade) -> list[str]:
    lines = []
    for item in graded.items:
        first = item.output.splitlines()[0] if item.output else ""
        mark = "ok  " if item.passed else "FAIL"
        lines.append(
            f"  {mark} {item.score:>7.4g} / {item.max_score:<4g} {item.name}: {first[:160]}"
        )
    return lines


WALL_LIMIT = 300.0
"""Seconds for all of one submission's calls together, unless ``--submission-timeout``
says otherwise (under ``--gradescope`` too: a submission that sleeps just under the
per-call limit on every call would otherwise take hours)."""


class _Terminated(BaseException):
    """SIGTERM arrived while grading (what a CI or Gradescope sends on a time-out)."""


@contextmanager
def _terminated_as_error() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` in the main thread meanwhile, so the caller can
    still write its results; the previous handler comes back after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _limits(args: argparse.Namespace) -> dict[str, int | None]:
    """``--limit NAME=VALUE`` options as a dict (a usage error names a bad one)."""
    from ..boundary.policy import LIMITS
    from .cli import UsageError

    out: dict[str, int | None] = {}
    for text in getattr(args, "limit", None) or []:
        name, _, value = text.partition("=")
        if name not in LIMITS or not value.strip().isdigit():
            raise UsageError(
                f"--limit takes NAME=VALUE with NAME one of {', '.join(LIMITS)} and a whole "
                f"number >= 0, got {text!r}"
            )
        out[name] = int(value)
    return out


def main_grading(args: argparse.Namespace, out: TextIO) -> int:
    """``backprop-check --gradescope PATH`` and ``--submissions DIR`` (with ``--rubric``,
    ``--hidden-seed``, ``--hidden-visibility``, ``--submission-timeout``, ``--jobs``).

    Exit status with ``--gradescope``: 0 full points, 1 fewer, 2 a usage error or code that
    could not be imported (its results file, at 0 points, is written all the same). With
    ``--submissions``: 0 once the gradebook is written, whatever the grades."""
    from ..boundary.loading import load_impl
    from .cli import UsageError, _writable
    from .grading import hidden_seed_from
    from .rubric import RubricError, load_rubric

    if not args.gradescope and not args.submissions:
        raise UsageError(
            "--rubric and --hidden-seed go with --gradescope PATH or --submissions DIR"
        )
    if args.gradescope and args.submissions:
        raise UsageError(
            "--gradescope grades one implementation (--impl), --submissions a folder of them: "
            "give one of the two"
        )
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    if args.submission_timeout is not None and not args.submission_timeout > 0:
        raise UsageError(f"--submission-timeout must be > 0 seconds, got {args.submission_timeout}")
    if args.hidden_seed is not None and args.hidden_seed < 0:
        raise UsageError("--hidden-seed must be >= 0 (its value is not shown)")
    try:
        rubric = load_rubric(args.rubric)
        seed = hidden_seed_from(args.hidden_seed)
    except (RubricError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.hidden_visibility:
        groups = tuple(replace(g, visibility=args.hidden_visibility) for g in rubric.hidden)
        rubric = replace(rubric, hidden=groups)

    if args.gradescope:
        _writable(args.gradescope, "--gradescope")
        impl = load_impl(args.impl) if args.in_process else args.impl
        wall = args.submission_timeout if args.submission_timeout is not None else WALL_LIMIT
        with _terminated_as_error():
            try:
                graded = grade(
                    impl,
                    rubric=rubric,
                    hidden_seed=seed,
                    timeout=args.timeout,
                    wall_limit=wall,
                    name=args.impl,
                    user=args.user,
                    limits=_limits(args),
                )
            except _Terminated:  # Gradescope needs a results file even when grading fails
                message = "the grading was stopped (SIGTERM) before it finished"
                graded = failed_grade(rubric, args.impl, message, 0.0, seed is not None)
        write_gradescope(graded, args.gradescope)
        if not args.quiet:
            out.write("\n".join(_item_lines(graded)) + "\n")
        out.write(f"{graded.output}\nwrote {args.gradescope}\n")
        if graded.error:
            return 2
        return 0 if graded.score >= graded.max_score else 1

    if args.in_process:
        raise UsageError("--submissions grades each submission in a worker; drop --in-process")
    if not args.submissions.is_dir():
        raise UsageError(f"--submissions {args.submissions}: not a directory")
    _writable(args.grades, "--grades", directory=True)

    def done(row: Row) -> None:
        if not args.quiet:
            error = row.cells()[3]
            out.write(
                f"  {row.grade.score:>7.4g} / {row.grade.max_score:<4g} {row.submission}"
                + (f": {error[:120]}" if error else "")
                + "\n"
            )
            out.flush()

    rows = grade_class(
        args.submissions,
        args.grades,
        rubric=rubric,
        hidden_seed=seed,
        jobs=args.jobs,
        timeout=args.timeout,
        wall_limit=args.submission_timeout if args.submission_timeout is not None else WALL_LIMIT,
        on_done=done,
        limits=_limits(args),
        user=args.user,
    )
    full = sum(r.grade.score >= r.grade.max_score for r in rows)
    out.write(
        f"graded {len(rows)} submissions ({full} with full points); wrote "
        f"{args.grades / GRADEBOOK} and {len(rows)} results files in {args.grades}\n"
    )
    return 0
