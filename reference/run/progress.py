"""``backprop-check``'s progress line: networks done / total, their rate and the time left,
on stderr (``--progress``, or a terminal there; never with ``--quiet``, never in the
JSON)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunProgress:
    """Networks done / total, their rate and the time left, on ``stream`` (stderr):
    redrawn in place on a terminal (from one second into the run, at most every
    ``every`` seconds), a line every ``every_line`` seconds when ``asked`` elsewhere (a CI
    log), and a last line when the run ends. Shown when ``asked`` (``--progress``) or
    when ``stream`` is a terminal; never with ``quiet``."""

    def __init__(
        self,
        total: int,
        *,
        quiet: bool,
        asked: bool = False,
        stream: TextIO | None = None,
        every: float = 0.2,
        every_line: float = 10.0,
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr  # as it is now
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = not quiet and (asked or self.tty)
        self.every = every if self.tty else every_line
        self.start = self.last = time.perf_counter()
        self.done = 0
        self.shown = False

    def line(self, done: int, now: float) -> str:
        """``"120/1000 networks, 45.1/s, about 20 s left"``."""
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        text = f"{done}/{self.total} networks, {rate:.1f}/s"
        if 0 < done < self.total:
            text += f", about {_duration((self.total - done) / rate)} left"
        elif done >= self.total:
            text += f", {_duration(elapsed)} in all"
        return text

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < self.every or (self.tty and now - self.start < 1.0):
            return
        self.last = now
        if self.tty:
            self.stream.write("\r" + self.line(done, now).ljust(60))
        else:
            self.stream.write(self.line(done, now) + "\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            if self.shown:
                self.stream.write("\r" + " " * 60 + "\r")
        else:
            self.stream.write(self.line(self.done, time.perf_counter()) + "\n")
        self.stream.flush()


def progress_for(args: argparse.Namespace, total: int) -> RunProgress:
    """The run's progress display for the parsed ``args``; ``--progress`` with ``--quiet``
    is a usage error."""
    from .session import UsageError

    asked = bool(getattr(args, "progress", False))
    if asked and args.quiet:
        raise UsageError("--progress and --quiet contradict each other")
    return RunProgress(total, quiet=args.quiet, asked=asked)
