"""A wall-time limit on all of one submission's calls together: :class:`Deadline` wraps a
runner, and a job it cuts comes back with a :data:`WALL_LIMIT` finding."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..boundary.guard import Finding
from ..boundary.isolation import Failed
from ..run.runner import Runner

WALL_LIMIT = "wall_limit"
"""The kind of finding a job cut by the submission's wall-time limit gets: not a
``timeout`` (a call's own limit), so that the cause a student reads is the limit that
fired, and the runs that follow are not taken for calls that hang."""


class Deadline:
    """A runner with a wall-time limit on all its jobs together: a job started after the
    limit, or one running when it passes (the worker is killed), comes back
    :class:`~reference.boundary.isolation.Failed` with a :data:`WALL_LIMIT` finding."""

    def __init__(self, runner: Runner, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"the wall-time limit must be > 0 seconds, got {seconds!r}")
        self.runner, self.seconds = runner, float(seconds)
        self.end = time.monotonic() + self.seconds
        self.expired = False
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        kill = getattr(self.runner, "kill", None)
        if kill is not None:
            kill()

    def finding(self) -> Finding:
        return Finding(
            WALL_LIMIT,
            "the implementation",
            f"ran past the wall-time limit of {self.seconds:g} s for the whole grading "
            "(all of its calls together); what was left was not graded",
        )

    def run(self, job: Any, *args: Any) -> Any:
        if self.expired or time.monotonic() >= self.end:
            self.expired = True
            return Failed(self.finding())
        done = self.runner.run(job, *args)
        if self.expired:
            return Failed(self.finding())
        return done

    def close(self) -> None:
        self._timer.cancel()
        self.runner.close()

    def __getattr__(self, name: str) -> Any:  # name, declared, printed, use_layout
        return getattr(self.runner, name)
