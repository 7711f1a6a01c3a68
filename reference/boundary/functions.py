"""The boundary for a single function of arrays: what :func:`reference.check_function` and
:func:`reference.check_vjp` call the user's ``f``, gradient and backward pass through.

The same door as :class:`~reference.boundary.guard.Guarded` (DESIGN.md, "Checking other
people's code"), for a function instead of the network protocol:

- every call gets fresh copies of the arrays: the caller's arrays are never changed, and an
  argument the function writes into is recorded (:attr:`GuardedFunction.impurities`), the
  upstream gradient a backward pass overwrites included;
- any exception becomes :class:`~reference.boundary.guard.ImplementationFailed`, whose
  :class:`~reference.boundary.guard.Finding` names the member ("f", "grad_f", "vjp_f") and
  the file and line in the user's code; ``os._exit`` is refused and NumPy's error state
  restored after every call;
- warnings the function emits (an overflow in ``exp`` at every perturbed point) are kept
  out of the terminal and counted, one line per distinct warning
  (:meth:`GuardedFunction.warning_lines`);
- results are converted and checked: a value becomes a float or a float64 array, gradients
  one float64 array per argument (a shape that differs is kept, for the report to name).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import guard as _guard
from .guard import Finding, ImplementationFailed, Impurity, user_frame


class GuardedFunction:
    """``fn`` behind the boundary, called as ``member`` in findings.

    ``names`` are the arguments' names, for the impurities' messages.
    """

    def __init__(self, fn: Callable[..., Any], member: str, names: Sequence[str]) -> None:
        if not callable(fn):
            raise TypeError(f"{member} must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.member = member
        self.names = list(names)
        self.calls = 0
        self.impurities: list[Impurity] = []
        self.warnings: dict[tuple[str, str, str, int], int] = {}
        """How many times each distinct warning was emitted: (category, message, file, line)."""

    def __call__(self, *args: Any, record: bool = False) -> Any:
        """``fn(*copies of args)``; with ``record``, arguments it changed in place are recorded."""
        given = copy.deepcopy(args)
        self.calls += 1
        np_state = np.geterr()
        os._exit = _guard._refuse_exit  # in this process, os._exit would end the check too
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                raw = self.fn(*given)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            kind = "exit" if isinstance(exc, SystemExit) else "raised"
            raise ImplementationFailed(
                Finding(
                    kind,
                    self.member,
                    _guard._describe_exception(exc),
                    exception=type(exc).__name__,
                    where=user_frame(exc.__traceback__),
                )
            ) from None
        finally:
            os._exit = _guard._os_exit
            np.seterr(**np_state)
            for w in caught:
                key = (w.category.__name__, str(w.message), w.filename, w.lineno)
                self.warnings[key] = self.warnings.get(key, 0) + 1
        if record:
            for name, before, after in zip(self.names, args, given):
                change = _changed(before, after)
                if change is not None:
                    self.impurities.append(Impurity(self.member, name, change))
        return raw

    def warning_lines(self) -> list[str]:
        """One line per distinct warning: the member, how often, the warning and where."""
        lines = []
        for (category, message, filename, lineno), count in self.warnings.items():
            times = "once" if count == 1 else f"{count} times"
            lines.append(
                f"{self.member} warned {times}: {category}: {message} (at {filename}:{lineno})"
            )
        return lines

    def fail(self, message: str) -> ImplementationFailed:
        """A "structure" failure of this member (what it returned is not what was asked)."""
        return ImplementationFailed(Finding("structure", self.member, message))

    def value(self, raw: Any, what: str) -> np.ndarray:
        """``raw`` as a float64 array (a copy), or a structure failure naming ``what``."""
        try:
            return _guard._real_array(raw, what)
        except _guard._Structure as exc:
            raise self.fail(str(exc)) from None

    def outputs(self, raw: Any, what: str) -> tuple[list[np.ndarray], bool]:
        """``raw`` as float64 arrays: a tuple (or list) of arrays, which may differ in shape,
        one per output; or a single array. Returns the arrays and whether ``raw`` was a
        tuple (so that the upstream gradient handed back has the same structure)."""
        if isinstance(raw, (tuple, list)) and raw and any(_is_array(o) for o in raw):
            return [self.value(o, f"{what} #{k}") for k, o in enumerate(raw)], True
        return [self.value(raw, what)], False

    def gradients(self, raw: Any, names: Sequence[str]) -> list[np.ndarray]:
        """One float64 array per argument named in ``names`` from ``raw``: a sequence of as
        many arrays, or a single array where there is one argument. Shapes are not checked
        here."""
        count = len(names)
        if count == 1 and not isinstance(raw, (list, tuple)):
            raw = [raw]
        if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
            raise self.fail(
                f"returned {type(raw).__name__}, not a tuple of {count} gradients "
                "(one per argument)"
            )
        if len(raw) != count:
            raise self.fail(f"returned {len(raw)} gradients, not {count} (one per argument)")
        return [self.value(g, f"the gradient of {name}") for g, name in zip(raw, names)]


def _is_array(value: Any) -> bool:
    """An ndarray or another library's array (JAX's): what makes a tuple a tuple of outputs
    rather than the rows of one array (a tuple of plain numbers)."""
    return isinstance(value, np.ndarray) or (
        hasattr(value, "__array__") and not isinstance(value, (np.generic, int, float))
    )


def _changed(before: Any, after: Any) -> float | None:
    """The largest change between two copies of an argument, or None when equal; a tuple
    (an upstream gradient per output, of different shapes) compared item by item."""
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        changes = [_changed(b, a) for b, a in zip(before, after)]
        found = [c for c in changes if c is not None]
        return max(found) if found else None
    return _guard._changed(before, after)
