"""Notebooks as submissions: a Jupyter notebook's code cells exported to a module
(:func:`export_notebook`) that is graded like any other, and the grade's messages given in
the notebook's cells and lines, not the exported file's (:meth:`Exported.translate`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import Grade

_MAGIC = re.compile(r"^\s*[%!]")
"""A line of IPython's own syntax (a magic, a shell escape): not Python, left out."""


@dataclass
class Exported:
    """A notebook's code cells written as a module: its ``path``, and for each of its lines
    (1-based) the notebook cell and line it came from (``(0, 0)`` for lines the exporter
    wrote)."""

    path: Path
    notebook: str
    lines: list[tuple[int, int]]

    def where(self, line: int) -> str:
        """Where the module's ``line`` came from: "cell 4, line 2" (or "line N of its
        exported code" for a line the exporter wrote)."""
        if 1 <= line <= len(self.lines) and self.lines[line - 1][0]:
            cell, at = self.lines[line - 1]
            return f"cell {cell}, line {at}"
        return f"line {line} of its exported code"

    def translate(self, text: str) -> str:
        """``text`` with every place in the exported module (``path:N``, ``"path", line N``)
        written as the notebook's cell and line."""
        name = re.escape(str(self.path))
        short = re.escape(self.path.name)
        pattern = re.compile(rf"(?:{name}|(?<![\w/.]){short})(?::(\d+)|\"?,\s*line\s+(\d+))")
        return pattern.sub(
            lambda m: f"{self.notebook}, {self.where(int(m.group(1) or m.group(2)))}", text
        )


def _cells(path: Path) -> list[dict[str, Any]]:
    """The notebook's cells (nbformat reads and checks it where installed; else its JSON)."""
    try:
        import nbformat
    except ImportError:
        nbformat = None
    try:
        if nbformat is not None:
            return list(nbformat.read(str(path), as_version=4).cells)
        data = json.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:  # any unreadable notebook is the student's own error
        raise ValueError(f"notebook {path.name}: not a readable notebook ({exc})") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise ValueError(f"notebook {path.name}: no list of cells in it")
    return cells


def export_notebook(path: Path, into: Path) -> Exported:
    """Write the code cells of the notebook at ``path`` into ``into/<stem>.py``, in order,
    each after a ``# cell N`` line (N counts every cell from 1, as the notebook shows them
    top to bottom); IPython's magics and shell escapes are commented out. A notebook that
    cannot be read is a ValueError naming it."""
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    for number, cell in enumerate(_cells(path), start=1):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines.append(f"# cell {number}")
        where.append((0, 0))
        for k, line in enumerate(text.splitlines(), start=1):
            lines.append(f"# {line}  (IPython syntax, left out)" if _MAGIC.match(line) else line)
            where.append((number, k))
        lines.append("")
        where.append((0, 0))
    into.mkdir(parents=True, exist_ok=True)
    module = into / f"{path.stem}.py"
    module.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Exported(module, path.name, where)


def _translated(graded: Grade, exported: Exported) -> Grade:
    """``graded`` with the exported module's places given as the notebook's cells."""
    for item in graded.items:
        item.output = exported.translate(item.output)
    graded.output = exported.translate(graded.output)
    graded.notes = [exported.translate(n) for n in graded.notes]
    if graded.error:
        graded.error = exported.translate(graded.error)
    return graded
