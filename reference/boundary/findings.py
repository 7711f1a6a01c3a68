"""What the implementation under test did wrong, and where in its own code.

A :class:`Finding` names the member, the network, what happened and the file and line in
the user's code (:func:`user_frame`); :class:`ImplementationFailed` carries one out of the
guard (:mod:`.guard`), :class:`RemoteFailure` and :class:`WorkerLost` carry what a worker
process (:mod:`.isolation`) said or did.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
import traceback
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]

MEMBERS = ("loss", "gradients", "forward", "update")
"""The protocol's members, in the order reports list them."""

KINDS = {
    "unsupported": "raised NotImplementedError: the network is outside what it supports",
    "raised": "raised an exception",
    "exit": "tried to end the process",
    "structure": "returned the wrong structure",
    "timeout": "did not return within the time limit",
    "wall_limit": "ran past the wall-time limit for all its calls together",
    "crash": "ended the worker process",
}
"""What each :attr:`Finding.kind` means."""


@dataclass
class Finding:
    """Something the implementation under test did wrong at one call.

    ``where`` is ``{"file", "line", "code", "function"}`` for the innermost frame of the
    implementation's own code (not NumPy's, not the standard library's, not the
    harness's), when the failure has a traceback.
    """

    kind: str
    member: str
    message: str
    network: str = ""
    exception: str = ""
    where: dict[str, Any] | None = None

    def describe(self) -> str:
        """One line: the member, what happened, and where in the user's code."""
        starts = self.message.startswith(f"{self.member} ")
        text = self.message if starts else f"{self.member} {self.message}"
        if self.where:
            w = self.where
            if w.get("cell"):
                text += f" (in cell {w['file']}, line {w['line']}, in {w.get('function', '?')}"
            elif os.path.isfile(w["file"]):
                text += f" (at {w['file']}:{w['line']}"
            else:  # exec'd or typed-in code: a line number alone would not say where
                text += f" (at {w['file']}:{w['line']}, in {w.get('function', '?')}"
            if w.get("code"):
                text += f": {w['code']}"
            text += ")"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RemoteFailure(Exception):
    """A member run in a worker process (:mod:`.isolation`) failed there: the worker's
    description of it, which the guard turns into a :class:`Finding` as it would a local
    exception."""

    def __init__(
        self, kind: str, text: str, exception: str = "", where: dict[str, Any] | None = None
    ) -> None:
        super().__init__(text)
        self.kind, self.text, self.exception, self.where = kind, text, exception, where


class WorkerLost(BaseException):
    """The worker process running the implementation hung past its time limit or died in
    a call: not the call's failure but the job's (the worker is replaced for the next one).
    A ``BaseException``, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


class ImplementationFailed(Exception):
    """A call into the implementation under test failed; ``finding`` says how and where."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


class PartlyWrongShapes(ImplementationFailed):
    """``gradients`` returned the right structure with some arrays of the wrong shape: a
    structure failure like any other, which the checker may judge array by array
    (``partial``: the arrays that came right, NaN in place of the others; ``wrong``: a
    message for each wrong one by ``(layer, "W" or "b")``)."""

    def __init__(
        self, finding: Finding, partial: Params, wrong: dict[tuple[int, str], str]
    ) -> None:
        super().__init__(finding)
        self.partial, self.wrong = partial, wrong


# --- where in the user's code --------------------------------------------------------------

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # reference/
_LIBRARIES = tuple(
    os.path.normcase(os.path.abspath(p)) + os.sep
    for p in {
        os.path.dirname(np.__file__),
        sysconfig.get_paths()["stdlib"],
        _HERE,
    }
)


def _is_library(filename: str) -> bool:
    path = os.path.normcase(os.path.abspath(filename))
    return path.startswith(_LIBRARIES) or filename.startswith("<frozen")


def user_frame(tb: Any) -> dict[str, Any] | None:
    """The innermost frame of ``tb`` in the implementation's own code, as
    ``{"file", "line", "code", "function"}``; None when there is none."""
    # lines are read for the chosen frame alone: the harness's own files stay unopened
    summary = traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)
    frames = [f for f in summary if not _is_library(f.filename)]
    if not frames:
        return None
    f = frames[-1]
    code = linecache.getline(f.filename, f.lineno or 0).strip()
    where = {"file": f.filename, "line": f.lineno, "code": code, "function": f.name}
    cell = _notebook_cell(f.filename)
    if cell is not None:  # a notebook cell's code has no file: name the cell as IPython does
        where["file"], where["cell"] = cell, True
    return where


def _notebook_cell(filename: str) -> str | None:
    """``"In[3]"`` for code compiled from an IPython or Jupyter cell (whose file name is
    IPython's own, such as ``<ipython-input-3-...>`` or ``/tmp/ipykernel_.../....py``);
    None outside IPython or for code from a real file."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    name = getattr(getattr(shell, "compile", None), "format_code_name", None)
    try:
        found = name(filename) if name is not None else None
    except Exception:  # a shell of another make: its names stay as they are
        return None
    return found[1] if isinstance(found, tuple) and len(found) == 2 else None
