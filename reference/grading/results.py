"""Gradescope's results format: a grade's items as the autograder's ``results.json``
(https://gradescope-autograders.readthedocs.io/en/latest/specs/).

:meth:`Grade.to_gradescope` gives the file: plain text throughout (``output_format``
"text", so nothing the code printed or raised renders as HTML), no absolute path of the
grading machine (:func:`safe_text`), and a top-level ``output`` that speaks of the items a
student sees before the due date only. :func:`write_gradescope` writes it whole or not at
all. These are records only: what scores them is :mod:`.scoring`, what runs the code
:mod:`.grade`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT = "text"
"""The ``output_format`` of every text in the results file: Gradescope shows it as it is,
rendering no HTML, Markdown or ANSI (its specification, "Output String Formatting"; the
top-level ``output`` would otherwise be ``simple_format``, which renders HTML)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters (terminal escapes among them), newline and tab aside."""

_ABSOLUTE = re.compile(
    r"(?<![\w.)\]/~-])/(?:[^\s/:'\"(),;<>]+/)+([^\s/:'\"(),;<>]+)"
    r"|\b[A-Za-z]:\\(?:[^\s\\:'\"(),;<>]+\\)+([^\s\\:'\"(),;<>]+)"
)
"""An absolute path (POSIX, or Windows' drive-letter form) of two parts or more; its last
part is group 1 or 2. Not a ratio such as dJ/dA or (A - Y)/m: those follow a word or a
bracket."""


def safe_text(text: str, roots: tuple[str, ...] = ()) -> str:
    """``text`` as a student may see it: each of ``roots`` (folders, such as the submission's
    own) taken off the paths under it, any other absolute path cut to its last part (no
    path of the grading machine is shown), and control characters dropped."""
    for root in sorted((r.rstrip("/\\") for r in roots if r), key=len, reverse=True):
        text = text.replace(root + os.sep, "").replace(root + "/", "")
    text = _ABSOLUTE.sub(lambda m: m.group(1) or m.group(2), text)
    return _CONTROL.sub("", text)


@dataclass
class Item:
    """One rubric item's result: ``score`` of ``max_score`` points, and why."""

    name: str
    score: float
    max_score: float
    output: str
    visibility: str = "visible"

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score

    def to_gradescope(self, roots: tuple[str, ...] = ()) -> dict[str, Any]:
        """One entry of results.json's ``tests``, its text made safe (:func:`safe_text`)."""
        return {
            "name": safe_text(self.name),
            "name_format": TEXT,
            "score": self.score,
            "max_score": self.max_score,
            "status": "passed" if self.passed else "failed",
            "output": safe_text(self.output, roots),
            "output_format": TEXT,
            "visibility": self.visibility,
        }


@dataclass
class Grade:
    """An implementation's grade: one :class:`Item` per rubric item."""

    impl: str
    items: list[Item]
    execution_time: float
    output: str
    """The whole grade in a few lines, for the teacher: every item, hidden ones too."""
    error: str | None = None
    """Why nothing could be graded (the code could not be imported), or None."""
    printed: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    """Integrity findings, one line each: forbidden imports in the source, and what the
    worker's policy refused (:mod:`reference.boundary.policy`); the gradebook's ``integrity``
    column and the teacher's summary; empty for honest code."""
    roots: tuple[str, ...] = ()
    """Folders taken off the paths in what a student sees (the submission's own)."""
    notes: list[str] = field(default_factory=list)
    """Lines about the grading itself for the student too (the wall-time limit fired, the
    code printed or warned), shown after the score."""

    @property
    def score(self) -> float:
        return round(sum(i.score for i in self.items), 2)

    @property
    def max_score(self) -> float:
        return round(sum(i.max_score for i in self.items), 2)

    def scores(self) -> dict[str, float]:
        """Each item's score by name."""
        return {i.name: i.score for i in self.items}

    def first_error(self) -> str:
        """The load failure, or the first item short of its points and its first line;
        empty when every item has all its points."""
        if self.error:
            return self.error
        for item in self.items:
            if not item.passed:
                return f"{item.name}: {item.output.splitlines()[0] if item.output else ''}"
        return ""

    def student_output(self) -> str:
        """The top-level text a student sees at once: the score of the items visible before
        the due date only (no hidden item, its score, or a total that counts it), which of
        them fall short, and the notes; made safe (:func:`safe_text`)."""
        shown = [i for i in self.items if i.visibility == "visible"]
        score = round(sum(i.score for i in shown), 2)
        top = round(sum(i.max_score for i in shown), 2)
        lines = [f"{self.impl}: {score:.4g} of {top:g} points on the items shown now"]
        if len(shown) < len(self.items):
            lines[0] += " (the items shown later are not counted here)"
        short = [i.name for i in shown if not i.passed]
        if short:
            lines.append(f"short of full points: {', '.join(short)}")
        if self.error:
            lines.append(f"the code could not be graded: {self.error}")
        lines += self.notes
        return safe_text("\n".join(lines), self.roots)

    def to_gradescope(self) -> dict[str, Any]:
        """The Gradescope autograder's results.json as a dict: ``score``, ``execution_time``
        (whole seconds), the student's top-level ``output`` (:meth:`student_output`), plain
        text formats, the grader's own stdout kept from students, one test per item, and the
        integrity findings, when there are any, in ``extra_data`` (stored, not shown)."""
        extra = {"extra_data": {"integrity": list(self.integrity)}} if self.integrity else {}
        return {
            **extra,
            "score": self.score,
            "execution_time": round(self.execution_time),
            "output": self.student_output(),
            "output_format": TEXT,
            "test_output_format": TEXT,
            "test_name_format": TEXT,
            "stdout_visibility": "hidden",
            "tests": [i.to_gradescope(self.roots) for i in self.items],
        }


def write_gradescope(grade_: Grade, path: Path) -> None:
    """Write ``grade_`` as Gradescope's results.json to ``path``: to a temporary file beside
    it, renamed over it, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(grade_.to_gradescope(), indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)
