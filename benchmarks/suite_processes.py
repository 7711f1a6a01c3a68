"""Where the test suite's CPU time goes, process by process: the suite's own pytest process,
the shipped suite's runs, the ``backprop-check`` runs and the other Python processes the
tests start.

    CI=true python -m benchmarks.suite_processes                       # the working tree
    CI=true python -m benchmarks.suite_processes --rev HEAD            # a revision, exported
    CI=true python -m benchmarks.suite_processes --top 20             # and the 20 costliest
    CI=true python -m benchmarks.suite_processes -- tests/test_cli.py  # pytest's arguments

The suite runs as ``benchmarks.suite_time`` runs it, with one more directory first on
``PYTHONPATH``: a ``sitecustomize`` module that every Python process started with that
``PYTHONPATH`` imports at start-up. At exit (``os._exit`` included) it appends one line to a
log: the process's arguments, its own CPU time (user + system), whether it imported JAX, and
the test that was running when it started (``PYTEST_CURRENT_TEST``; none for the commands
that ``tests/background.py`` starts when collection ends). Processes whose environment drops
``PYTHONPATH`` (the workers that run the code under test) and processes killed by a signal
are not logged: their CPU time is the difference between the run's total (every process it
waited for) and the logged sum, and is printed as such. This module shadows any other
``sitecustomize`` for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from .suite_time import ROOT, export, run_suite, split_args

_LOGGER = """\
import os

_log = os.environ.get("SUITE_PROCESS_LOG")
if _log:
    import atexit
    import json
    import resource
    import sys

    _test = os.environ.get("PYTEST_CURRENT_TEST", "")

    def _write():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        line = json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv,
                           "cpu": usage.ru_utime + usage.ru_stime,
                           "jax": "jax" in sys.modules, "test": _test})
        with open(_log, "a") as fh:
            fh.write(line + "\\n")

    atexit.register(_write)
    _exit = os._exit

    def _logged_exit(code, _exit=_exit):
        _write()
        _exit(code)

    os._exit = _logged_exit
"""


MAIN_PROCESS = "the suite's pytest process"


def kind(record: dict, runner_pid: int) -> str:
    """What a logged process was."""
    if record["ppid"] == runner_pid:
        return MAIN_PROCESS
    return child_kind(" ".join(record["argv"]))


def child_kind(argv: str) -> str:
    """What a process the suite started was, by its command line."""
    if "reference.boundary.server" in argv:
        return "workers (the code under test)"
    if "reference.suite" in argv:
        return "the shipped suite's runs"
    if "backprop-check" in argv or "reference.frontends" in argv or "reference/frontends" in argv:
        return "backprop-check runs"
    if "pytest" in argv or "exec(eval(sys.stdin.readline()))" in argv:  # and xdist's workers
        return "other pytest runs"
    return "other Python processes"


def summarize(records: list[dict], total_cpu: float, runner_pid: int) -> list[str]:
    """One line per kind of process, and what was not logged."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[kind(record, runner_pid)].append(record)
    logged = sum(r["cpu"] for r in records)
    lines = [f"CPU time of the run: {total_cpu:.1f} s, of which logged {logged:.1f} s:"]
    for name, group in sorted(groups.items(), key=lambda g: -sum(r["cpu"] for r in g[1])):
        cpu = sum(r["cpu"] for r in group)
        jax = sum(r["jax"] for r in group)
        started = sum(not r["test"] for r in group)
        where = "" if name == MAIN_PROCESS else f"; {started} of them background commands"
        lines.append(
            f"  {name:<28} {len(group):4d} {'process ' if len(group) == 1 else 'processes'} "
            f"{cpu:7.1f} s CPU ({jax} imported JAX{where})"
        )
    lines.append(
        f"  {'not logged':<28} {total_cpu - logged:7.1f} s CPU (workers, whose environment "
        "drops PYTHONPATH, and processes killed by a signal)"
    )
    by_test: dict[str, float] = defaultdict(float)
    for record in records:
        if record["ppid"] != runner_pid:
            by_test[record["test"].split("::")[0] or "(background commands)"] += record["cpu"]
    lines.append("child processes' CPU by test file (logged ones):")
    for name, cpu in sorted(by_test.items(), key=lambda t: -t[1])[:12]:
        lines.append(f"  {cpu:7.1f} s  {name}")
    return lines


def slowest(records: list[dict], runner_pid: int, n: int) -> list[str]:
    """The ``n`` child processes that took the most CPU time, with their arguments."""
    children = sorted((r for r in records if r["ppid"] != runner_pid), key=lambda r: -r["cpu"])
    lines = [f"the {min(n, len(children))} child processes that took the most CPU time:"]
    for record in children[:n]:
        argv = " ".join(Path(a).name if os.sep in a else a for a in record["argv"])
        test = record["test"].split(" ")[0] or "background"
        lines.append(f"  {record['cpu']:6.1f} s  {argv[:110]}  ({test})")
    return lines


def one_revision_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.<module>``, described by the first paragraph
    of ``doc``, with ``--rev``: one revision, or the working tree."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}", description=doc.split("\n\n")[0]
    )
    parser.add_argument("--rev", help="a git revision, exported (default: the working tree)")
    return parser


def main(argv: list[str] | None = None) -> int:
    ours, pytest_args = split_args(argv)
    parser = one_revision_parser("suite_processes", __doc__)
    parser.add_argument(
        "--top", type=int, default=0, metavar="N", help="also list the N costliest child processes"
    )
    args = parser.parse_args(ours)
    with tempfile.TemporaryDirectory(prefix="suite-processes-") as tmp:
        hook = Path(tmp, "hook")
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(_LOGGER)
        log = Path(tmp, "processes.jsonl")
        where = export(args.rev, Path(tmp)) if args.rev else ROOT
        paths = [str(hook), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = {"PYTHONPATH": os.pathsep.join(paths), "SUITE_PROCESS_LOG": str(log)}
        run = run_suite(where, args.rev or "worktree", pytest_args, env=env)
        lines = log.read_text().splitlines() if log.exists() else []
        records = [json.loads(line) for line in lines]
    print(f"{run.label}: {run.wall:.1f} s wall, exit {run.returncode}: {run.summary}")
    print("\n".join(summarize(records, run.cpu, os.getpid())))
    if args.top:
        print("\n".join(slowest(records, os.getpid(), args.top)))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
