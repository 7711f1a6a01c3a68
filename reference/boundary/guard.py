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

This module is the door itself; its parts live beside it, and their public names are
importable from here as well: :mod:`.findings` (what went wrong, and where in the user's
code), :mod:`.containment` (the time limit, ``os._exit`` refused, an exception as a
finding), :mod:`.results` (converting and validating results, their precision) and
:mod:`.records` (impurities and inconsistencies).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .containment import (  # noqa: F401  (_describe_exception ...: the worker's, from here)
    _describe_exception,
    _os_exit,
    _ProcessExit,
    _refuse_exit,
    _TimeLimit,
    contained,
    finding_of,
)
from .findings import (  # noqa: F401  (the records of a failure, importable from here)
    KINDS,
    MEMBERS,
    Finding,
    ImplementationFailed,
    PartlyWrongShapes,
    RemoteFailure,
    WorkerLost,
    _is_library,
    user_frame,
)
from .layouts import adapt, layout_of
from .loading import check_protocol, impl_name
from .records import (  # noqa: F401  (the records of a call, importable from here)
    Impurity,
    Inconsistency,
    Repeats,
    _changed,
    _digest,
    impurities,
    keyword_impurities,
)
from .results import (  # noqa: F401  (the conversions, importable from here)
    PRECISIONS,
    _as_forward,
    _as_update,
    _cast,
    _real_array,
    _returns_what_it_wrote,
    _Structure,
    _WrongShapes,
    as_gradients,
    as_loss,
    lowest_precision,
    result_precision,
)

Params = list[tuple[np.ndarray, np.ndarray]]


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
        self._repeats = Repeats()

    @property
    def layout(self) -> str:
        """The layout the implementation is written in (:mod:`.layouts`; "columns": the seed's)."""
        return layout_of(self.impl)

    def use_layout(self, layout: str) -> None:
        """Put ``layout``'s adapter (:mod:`.layouts`) in front of the implementation: callers
        keep the seed's layout, the implementation gets its own. Replaces an earlier one."""
        self.impl = adapt(self.impl, layout)
        self._repeats = Repeats()

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
            lambda raw, given: as_loss(raw),
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
            lambda raw, given: as_gradients(raw, params),
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
            lambda raw, given: _as_forward(raw, params, np.shape(X)[1]),
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
            lambda raw, given: _as_update(raw, given[0], params),
            _network(params, None, None, None),
            in_place=self._wrote_in_place,
        )

    def _wrote_in_place(self, raw: Any, sent: Params, given: Params) -> bool:
        """Whether ``update`` worked in place (returned None, or returned what it wrote into
        its copy ``given`` of the ``sent`` params), noted in :attr:`update_in_place` and
        :attr:`update_returned`: the params it changed are then no impurity."""
        self.update_in_place = raw is None or _returns_what_it_wrote(raw, sent, given)
        self.update_returned = raw is not None
        return self.update_in_place

    # -- the door -----------------------------------------------------------------------------

    def _call(
        self,
        member: str,
        args: tuple,
        kwargs: dict[str, Any],
        convert: Callable[[Any, tuple], Any],
        network: str,
        *,
        in_place: Callable[[Any, Any, Any], bool] | None = None,
    ) -> Any:
        """The door: copy in, call under the time limit, validate out, record. ``convert``
        turns the raw result (and the copies the member was given) into the checked value;
        ``in_place`` (``update`` alone) says whether the member worked in place on its
        params, which then are no impurity and whose results are not compared for
        repeatability (an update's result depends on the params it changes)."""
        fn = self._member(member, network)
        sent = _cast(args, self.dtype) if self.dtype is not None else args
        given, given_kwargs = copy.deepcopy(sent), copy.deepcopy(kwargs)
        key = _digest(member, args, sorted(kwargs.items())) if in_place is None else None
        self.calls += 1
        call = self.calls
        raw = self._invoke(fn, member, given, given_kwargs, network)
        wrote = in_place is not None and in_place(raw, sent[0], given[0])
        self.impurities += impurities(member, sent, given, skip_params=wrote)
        self.impurities += keyword_impurities(member, kwargs, given_kwargs)
        self.last_precision = result_precision(raw)
        self.precision = lowest_precision(self.precision, self.last_precision)
        value = _validated(convert, raw, given, member, network)
        if key is not None:
            self._remember(member, key, call, value)
        return value

    def _member(self, member: str, network: str) -> Callable[..., Any]:
        """The implementation's ``member``, callable; a failure at once when it has none or
        when it hung before (:attr:`hung`)."""
        fn = getattr(self.impl, member, None)
        if not callable(fn):
            raise ImplementationFailed(
                Finding("structure", member, "is not implemented (no callable member)", network)
            )
        if self.hung is not None:
            raise ImplementationFailed(self.hung)
        return fn

    def _invoke(
        self, fn: Callable[..., Any], member: str, given: tuple, kwargs: dict, network: str
    ) -> Any:
        """``fn(*given, **kwargs)`` under :func:`~.containment.contained`, its warnings kept
        to itself; anything it raises an :class:`ImplementationFailed` (a time-out also
        :attr:`hung`), but an interrupt and a lost worker, which end the job."""
        if self.on_call is not None:
            self.on_call(member)
        try:
            with contained(self.time_limit), warnings.catch_warnings():
                return fn(*given, **kwargs)
        except (KeyboardInterrupt, WorkerLost):
            raise
        except BaseException as exc:
            finding = finding_of(exc, member, network, self.time_limit)
            if isinstance(exc, _TimeLimit):
                self.hung = finding
            raise ImplementationFailed(finding) from None
        finally:
            if self.on_call is not None:
                self.on_call(None)

    def _remember(self, member: str, key: bytes, call: int, value: Any) -> None:
        """Compare ``value`` with the first result for the same inputs (:class:`Repeats`)."""
        repeat = self._repeats.check(member, key, call, value)
        if repeat is not None:
            self.inconsistencies.append(repeat)

    def findings(self) -> list[str]:
        """Everything recorded so far, one line each."""
        return [i.describe() for i in self.impurities] + [
            i.describe() for i in self.inconsistencies
        ]


def _validated(
    convert: Callable[[Any, tuple], Any], raw: Any, given: tuple, member: str, network: str
) -> Any:
    """``convert(raw, given)``; a result of the wrong structure an :class:`ImplementationFailed`
    (a :class:`PartlyWrongShapes` where some of the gradients came right)."""
    try:
        return convert(raw, given)
    except _WrongShapes as exc:
        finding = Finding("structure", member, str(exc), network)
        raise PartlyWrongShapes(finding, exc.partial, exc.wrong) from None
    except _Structure as exc:
        raise ImplementationFailed(Finding("structure", member, str(exc), network)) from None


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
