"""Submissions made from ``tests/outside/student.py``: the correct file, or the file with one
marked line changed (``# MISTAKE: <name>: <new right-hand side>``), or without ``update``."""

import re
import types
from pathlib import Path

SOURCE = (Path(__file__).parent / "outside" / "student.py").read_text()
_MARK = re.compile(r"^(?P<code>.*?) = .*  # MISTAKE: (?P<name>[^:]+): (?P<new>.*)$")

MISTAKES = tuple(m["name"] for m in map(_MARK.match, SOURCE.splitlines()) if m)
"""The one-line mistakes the file marks, by name."""


def source(mistake: str | None = None, *, update: bool = True, extra: str = "") -> str:
    """The student's file, with ``mistake`` made (one of :data:`MISTAKES`), ``update`` left
    out when asked, and ``extra`` appended."""
    if mistake is not None and mistake not in MISTAKES:
        raise ValueError(f"mistake must be one of {MISTAKES}, got {mistake!r}")
    lines = []
    for line in SOURCE.splitlines():
        m = _MARK.match(line)
        if m and m["name"] == mistake:
            line = f"{m['code']} = {m['new']}"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    if not update:
        text = text.split("\ndef update")[0] + "\n"
    return text + extra


def module(mistake: str | None = None, *, update: bool = True, extra: str = ""):
    """:func:`source` as a module object (graded in this process)."""
    mod = types.ModuleType(f"student_{(mistake or 'correct').replace(' ', '_')}")
    mod.__file__ = f"<student {mistake or 'correct'}>"
    exec(compile(source(mistake, update=update, extra=extra), mod.__file__, "exec"), mod.__dict__)
    return mod
