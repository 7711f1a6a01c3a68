"""Grading a class at once: every submission in a folder, each in its own worker process.

A submission is a ``.py`` file, a Jupyter notebook (``.ipynb``) or a package directory
(with ``__init__.py``) directly in the folder; anything else there (files starting with
``.`` or ``_``, data files) is skipped. A notebook's code cells are exported to a module
(:func:`export_notebook`) graded like any other, and its messages name the notebook's
cells and lines, not the exported file's. Each is imported by its path under a name of its
own (:func:`reference.boundary.loading.import_path`), in a worker process of its own that
runs in a temporary copy of that submission alone (:class:`~reference.boundary.isolation.Worker`,
under the grading policy of :mod:`reference.boundary.policy`), so that two students'
``backprop.py`` never meet, a classmate's files are out of reach, and a file called
``backprop.py`` is not mistaken for the built-in package. ``jobs`` submissions are judged at
a time, each in a grading process of its own (the judging is Python: threads would share one
core), and each has a wall-time limit on all its calls together: a submission that hangs,
crashes, exits, fails to import or runs slowly costs its own row only.

:func:`grade_class` writes ``gradebook.csv`` (:func:`columns`: an identifier, the
submission, score, max, one column per rubric item, integrity findings, the first error)
and one Gradescope results file per submission (``<name>.json``) into the output folder.
The identifier is the submission's name without ``.py``/``.ipynb``, or the ``id`` a roster
gives it (:func:`read_roster`). What the isolation does and does not stop is in the
README's grading section.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from ..boundary.policy import Policy
from .grade import Grade, failed_grade, grade, safe_text, write_gradescope
from .notebooks import Exported, _translated, export_notebook
from .rubric import Rubric

__all__ = [
    "GRADEBOOK",
    "LEADING",
    "SUFFIXES",
    "TRAILING",
    "WALL_LIMIT",
    "Exported",
    "Row",
    "columns",
    "export_notebook",
    "find_submissions",
    "grade_class",
    "main_grading",
    "read_roster",
]
"""The names importable from here (:class:`Exported` and :func:`export_notebook` are
:mod:`.notebooks`', where they were before it was split from this module)."""

GRADEBOOK = "gradebook.csv"
LEADING = ("id", "submission", "score", "max")
"""The gradebook's first columns; one per rubric item follows, then :data:`TRAILING`."""
TRAILING = ("integrity", "first error")
"""The gradebook's last columns: integrity findings (``Grade.integrity``, joined by "; "),
and the first error."""
SUFFIXES = (".py", ".ipynb")
"""The files that are submissions."""


@dataclass
class Row:
    """One submission's line of the gradebook, and where its results file is."""

    submission: str
    grade: Grade
    results: Path
    folder: str = ""
    """The class folder, left out of the first error's paths."""
    id: str = ""
    """The student's identifier: the roster's, or the submission's name without suffix."""

    def cells(self, items: list[str] | None = None) -> list[str]:
        """The row under :func:`columns` (``items``: the item columns; None: this grade's)."""
        error = safe_text(self.grade.first_error(), (self.folder,) if self.folder else ())
        scores = self.grade.scores()
        names = items if items is not None else list(scores)
        return [
            self.id or _identifier(self.submission),
            self.submission,
            f"{self.grade.score:g}",
            f"{self.grade.max_score:g}",
            *(f"{scores[n]:g}" if n in scores else "" for n in names),
            "; ".join(" ".join(f.split()) for f in self.grade.integrity),
            " ".join(error.split())[:300],
        ]


def columns(rows: list[Row]) -> list[str]:
    """The gradebook's header: :data:`LEADING`, every item of the rows' grades (in rubric
    order), :data:`TRAILING`."""
    items: dict[str, None] = {}
    for row in rows:
        items.update(dict.fromkeys(row.grade.scores()))
    return [*LEADING, *items, *TRAILING]


def _identifier(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_roster(path: Path) -> dict[str, str]:
    """A roster CSV as ``{submission name: id}``: its header must have the columns
    ``submission`` (a file or folder name, with or without ``.py``/``.ipynb``) and ``id``;
    other columns are ignored. A missing column, an empty name or a name given twice is a
    ValueError naming the roster."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in ("submission", "id") if c not in header]
            if missing:
                raise ValueError(
                    f"roster {str(path)!r} has no {' or '.join(map(repr, missing))} column; "
                    f"its columns are {header or 'none'} (it needs 'submission' and 'id')"
                )
            out: dict[str, str] = {}
            for k, raw in enumerate(reader, start=2):
                row = {(key or "").strip(): (value or "").strip() for key, value in raw.items()}
                name = _identifier(row["submission"])
                if not name:
                    raise ValueError(f"roster {str(path)!r}, line {k}: the submission is empty")
                if name in out:
                    raise ValueError(
                        f"roster {str(path)!r}, line {k}: submission {name!r} is listed twice"
                    )
                out[name] = row["id"]
            return out
    except OSError as exc:
        raise ValueError(f"roster {str(path)!r}: cannot read it ({exc.strerror})") from None


def find_submissions(directory: Path) -> list[Path]:
    """The submissions in ``directory``, by name: each ``.py`` file, each ``.ipynb`` notebook
    and each directory (a package needs an ``__init__.py``; one without is listed, and its
    grade says so)."""
    if not directory.is_dir():
        raise ValueError(f"submissions: {str(directory)!r} is not a directory")
    found = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")):
            continue
        if (entry.is_file() and entry.suffix in SUFFIXES) or entry.is_dir():
            found.append(entry)
    return found


def _results_names(entries: list[Path]) -> list[str]:
    """A results file name per submission: its name without its suffix, unless another
    submission has the same stem (a package, a notebook and a file of one name)."""
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
    roster: Mapping[str, str] | None = None,
    limits: dict[str, int | None] | None = None,
    user: str | None = None,
) -> list[Row]:
    """Grade every submission in ``directory`` (:func:`find_submissions`) and write
    ``out/gradebook.csv`` and ``out/<name>.json``; returns the rows in name order.

    ``jobs``: submissions graded at once (None: the number of cores; above 1, each is judged
    in one of ``jobs`` spawned grading processes); each runs in its own worker process,
    with ``timeout`` seconds per call and ``wall_limit`` seconds for the whole submission.
    ``on_done`` is called with each row as it finishes. ``roster``: ``{submission name:
    id}`` (:func:`read_roster`); a submission it does not name keeps its own name as its
    identifier. Each worker runs in a temporary copy of its submission alone, under
    :meth:`~reference.boundary.policy.Policy.grading` (the rubric's forbidden modules; the
    class folder, ``out`` and the rubric unreadable; ``limits`` over the default resource
    limits), as ``user`` when given.
    """
    jobs = _checked_class_options(jobs, wall_limit, roster)
    entries = find_submissions(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = _results_names(entries)
    roster = {_identifier(k): v for k, v in (roster or {}).items()}
    policy = _class_policy(directory, out, rubric, limits)
    settings = {"rubric": rubric, "hidden_seed": hidden_seed, "timeout": timeout,
                "wall_limit": wall_limit, "policy": policy, "user": user}  # fmt: skip

    def finish(k: int, graded: Grade) -> Row:
        entry = entries[k]
        graded.roots = (*graded.roots, str(directory.resolve()))
        stem = _identifier(entry.name)
        row = Row(entry.name, graded, out / names[k], str(directory.resolve()),
                  roster.get(stem, stem))  # fmt: skip
        write_gradescope(graded, row.results)
        if on_done is not None:
            on_done(row)
        return row

    rows: list[Row | None] = [None] * len(entries)
    with (
        _shared_compilation_cache(),
        tempfile.TemporaryDirectory(prefix="backprop-notebooks-") as scratch,
    ):
        places = [Path(scratch) / str(k) for k in range(len(entries))]
        for k, graded in _graded_entries(entries, places, settings, jobs):
            rows[k] = finish(k, graded)
    done = [row for row in rows if row is not None]
    _write_gradebook(out / GRADEBOOK, done)
    return done


def _checked_class_options(
    jobs: int | None, wall_limit: float, roster: Mapping[str, str] | None
) -> int:
    """``jobs`` (None: the number of cores), once the options are checked."""
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if not wall_limit > 0:
        raise ValueError(f"wall_limit must be > 0 seconds, got {wall_limit!r}")
    if roster is not None and not isinstance(roster, Mapping):
        raise TypeError(f"roster must be a mapping of submission names to ids, got {roster!r}")
    return jobs


def _class_policy(
    directory: Path, out: Path, rubric: Rubric, limits: dict[str, int | None] | None
) -> Policy:
    """The grading policy: the class folder (every classmate's files), the results and the
    rubric unreadable."""
    unreadable = [directory.resolve(), out.resolve()]
    if Path(rubric.source).is_file():
        unreadable.append(Path(rubric.source).resolve())
    return Policy.grading(rubric.forbid, unreadable, limits)


def _graded_entries(
    entries: list[Path], places: list[Path], settings: dict, jobs: int
) -> Iterator[tuple[int, Grade]]:
    """``(k, grade)`` for each submission as it finishes: one after another in this process
    with one job (or one submission), else in a pool of ``jobs`` spawned processes."""
    if jobs == 1 or len(entries) < 2:
        for k, entry in enumerate(entries):
            yield k, _grade_entry(entry, places[k], settings)
        return
    # The judging is Python and NumPy in the grading process: a process each, not a
    # thread each, lets two submissions be judged at once (the GIL would not).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        started = {
            pool.submit(_grade_entry, entry, places[k], settings): k
            for k, entry in enumerate(entries)
        }
        for future in as_completed(started):
            k = started[future]
            try:
                graded = future.result()
            except Exception as exc:  # the pool itself failed (a process killed)
                graded = _grader_failed(entries[k], settings, exc)
            yield k, graded


def _write_gradebook(path: Path, rows: list[Row]) -> None:
    """The gradebook CSV: :func:`columns`, then a line per row."""
    header = columns(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        items = header[len(LEADING) : len(header) - len(TRAILING)]
        writer.writerows(row.cells(items) for row in rows)


def _grade_entry(entry: Path, scratch: Path, settings: dict) -> Grade:
    """One submission's grade (run in the grading process, or in one of the pool's): in a
    worker of its own, run in a copy of ``entry`` alone (a notebook: of the module its code
    cells are exported to, in ``scratch``)."""
    exported = None
    try:
        if entry.suffix == ".ipynb" and entry.is_file():
            exported = export_notebook(entry, scratch)
        target = exported.path if exported else entry
        graded = grade(str(target.resolve()), name=entry.name, copy=target, **settings)
        return _translated(graded, exported) if exported is not None else graded
    except ValueError as exc:  # a notebook that cannot be read: its own row says so
        hidden = settings["hidden_seed"] is not None
        return failed_grade(settings["rubric"], entry.name, str(exc), 0.0, hidden)
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


class _Terminated(KeyboardInterrupt):
    """SIGTERM arrived while grading (what a CI or Gradescope sends on a time-out): an
    interruption, as Ctrl-C is, which the boundary lets through rather than blaming it on the
    code under test."""


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
    from ..run.session import UsageError

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
    _check_grading_args(args)
    rubric, seed = _rubric_and_seed(args)
    if args.gradescope:
        return _grade_one(args, rubric, seed, out)
    return _grade_folder(args, rubric, seed, out)


def _check_grading_args(args: argparse.Namespace) -> None:
    """A usage error for options that do not go together, or a value out of range."""
    from ..run.session import UsageError

    if args.roster is not None and not args.submissions:
        raise UsageError("--roster goes with --submissions DIR")
    if not args.gradescope and not args.submissions:
        raise UsageError(
            "grading (and --rubric, --hidden-seed) go with --gradescope PATH or --submissions DIR:"
            " one implementation (--impl), or a folder of them"
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


def _rubric_and_seed(args: argparse.Namespace) -> tuple[Rubric, int | None]:
    """The rubric (``--hidden-visibility`` over its hidden groups') and the hidden seed; a
    rubric or seed that cannot be read is a usage error."""
    from ..run.session import UsageError
    from .grade import hidden_seed_from
    from .rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(args.rubric)
        seed = hidden_seed_from(args.hidden_seed)
    except (RubricError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.hidden_visibility:
        groups = tuple(replace(g, visibility=args.hidden_visibility) for g in rubric.hidden)
        rubric = replace(rubric, hidden=groups)
    return rubric, seed


def _wall_limit(args: argparse.Namespace) -> float:
    """``--submission-timeout``, or :data:`WALL_LIMIT`."""
    return args.submission_timeout if args.submission_timeout is not None else WALL_LIMIT


def _grade_one(args: argparse.Namespace, rubric: Rubric, seed: int | None, out: TextIO) -> int:
    """``--gradescope PATH``: grade ``--impl``, write its results file, say how it went."""
    from ..boundary.loading import load_impl
    from ..run.session import writable

    writable(args.gradescope, "--gradescope")
    impl = load_impl(args.impl) if args.in_process else args.impl
    with _terminated_as_error():
        try:
            graded = grade(
                impl,
                rubric=rubric,
                hidden_seed=seed,
                timeout=args.timeout,
                wall_limit=_wall_limit(args),
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


def _grade_folder(args: argparse.Namespace, rubric: Rubric, seed: int | None, out: TextIO) -> int:
    """``--submissions DIR``: grade the class into ``--grades``, a line per submission as it
    finishes (unless ``--quiet``), then the summary."""
    from ..run.session import UsageError, writable

    if args.in_process:
        raise UsageError("--submissions grades each submission in a worker; drop --in-process")
    if not args.submissions.is_dir():
        raise UsageError(f"--submissions {args.submissions}: not a directory")
    writable(args.grades, "--grades", directory=True)
    try:
        roster = read_roster(args.roster) if args.roster is not None else None
    except ValueError as exc:
        raise UsageError(f"--roster: {exc}") from None

    def done(row: Row) -> None:
        if not args.quiet:
            error = row.cells()[-1]
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
        wall_limit=_wall_limit(args),
        on_done=done,
        roster=roster,
        limits=_limits(args),
        user=args.user,
    )
    _write_class_summary(rows, args.grades, roster, out)
    return 0


def _write_class_summary(
    rows: list[Row], grades: Path, roster: dict[str, str] | None, out: TextIO
) -> None:
    """How many were graded and where they went, the integrity findings, and the roster's
    names with no submission and submissions with no name in it."""
    full = sum(r.grade.score >= r.grade.max_score for r in rows)
    out.write(
        f"graded {len(rows)} submissions ({full} with full points); wrote "
        f"{grades / GRADEBOOK} and {len(rows)} results files in {grades}\n"
    )
    flagged = [r for r in rows if r.grade.integrity]
    if flagged:
        out.write(f"integrity findings on {len(flagged)} submission(s):\n")
        for r in flagged:
            out.write(f"  {r.submission}: {'; '.join(r.grade.integrity)}\n")
    if roster is None:
        return
    graded = {_identifier(r.submission) for r in rows}
    unnamed = sorted(r.submission for r in rows if _identifier(r.submission) not in roster)
    absent = sorted(name for name in roster if name not in graded)
    if unnamed:
        out.write(f"not in the roster (their id is their name): {', '.join(unnamed)}\n")
    if absent:
        out.write(f"in the roster with no submission: {', '.join(absent)}\n")
