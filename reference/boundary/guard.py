"""The one door into the code under test (DESIGN.md, "Checking other people's code").

:class:`Guarded` wraps an implementation and offers the protocol's members with
the same signatures, so every oracle and check can call it as they would the
implementation itself, but

- every argument is a fresh copy: nothing the implementation does to its
  arguments reaches the caller, the references or the next call;
- every result is converted and validated: a loss becomes a float (a Python or
  NumPy scalar, or any single-element array such as the textbook's 1x1), the
  gradients a list of float64 ``(dW, db)`` pairs of the parameters' shapes;
- every failure becomes one exception, :class:`ImplementationFailed`, carrying a
  :class:`Finding` that names the member, the network, what happened, and the
  file and line in the implementation's own code;
- what it notices on the way is recorded on the guard: arguments changed in
  place (:attr:`Guarded.impurities`) and different results for the same inputs
  at any two calls of the run (:attr:`Guarded.inconsistencies`);
- the process state an implementation may change (NumPy's error handling, the
  warning filters) is restored after every call, so that the harness's own
  arithmetic is not affected.

Nothing else in ``reference/`` calls an implementation: the oracles and checks
take a :class:`Guarded` (or wrap what they are given with :func:`guard`).
"""

from __future__ import annotations

import copy
import hashlib
import linecache
import os
import signal
import sys
import sysconfig
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..tolerances import REPEAT_RTOL as _REPEAT_RTOL
from .layouts import StructureError, adapt, layout_of
from .loading import check_protocol, impl_name
from .wire import type_name

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

_MEMO_SIZE = 256
"""How many distinct inputs per member the guard remembers results for."""


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


@dataclass
class Impurity:
    """An argument a member changed in place."""

    member: str
    argument: str
    change: float
    detail: str = ""
    """What changed, where it is not a number: a list grown or shrunk, an entry replaced."""

    def describe(self) -> str:
        if self.detail:
            return f"{self.member} changed {self.argument} in place ({self.detail})"
        return f"{self.member} changed {self.argument} in place (by up to {self.change:.3g})"


@dataclass
class Inconsistency:
    """Two calls with the same inputs that returned different results."""

    member: str
    first_call: int
    call: int
    error: float

    def describe(self) -> str:
        return (
            f"{self.member} returned a different result at call {self.call} than at call "
            f"{self.first_call} for the same inputs (relative difference {self.error:.3g}): "
            "state carried across calls"
        )


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


_os_exit = os._exit


class _TimeLimit(BaseException):
    """The guarded call ran past :attr:`Guarded.time_limit` (raised by a SIGALRM handler)."""


def _alarm(signum: int, frame: Any) -> None:
    raise _TimeLimit()


class _ProcessExit(SystemExit):
    """``os._exit`` called by the implementation inside a guarded call."""


def _refuse_exit(status: int) -> None:
    raise _ProcessExit(status)


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, _ProcessExit):
        return f"called os._exit({exc.code!r})"
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc)
    return f"raised {type(exc).__name__}" + (f": {text}" if text else "")


# --- converting results ----------------------------------------------------------------------


class _Structure(Exception):
    """A result of the wrong structure (turned into a "structure" finding)."""


class _WrongShapes(_Structure):
    """Gradients in the right structure with some arrays of the wrong shape (or not
    numeric): ``partial`` has the right ones, and NaN where each wrong one was."""

    def __init__(self, message: str, partial: Params, wrong: dict[tuple[int, str], str]) -> None:
        super().__init__(message)
        self.partial, self.wrong = partial, wrong


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


def _real_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 array, refusing what cannot be one without losing something."""
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise _Structure(f"{what} is not an array ({type(exc).__name__}: {exc})") from None
    if np.iscomplexobj(a):
        raise _Structure(f"{what} is complex ({a.dtype}); gradients of a real loss are real")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise _Structure(f"{what} is not numeric (dtype {a.dtype}, from {type_name(value)})")
    if a.dtype == np.bool_:
        raise _Structure(f"{what} is boolean, not numeric")
    return np.array(a, dtype=np.float64)  # a copy: the implementation keeps no alias to it


def as_loss(value: Any) -> float:
    """A loss as a float: a scalar, or an array with exactly one element (such as 1x1)."""
    if isinstance(value, (bool, np.bool_)):
        raise _Structure(f"loss returned a boolean ({value!r}), not a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    a = _real_array(value, "the loss")
    if a.size != 1:
        raise _Structure(
            f"loss returned an array of shape {a.shape}, not a single number "
            "(sum the cost over the batch: J is one number)"
        )
    return float(a.reshape(()))


def as_gradients(value: Any, params: Params) -> Params:
    """``[(dW^1, db^1), ...]`` as float64 arrays of the parameters' shapes."""
    if isinstance(value, (str, bytes, np.ndarray)) or not isinstance(value, (Sequence,)):
        raise _Structure(f"gradients returned {type_name(value)}, not a list of (dW, db) pairs")
    if len(value) != len(params):
        raise _Structure(
            f"gradients returned {len(value)} entries for a network of {len(params)} layers"
        )
    out = []
    wrong: dict[tuple[int, str], str] = {}
    for l, (pair, (W, b)) in enumerate(zip(value, params), start=1):
        if (
            isinstance(pair, (str, bytes))
            or not isinstance(pair, (Sequence, np.ndarray))
            or (len(pair) != 2)
        ):
            raise _Structure(f"layer {l}: expected a (dW, db) pair, got {type_name(pair)}")
        arrays = []
        for pname, theta, g in (("W", W, pair[0]), ("b", b, pair[1])):
            try:
                g = _real_array(g, f"layer {l}'s d{pname}")
            except _Structure as exc:
                wrong[(l, pname)] = str(exc)
                g = None
            if g is not None and g.shape != theta.shape:
                msg = f"layer {l}: d{pname} has shape {g.shape} but {pname} has shape {theta.shape}"
                if g.shape == theta.shape[::-1] and g.shape != theta.shape:
                    msg += " (the transpose's shape)"
                wrong[(l, pname)] = msg
            arrays.append(np.full(np.shape(theta), np.nan) if (l, pname) in wrong else g)
        out.append((arrays[0], arrays[1]))
    if wrong:  # judged array by array where the checker can: the others may be right
        raise _WrongShapes("; ".join(wrong.values()), out, wrong)
    return out


def _as_forward(value: Any, params: Params, m: int) -> np.ndarray:
    a = _real_array(value, "forward's result")
    want = (params[-1][0].shape[0], m)
    if a.shape != want:
        raise _Structure(f"forward returned shape {a.shape}, expected A^L of shape {want}")
    return a


# --- the guard -------------------------------------------------------------------------------


def _digest(*parts: Any) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    stack = list(parts)
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            h.update(str((item.shape, item.dtype.str)).encode())
            h.update(np.ascontiguousarray(item).tobytes())
        elif isinstance(item, (list, tuple)):
            h.update(b"(%d" % len(item))
            stack.extend(item)
        else:
            h.update(repr(item).encode())
    return h.digest()


def _changed(before: Any, after: Any) -> float | None:
    """The largest change between two copies of an argument, or None when equal."""
    try:
        b, a = np.asarray(before), np.asarray(after)
        if a.shape != b.shape or a.dtype != b.dtype:
            return float("inf")
        if np.array_equal(a, b, equal_nan=True):
            return None
        with np.errstate(all="ignore"):
            return float(np.max(np.abs(a - b)))
    except Exception:  # an argument replaced by something that is not an array
        return float("inf")


_MISSING = object()
"""A keyword the member removed from its own copy of the keywords."""


def _size(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _describe(value: Any) -> str:
    """A short description of a value that replaced an argument or an entry of one."""
    if value is _MISSING:
        return "nothing (removed)"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (list, tuple)) and not all(isinstance(v, str) for v in value):
        return f"a {type(value).__name__} of {len(value)}"
    try:
        text = repr(value)
    except Exception:
        text = type(value).__name__
    return text if len(text) <= 80 else f"a {type(value).__name__} ({text[:60]}...)"


class Guarded:
    """The implementation under test behind the boundary (see the module docstring).

    ``loss``, ``gradients``, ``forward`` and ``update`` take the protocol's
    arguments; each raises :class:`ImplementationFailed` on any failure.
    ``calls`` counts the calls made; ``on_call`` (when set) is called with the
    member's name before and ``None`` after each call (the isolated worker uses
    it for its time limit). ``time_limit`` (seconds, in-process, main thread,
    POSIX) interrupts a call that runs longer with a ``timeout`` finding: an
    endless Python loop in the implementation ends there, not the whole run.
    """

    time_limit: float | None = None
    update_in_place: bool = False
    """Whether the last ``update`` wrote into the params it was given, returning None or the
    values it wrote (the in-place convention)."""
    update_returned: bool = True
    """Whether the last ``update`` returned something (not None)."""
    hung: Finding | None = None
    """The first time-out; while it is set every further call fails at once with it (a hang
    repeats, and a property test's shrinking would otherwise wait out the limit each time).
    Clear it to give the implementation another chance (the pytest plugin does, per test)."""
    dtype: str | None = None
    """A precision the implementation asked for ("float32", "float16"): the floating arrays
    of the guard's copies are cast to it. None hands them over as float64."""
    precision: str = "float64"
    """The lowest floating precision of any result so far (an integer or float64 result is
    float64): what the implementation computes in (:func:`result_precision`)."""
    last_precision: str = "float64"
    """The same for the latest result alone."""

    def __init__(self, impl: Any, name: str | None = None) -> None:
        self.impl = check_protocol(impl, name)  # plain functions: a loading.Functions
        self.name = name or impl_name(self.impl)
        self.calls = 0
        self.impurities: list[Impurity] = []
        self.inconsistencies: list[Inconsistency] = []
        self.on_call: Callable[[str | None], None] | None = None
        self._memo: dict[str, dict[bytes, tuple[int, Any]]] = {m: {} for m in MEMBERS}

    @property
    def layout(self) -> str:
        """The layout the implementation is written in (:mod:`.layouts`; "columns": the seed's)."""
        return layout_of(self.impl)

    def use_layout(self, layout: str) -> None:
        """Put ``layout``'s adapter (:mod:`.layouts`) in front of the implementation: callers
        keep the seed's layout, the implementation gets its own. Replaces an earlier one."""
        self.impl = adapt(self.impl, layout)
        self._memo = {m: {} for m in MEMBERS}

    def has(self, member: str) -> bool:
        """Whether the implementation has ``member`` (``forward`` and ``update`` are optional)."""
        return callable(getattr(self.impl, member, None))

    # -- the protocol -------------------------------------------------------------------------

    def loss(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, l2: float = 0.0
    ) -> float:
        """J(params; X, Y) from the implementation, as a float; ``l2`` is passed only when
        not 0 (code without the keyword is never called with it)."""
        return self._call(
            "loss",
            (params, X, Y),
            _keywords(activations, cost, l2),
            lambda value: as_loss(value),
            _network(params, X, activations, cost),
        )

    def gradients(
        self, params: Params, X: np.ndarray, Y: np.ndarray, *, activations, cost, l2: float = 0.0
    ) -> Params:
        """``[(dJ/dW^l, dJ/db^l)]`` from the implementation, float64, shapes checked; ``l2``
        as in :meth:`loss`."""
        return self._call(
            "gradients",
            (params, X, Y),
            _keywords(activations, cost, l2),
            lambda value: as_gradients(value, params),
            _network(params, X, activations, cost),
        )

    def losses(
        self,
        points: Sequence[Params],
        X: np.ndarray,
        Y: np.ndarray,
        *,
        activations,
        cost,
        l2: float = 0.0,
    ) -> list[float]:
        """:meth:`loss` at each of ``points`` (parameters), in order, as if called one by
        one; an implementation in a worker gets them in one message (the finite
        differences' many calls), each still checked and timed on its own."""
        keywords = {"activations": activations, "cost": cost, "l2": l2}
        batch = getattr(self.impl, "batch", None)
        if batch is None or not points or self.hung is not None or not self.has("loss"):
            return [self.loss(p, X, Y, **keywords) for p in points]
        cast = (lambda v: _cast(v, self.dtype)) if self.dtype is not None else (lambda v: v)
        calls = [cast((p, X, Y)) for p in points]
        with batch("loss", calls, _keywords(activations, cost, l2)):
            return [self.loss(p, X, Y, **keywords) for p in points]

    def forward(self, params: Params, X: np.ndarray, *, activations) -> np.ndarray:
        """A^L from the implementation's ``forward``."""
        return self._call(
            "forward",
            (params, X),
            {"activations": list(activations)},
            lambda value: _as_forward(value, params, np.shape(X)[1]),
            _network(params, X, activations, None),
        )

    def update(self, params: Params, grads: Params, learning_rate: float) -> Params:
        """The implementation's ``update(params, grads, learning_rate)``, as a list of pairs
        of the parameters' shapes. An ``update`` that returns None is taken to work in place
        and its result is read from the (copied) ``params`` it was given."""
        return self._call(
            "update",
            (params, grads, learning_rate),
            {},
            None,
            _network(params, None, None, None),
        )

    # -- the door -----------------------------------------------------------------------------

    def _call(self, member, args, kwargs, convert, network):
        fn = getattr(self.impl, member, None)
        if not callable(fn):
            raise ImplementationFailed(
                Finding("structure", member, "is not implemented (no callable member)", network)
            )
        if self.hung is not None:
            raise ImplementationFailed(self.hung)
        sent = _cast(args, self.dtype) if self.dtype is not None else args
        given = copy.deepcopy(sent)
        key = _digest(member, args, sorted(kwargs.items())) if member != "update" else None
        self.calls += 1
        call = self.calls
        if self.on_call is not None:
            self.on_call(member)
        np_state = np.geterr()
        os._exit = _refuse_exit  # in this process, os._exit would end the harness's run too
        timed = (
            self.time_limit is not None
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )
        if timed:
            previous = signal.signal(signal.SIGALRM, _alarm)
            # repeating: code with a bare ``except:`` that swallows one alarm gets the next
            signal.setitimer(signal.ITIMER_REAL, self.time_limit, min(self.time_limit, 1.0))
        given_kwargs = copy.deepcopy(kwargs)
        try:
            with warnings.catch_warnings():
                raw = fn(*given, **given_kwargs)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, WorkerLost)):
                raise
            if isinstance(exc, RemoteFailure):  # what the worker said of its own exception
                raise ImplementationFailed(
                    Finding(exc.kind, member, exc.text, network, exc.exception, exc.where)
                ) from None
            where = user_frame(exc.__traceback__)
            if isinstance(exc, _TimeLimit):
                self.hung = Finding("timeout", member, f"did not return within "
                                    f"{self.time_limit:g} s (an endless loop or a very slow call)",
                                    network, where=where)  # fmt: skip
                raise ImplementationFailed(self.hung) from None
            if isinstance(exc, StructureError):  # a layout adapter's check, in the user's terms
                raise ImplementationFailed(
                    Finding("structure", member, str(exc), network)
                ) from None
            kind = (
                "exit"
                if isinstance(exc, SystemExit)
                else "unsupported"
                if isinstance(exc, NotImplementedError)
                else "raised"
            )
            raise ImplementationFailed(
                Finding(kind, member, _describe_exception(exc), network, type(exc).__name__, where)
            ) from None
        finally:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            os._exit = _os_exit
            np.seterr(**np_state)
            if self.on_call is not None:
                self.on_call(None)
        in_place = member == "update" and (
            raw is None or _returns_what_it_wrote(raw, sent[0], given[0])
        )
        if member == "update":
            self.update_in_place = in_place
            self.update_returned = raw is not None
        self._record_impurities(member, sent, given, skip_params=in_place)
        self._record_keyword_impurities(member, kwargs, given_kwargs)
        self.last_precision = result_precision(raw)
        self.precision = lowest_precision(self.precision, self.last_precision)
        try:
            if member == "update":
                value = _as_update(raw, given[0], args[0])
            else:
                value = convert(raw)
        except _WrongShapes as exc:
            finding = Finding("structure", member, str(exc), network)
            raise PartlyWrongShapes(finding, exc.partial, exc.wrong) from None
        except _Structure as exc:
            raise ImplementationFailed(Finding("structure", member, str(exc), network)) from None
        if key is not None:
            self._remember(member, key, call, value)
        return value

    def _record_impurities(
        self, member: str, before: tuple, after: tuple, skip_params: bool = False
    ) -> None:
        names = {
            "loss": ("params", "X", "Y"),
            "gradients": ("params", "X", "Y"),
            "forward": ("params", "X"),
            "update": ("params", "grads", "learning_rate"),
        }[member]
        for name, b, a in zip(names, before, after):
            if skip_params and name == "params":
                continue  # an update that returns None works in place: a convention
            if name in ("params", "grads"):
                self._record_layers(member, name, b, a)
            elif name != "learning_rate":
                change = _changed(b, a)
                if change is not None:
                    self.impurities.append(Impurity(member, name, change))

    def _record_layers(self, member: str, name: str, before: Any, after: Any) -> None:
        """``params`` or ``grads``, a list of (W, b) pairs: the list itself (grown, shrunk),
        each entry (replaced by something that is not a pair) and each array."""
        pnames = ("W", "b") if name == "params" else ("dW", "db")
        if isinstance(before, list) and isinstance(after, list) and len(after) != len(before):
            self.impurities.append(Impurity(member, name, float("inf"), (
                f"the list of {len(before)} layers it was given now holds {len(after)}: "
                + ("an entry appended" if len(after) > len(before) else "an entry removed")
            )))  # fmt: skip
        for l, (pb, pa) in enumerate(zip(before, after), start=1):
            if type(pa) is not type(pb) or _size(pa) != _size(pb):
                what = f"a {type(pb).__name__} of {_size(pb)} replaced by {_describe(pa)}"
                self.impurities.append(
                    Impurity(member, f"layer {l}'s entry of {name}", float("inf"), what)
                )
                continue
            for k, pname in enumerate(pnames):
                try:
                    change = _changed(pb[k], pa[k])
                except (TypeError, IndexError, KeyError):
                    change = float("inf")
                if change is not None:
                    self.impurities.append(Impurity(member, f"layer {l}'s {pname}", change))

    def _record_keyword_impurities(self, member: str, before: dict, after: dict) -> None:
        """The keywords (``activations``, ``cost``, ``l2``): plain values, compared as such."""
        for key, value in before.items():
            now = after.get(key, _MISSING)
            same = _changed(value, now) is None if isinstance(value, np.ndarray) else (
                type(now) is type(value) and now == value
            )  # fmt: skip
            if not same:
                self.impurities.append(Impurity(member, key, float("inf"),
                                                f"{value!r} became {_describe(now)}"))  # fmt: skip

    def _remember(self, member: str, key: bytes, call: int, value: Any) -> None:
        memo = self._memo[member]
        if key in memo:
            first_call, first = memo[key]
            error = _difference(first, value)
            if error > _REPEAT_RTOL:
                self.inconsistencies.append(Inconsistency(member, first_call, call, error))
        elif len(memo) < _MEMO_SIZE:
            memo[key] = (call, value)

    def findings(self) -> list[str]:
        """Everything recorded so far, one line each."""
        return [i.describe() for i in self.impurities] + [
            i.describe() for i in self.inconsistencies
        ]


PRECISIONS = ("float64", "float32", "float16")
"""The floating precisions the guard tells apart, highest first."""


def lowest_precision(*names: str) -> str:
    """The lowest of the given :data:`PRECISIONS`."""
    return max(names, key=PRECISIONS.index)


def result_precision(value: Any) -> str:
    """The lowest floating precision among the arrays and scalars in ``value`` (any depth of
    lists and tuples, three levels deep: the protocol's results nest no deeper): "float32" or
    "float16" where one is, else "float64". A structure it cannot walk is float64 here and
    the conversion that follows says what is wrong with it."""
    found, stack = "float64", [(value, 0)]
    try:
        while stack:
            item, depth = stack.pop()
            if isinstance(item, (list, tuple)) and depth < 3 and len(item) <= 4096:
                stack.extend((v, depth + 1) for v in item)
            else:
                name = _float_name(item)
                if name is not None:
                    found = lowest_precision(found, name)
    except Exception:
        return "float64"
    return found


def _float_name(item: Any) -> str | None:
    """The name of ``item``'s floating precision among :data:`PRECISIONS`, for a NumPy array
    or scalar and for any array that carries a NumPy ``dtype`` (a JAX array's is one), or None.
    Read from the attribute alone: nothing is imported and nothing converted."""
    if isinstance(item, (list, tuple, str, bytes, dict)):
        return None
    dtype = getattr(item, "dtype", None)
    if dtype is None:
        return None
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):  # a dtype NumPy does not know: left to the conversion
        return None
    return name if name in PRECISIONS else None


def _cast(value: Any, dtype: str) -> Any:
    """``value`` with every floating array in it (at any depth of lists and tuples) cast to
    ``dtype``; anything else as it is."""
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(dtype)
    if isinstance(value, list):
        return [_cast(v, dtype) for v in value]
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    return value


def _returns_what_it_wrote(raw: Any, sent: Any, written: Any) -> bool:
    """Whether ``update`` wrote into the params it was given (``sent`` before the call,
    ``written`` after) and returned those same values: the in-place convention, whatever it
    returns (a training loop written for the seed, ``params = update(...)``, works the same).
    Values written that differ from the ones returned stay an impurity."""
    try:
        pairs = [list(pair) for pair in raw]
        before = [np.asarray(a) for pair in sent for a in pair]
        after = [np.asarray(a) for pair in written for a in pair]
        got = [np.asarray(a) for pair in pairs for a in pair]
    except Exception:  # not pairs of arrays: _as_update says what it is
        return False
    if not (len(got) == len(after) == len(before)):
        return False
    if all(np.array_equal(a, b) for a, b in zip(before, after)):
        return False  # nothing written: not in place
    return all(g.shape == a.shape and np.array_equal(g, a) for g, a in zip(got, after))


def _as_update(raw: Any, given_params: Params, params: Params) -> Params:
    result = given_params if raw is None else raw
    if isinstance(result, (str, bytes)) or not isinstance(result, Sequence):
        raise _Structure(f"update returned {type_name(raw)}, not a list of (W, b) pairs")
    if len(result) != len(params):
        raise _Structure(f"update returned {len(result)} layers, not {len(params)}")
    out = []
    for l, (pair, (W, b)) in enumerate(zip(result, params), start=1):
        if not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2:
            raise _Structure(f"update: layer {l} is not a (W, b) pair")
        arrays = []
        for pname, theta, new in (("W", W, pair[0]), ("b", b, pair[1])):
            new = _real_array(new, f"update's layer {l} {pname}")
            if new.shape != np.shape(theta):
                raise _Structure(
                    f"update: layer {l}'s {pname} has shape {new.shape}, not {np.shape(theta)}"
                )
            arrays.append(new)
        out.append((arrays[0], arrays[1]))
    return out


def _difference(first: Any, second: Any) -> float:
    if isinstance(first, float):
        a, b = np.array([first]), np.array([second])
    else:
        a = np.concatenate([np.ravel(x) for pair in first for x in pair])
        b = np.concatenate([np.ravel(x) for pair in second for x in pair])
    if np.array_equal(a, b, equal_nan=True):
        return 0.0
    with np.errstate(all="ignore"):
        denom = float(np.linalg.norm(a) + np.linalg.norm(b))
        err = float(np.linalg.norm(a - b)) / max(denom, np.finfo(np.float64).tiny)
    return err if np.isfinite(err) else float("inf")


def _keywords(activations, cost, l2: float) -> dict[str, Any]:
    """The protocol's keywords for ``loss`` and ``gradients``: ``l2`` only when not 0."""
    out: dict[str, Any] = {"activations": list(activations), "cost": cost}
    if l2:
        out["l2"] = float(l2)
    return out


def _network(params, X, activations, cost) -> str:
    try:
        sizes = [np.shape(params[0][0])[1]] + [np.shape(W)[0] for W, _ in params]
        text = "-".join(map(str, sizes))
    except Exception:
        return ""
    if activations is not None:
        text += f" [{', '.join(map(str, activations))}]"
    if cost is not None:
        text += f" {cost}"
    if X is not None:
        text += f", m = {np.shape(X)[1]}"
    return text


def guard(impl: Any, name: str | None = None) -> Guarded:
    """``impl`` behind the boundary; a :class:`Guarded` is returned as it is."""
    return impl if isinstance(impl, Guarded) else Guarded(impl, name)
