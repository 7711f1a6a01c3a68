"""What the worker that runs a submission may do: resource limits and an import policy.

A :class:`Policy` travels to the worker (:mod:`.server`) as plain data. There, before the
submission is imported, :meth:`Policy.enter` sets the resource limits
(:func:`resource.setrlimit`: address space, CPU seconds, processes, file size) and installs
an audit hook (:pep:`578`), which no Python code can remove. The hook refuses, with an
``ImportError`` or a ``PermissionError`` the submission sees as any other, and records:

- importing a forbidden module (:data:`FORBIDDEN`: the built-in implementation, the harness,
  the autodiff libraries);
- opening or listing files under a forbidden path (the forbidden modules' own files, the
  class folder with every other submission, the rubric, the results folder, and ``/proc`` but the
  process's own status files, where the grader's command line and environment could be
  read);
- starting or signalling processes, and making links (which would reach those paths by
  another name).

In the harness, :func:`scan` reads the submission's source for the same imports, so that
code which hides its imports from the hook's record (or tampers with the worker's replies)
is still named. Together they make an integrity finding (``Grade.integrity``).

This is a policy for honest mistakes and ordinary cheating, not a sandbox: ``ctypes``, a
file descriptor opened relative to another, or a path through a link that existed before
can get past it. Run the grader as a less privileged user (``--user``) for that.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORBIDDEN = ("backprop", "reference", "jax", "jaxlib", "torch", "tensorflow", "autograd", "sklearn")
"""Modules a graded submission may not import by default: the built-in implementation, the
harness (its oracles compute the very gradients asked for), and the autodiff libraries."""

LIMITS = {"memory_mb": 4096, "cpu_seconds": 600, "processes": 512, "file_mb": 64}
"""The grading worker's default resource limits: address space (MiB), CPU seconds over the
worker's life, processes of its user (ignored for root), and the size of any file it writes
(MiB). Generous for a NumPy backprop on the rubric's small networks; each has a flag."""

_RLIMITS = {
    "memory_mb": ("RLIMIT_AS", 1 << 20),
    "cpu_seconds": ("RLIMIT_CPU", 1),
    "processes": ("RLIMIT_NPROC", 1),
    "file_mb": ("RLIMIT_FSIZE", 1 << 20),
}

_PROCESS_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.kill",
        "os.killpg",
        "subprocess.Popen",
        "pty.spawn",
    }
)
_LINK_EVENTS = frozenset({"os.symlink", "os.link"})
_PATH_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})
_OWN = frozenset({"status", "stat", "statm", "environ", "cmdline", "limits", "cgroup"})
"""Files of ``/proc/self`` a library may read of its own process (not ``root``, ``cwd`` or
``fd``, which lead anywhere, nor another process's)."""


@dataclass
class Policy:
    """What the worker may do. The default is the one for checking your own code: no
    limits, nothing forbidden. :meth:`grading` gives the one for graded submissions."""

    limits: dict[str, int] = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    """Forbidden modules (a name forbids its submodules too)."""
    paths: tuple[str, ...] = ()
    """Forbidden files and folders (absolute)."""
    processes: bool = True
    """Whether the code may start or signal processes and make links."""
    violations: list[str] = field(default_factory=list)
    """What the hook refused so far (in the worker)."""

    @classmethod
    def grading(
        cls,
        modules: Iterable[str] = FORBIDDEN,
        paths: Iterable[str | Path] = (),
        limits: dict[str, int | None] | None = None,
    ) -> Policy:
        """The policy for a graded submission: ``modules`` forbidden, and their files
        unreadable (:func:`module_paths`: what ``import`` refuses cannot be read by path
        either); ``paths`` and ``/proc`` unreadable; no processes; and :data:`LIMITS`
        overridden by ``limits`` (a value of None or 0 lifts that limit)."""
        chosen = dict(LIMITS)
        for name, value in (limits or {}).items():
            if name not in LIMITS:
                raise ValueError(f"limits: unknown limit {name!r} (known: {', '.join(LIMITS)})")
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"limits: {name} must be a whole number >= 0, got {value!r}")
            chosen[name] = value or 0
        modules = tuple(modules)
        forbidden = (*(str(Path(p).resolve()) for p in paths), "/proc", *module_paths(modules))
        return cls(
            limits={k: v for k, v in chosen.items() if v},
            modules=tuple(modules),
            paths=forbidden,
            processes=False,
        )

    @property
    def strict(self) -> bool:
        return bool(self.modules or self.paths or not self.processes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        return cls(
            limits=dict(data.get("limits", {})),
            modules=tuple(data.get("modules", ())),
            paths=tuple(data.get("paths", ())),
            processes=bool(data.get("processes", True)),
        )

    # -- in the worker ------------------------------------------------------------------------

    def enter(self) -> None:
        """Set the limits and install the hook (in the worker, before the submission loads)."""
        import resource
        import signal

        for name, value in self.limits.items():
            which, unit = _RLIMITS[name]
            limit = value * unit
            try:
                resource.setrlimit(getattr(resource, which), (limit, limit))
            except (ValueError, OSError):
                pass  # above the hard limit already set: that one stands
        if "file_mb" in self.limits:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails, not the process
        if self.strict:
            sys.addaudithook(_hook(self))


def _normal(path: str, cwd: str) -> str:
    """``path`` made absolute and normalised by text alone (no file-system call the code under
    test could have replaced)."""
    if not path.startswith("/"):
        path = cwd + "/" + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def _hook(policy: Policy) -> Any:
    """The audit hook for ``policy``. It keeps its own references to what it calls, so that
    replacing ``os.getcwd`` or ``os.fspath`` afterwards changes nothing it does."""
    modules = frozenset(policy.modules)
    prefixes = tuple(m + "." for m in policy.modules)
    paths = tuple(policy.paths)
    folders = tuple(p.rstrip("/") + "/" for p in paths)
    no_processes = not policy.processes
    record = policy.violations.append
    getcwd, fspath, normal = os.getcwd, os.fspath, _normal
    own = ("/proc/self/", f"/proc/{os.getpid()}/")
    refused: set[str] = set()

    def note(text: str) -> None:
        if text not in refused:
            refused.add(text)
            record(text)

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            name = args[0]
            if type(name) is str and (name in modules or name.startswith(prefixes)):
                note(f"imported {name}")
                raise ImportError(f"import of {name!r} is not allowed here (grading policy)")
        elif event in _PATH_EVENTS:
            target = args[0] if args else None
            if isinstance(target, int) or target is None:
                return
            try:
                text = fspath(target)
            except TypeError:
                return
            if isinstance(text, bytes):
                text = text.decode("utf-8", "surrogateescape")
            full = normal(text, getcwd())
            if full.startswith(own) and full.count("/") == 3 and full.rsplit("/", 1)[1] in _OWN:
                return  # the process's own status, as libraries read it
            if full in paths or full.startswith(folders):
                note(f"read {full}")
                raise PermissionError(f"{text!r} is not readable here (grading policy)")
        elif no_processes and (event in _PROCESS_EVENTS or event in _LINK_EVENTS):
            note(f"tried {event}")
            raise PermissionError(f"{event} is not allowed here (grading policy)")
        elif event in ("gc.get_objects", "gc.get_referrers", "gc.get_referents"):
            # the way to reach this hook's own data from Python
            note(f"tried {event}")
            raise PermissionError(f"{event} is not allowed here (grading policy)")

    return hook


def module_paths(modules: Iterable[str]) -> tuple[str, ...]:
    """The folders (or files) the top-level ``modules`` are imported from here, those that
    are installed."""
    import importlib.util

    out = []
    for name in modules:
        try:
            spec = importlib.util.find_spec(name.partition(".")[0])
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            out.extend(str(Path(p).resolve()) for p in spec.submodule_search_locations)
        elif spec.origin and spec.origin not in ("built-in", "frozen"):
            out.append(str(Path(spec.origin).resolve()))
    return tuple(dict.fromkeys(out))


# --- in the harness: reading the source -------------------------------------------------------


def scan(path: str | Path, modules: Iterable[str] = FORBIDDEN) -> list[str]:
    """The forbidden imports written in the submission at ``path`` (a ``.py`` file or a
    folder of them), as ``"file:line imports name"``: ``import``, ``from ... import``, and
    ``__import__``/``importlib.import_module`` of a string constant. Code that builds the
    name at run time is left to the worker's hook."""
    modules = tuple(modules)
    root = Path(path)
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    found = []
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError, OSError, SystemError, RecursionError):
            continue  # the worker's import says what is wrong with it
        label = file.relative_to(root).as_posix() if root.is_dir() else file.name
        for node in ast.walk(tree):
            for name in _imported(node):
                if any(name == m or name.startswith(m + ".") for m in modules):
                    found.append(f"{label}:{node.lineno} imports {name}")
    return found


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        fn = node.func
        called = (
            fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
        )
        if called in ("__import__", "import_module") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []
