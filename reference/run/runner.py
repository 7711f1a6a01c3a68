"""Where a run's jobs run: the :class:`Runner` protocol, and the runners and wrappers that
meet it. A job is a function ``job(guarded implementation, *args)`` (:mod:`.jobs`); a runner
runs it on the implementation it holds, in this process (:class:`InProcess`) or in a worker
(:class:`~reference.boundary.isolation.Worker`), and returns what the job returned, or a
:class:`~reference.boundary.isolation.Failed` naming why it did not return. Wrappers add one
thing each around another runner: the precision (:class:`WithDtype`), each job's time
(:class:`Timed`), the layer view of failing networks
(:class:`~reference.run.layer_views.Viewer`), several workers at once
(:class:`~reference.run.scaling.Spread`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ..boundary.detect import Detection, detect_layout, probe_problem
from ..boundary.guard import Guarded, guard
from ..boundary.isolation import Failed
from ..inputs.scope import Scope
from ..report.junit import CHECKS_SUITE
from .jobs import check_network


class Runner(Protocol):
    """What the run engine needs of a runner: one :meth:`run`, and what it says about the
    implementation it runs."""

    name: str
    """The implementation's name, as the reports give it."""
    declared: Scope
    """What the implementation declares it supports (its ``SUPPORTS``)."""

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        """``job(implementation, *args)``'s result, or a ``Failed`` when it did not return."""
        ...

    def use_layout(self, layout: str) -> None:
        """Check the implementation as written in ``layout`` from now on."""
        ...

    def printed(self) -> list[str]:
        """The lines the implementation printed so far (none in this process)."""
        ...

    def close(self) -> None:
        """Stop what the runner started."""
        ...


class InProcess:
    """A runner that calls jobs in this process (no isolation, no time limit)."""

    def __init__(self, impl: Any, name: str | None = None) -> None:
        self.impl = guard(impl, name)
        self.name = self.impl.name
        self.declared = Scope.read(
            getattr(self.impl.impl, "SUPPORTS", None), f"{self.name}.SUPPORTS"
        )
        self.restarts = 0

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        return job(self.impl, *args)

    def use_layout(self, layout: str) -> None:
        """Check the implementation as written in ``layout`` (``reference/boundary/layouts.py``)."""
        self.impl.use_layout(layout)

    def printed(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def settle_layout(runner: Runner, scope: Scope, option: str | None = "--layout") -> Detection:
    """Set ``runner`` to the layout ``scope`` declares, or, where the code's shapes say
    another, to the one detected (:func:`~reference.boundary.detect.detect_layout`, one probe
    call first); what the probe found. Its ``note`` says which layout was detected; its
    ``error``, that the declared layout does not fit and another does (the runner is left
    in the declared one, whose checks then fail and say why). ``option``: the front-end's
    option that declares a layout, for that error (None: only the code's ``SUPPORTS``)."""
    if scope.layout not in (None, "columns"):
        runner.use_layout(scope.layout)
    found = runner.run(detect_layout, scope.layout, probe_problem(scope), option)
    if isinstance(found, Failed):  # the probe did not return: the checks will say why
        return Detection()
    if found.error is None and found.layout is not None:
        runner.use_layout(found.layout)
    return found


def with_dtype(impl: Guarded, dtype: str | None, job: Callable[..., Any], *args: Any) -> Any:
    """``job(impl, *args)`` with the implementation given its arrays in ``dtype`` (None or
    "float64": as they are): set before every job, so a worker started afresh after a crash
    or a time-out gets it too."""
    impl.dtype = None if dtype in (None, "float64") else dtype
    return job(impl, *args)


class WithDtype:
    """A runner (:class:`InProcess` or a :class:`~reference.boundary.isolation.Worker`) whose
    every job runs with the implementation given its arrays in ``dtype`` (:func:`with_dtype`);
    the precision is known only once the worker has read the module's ``SUPPORTS``."""

    def __init__(self, runner: Runner, dtype: str | None) -> None:
        self.runner, self.dtype = runner, dtype

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        return self.runner.run(with_dtype, self.dtype, job, *args)

    def __getattr__(self, name: str) -> Any:  # name, declared, restarts, printed, close
        return getattr(self.runner, name)


class Timed:
    """A runner (:class:`~reference.run.runner.InProcess`, a
    :class:`~reference.boundary.isolation.Worker`, or a wrapper of one) that records how long
    each job took: ``times[problem name]`` for one network's check
    (:func:`~reference.run.jobs.check_network`), ``times[CHECKS_SUITE]`` summed over
    the other jobs. Seconds, wall clock."""

    def __init__(self, runner: Runner, times: dict[str, float] | None = None) -> None:
        self.runner = runner
        self.times: dict[str, float] = {} if times is None else times
        """Shared by the runners of one run (``--jobs``: one per worker, one dictionary)."""

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.runner.run(job, *args)
        finally:
            key = args[0].name if job is check_network else CHECKS_SUITE
            self.times[key] = self.times.get(key, 0.0) + time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:  # name, declared, restarts, printed, close, ...
        return getattr(self.runner, name)
