"""Where a result came from: the JSON's schema version, the harness version, the command.

``backprop-check --json`` starts its file with :func:`provenance`'s fields, so that a file
read months later says what wrote it and how to get it again.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
"""The version of the ``--json`` file's layout. It grows by one whenever a field is removed,
renamed or changes its meaning, so that a reader can refuse a file it does not understand;
new fields do not change it (readers ignore keys they do not know)."""

PACKAGE = "backprop-harness"

OUTPUT_ONLY = frozenset(
    {"json", "junit_xml", "plot", "quiet", "verbose", "format", "in_process", "help",
     "explain", "bugs", "layer_view"}
)  # fmt: skip
"""The ``backprop-check`` options that change what is written or shown, not the verdict:
the reproducing command leaves them out (every other option given is kept)."""

ALWAYS = ("impl", "seed", "networks")
"""The options the reproducing command always states, even at their defaults."""


def harness_version() -> str:
    """The installed ``backprop-harness`` version from the package metadata, or ``"unknown"``
    when the package is imported without being installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _spelled(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def reproduce_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The shell command (``backprop-check [against UPSTREAM | golden MODE PATH] ...``,
    quoted with :func:`shlex.join`) that runs the check ``args`` (parsed by ``parser``, or
    given every option of it by :func:`reference.frontends.options.parse`) describes: the
    implementation, the seed, the number of random networks (golden files have fixed ones),
    and every other option that was given and can change the verdict (scope, ``--strict``,
    ``--relu-at-zero``, ``--timeout``, ...); what only changes the output
    (:data:`OUTPUT_ONLY`) is left out. Run it from the same directory: a module
    and a ``pyproject.toml`` there are found the same way."""
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"args must be an argparse.Namespace, got {type(args).__name__}")
    words = ["backprop-check"]
    for action in parser._actions:  # argparse keeps no public list of its options
        dest, flags = action.dest, [f for f in action.option_strings if f.startswith("--")]
        if not flags or dest in OUTPUT_ONLY or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if value is None or (value == action.default and dest not in ALWAYS):
            continue
        if isinstance(action, argparse._StoreTrueAction):
            if value:
                words.append(flags[0])
            continue
        if dest in ("seed", "networks") and getattr(args, "golden", None):
            continue  # the golden networks are fixed: golden takes neither option
        if dest == "shard":  # parsed into (K, N); written as it is typed
            words += [flags[0], f"{value[0]}/{value[1]}"]
        elif action.nargs not in (None, "?"):  # several words (--golden save PATH)
            words += [flags[0], *map(str, value)]
        else:
            words += [flags[0], _spelled(value)]
    for flag, width in (("--golden", 2), ("--against", 1)):  # a mode: its subcommand's words
        if flag in words:
            at = words.index(flag)
            mode = [flag[2:], *words[at + 1 : at + 1 + width]]
            words = [words[0], *mode, *words[1:at], *words[at + 1 + width :]]
    return shlex.join(words)


def provenance(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The fields the ``--json`` file starts with: ``schema_version``
    (:data:`SCHEMA_VERSION`), ``harness`` (name and version), ``seed`` and ``command``
    (:func:`reproduce_command`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "harness": {"name": PACKAGE, "version": harness_version()},
        "seed": args.seed,
        "command": reproduce_command(args, parser),
    }


# --- where each member is defined ----------------------------------------------------------


def member_locations(impl: Any) -> dict[str, dict[str, Any]]:
    """A job (:mod:`reference.run.jobs`): where each protocol member of the guarded
    implementation is defined, ``{member: {"file": absolute path, "line": the def line}}``
    (:func:`~reference.boundary.loading.definitions`, read in the process that loaded the
    code: a worker sends them when it starts). Code written in another layout is looked up
    behind its adapter.

    An implementation that keeps the tables ``backprop`` keeps also gets ``"activation
    NAME"`` and ``"cost NAME"``, the ``def`` line of each entry's derivative, and here
    ``"registered"``: whether the name was registered rather than shipped (for an
    annotation on the derivative a report blames)."""
    from ..boundary.isolation import RemoteImpl
    from ..boundary.layouts import Adapter
    from ..boundary.loading import definitions
    from ..registry import registered_names

    target = impl.impl
    if isinstance(target, Adapter):
        target = target.user
    found = dict(target.locations) if isinstance(target, RemoteImpl) else definitions(target)
    out: dict[str, dict[str, Any]] = {}
    for key, where in found.items():
        kind, _, name = key.partition(" ")
        if name and kind in ("activation", "cost"):
            where = {**where, "registered": name in registered_names(kind)}
        out[key] = where
    return out


def relative_to(path: str, workspace: str | Path) -> str | None:
    """``path`` relative to ``workspace`` with ``/`` separators (as GitHub names a file in a
    repository), or None when it lies outside it."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(workspace))
    except ValueError:
        return None
    return rel.as_posix()
