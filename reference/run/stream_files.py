"""The files ``backprop-check`` writes as the run goes, a network at a time: ``--json PATH``
(:class:`JsonStream`, one JSON document written piece by piece) and ``--junit-xml PATH``
(:class:`JunitStream`, one ``testsuite`` per network, the root's totals filled in at the
end). :mod:`reference.run.streaming` gives their layout and its :class:`~reference.run.
streaming.Stream` writes into them."""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr

from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, Report
from ..report import junit

# --- the JSON document, piece by piece -----------------------------------------------------


def _record(problem: Any, report: Report) -> str:
    return json.dumps({"name": problem.name, **report.to_dict()})


class JsonStream:
    """``--json PATH`` written as the run goes (the module docstring gives the layout)."""

    def __init__(self, path: Path, head: dict[str, Any]) -> None:
        self.path = path
        self.fh = open(path, "w", encoding="utf-8")
        self.fh.write("{\n")
        for key, value in head.items():
            self.fh.write(f"{json.dumps(key)}: {json.dumps(value)},\n")
        self.fh.write('"networks": [')
        self.count = 0
        self.spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.spooled = 0  # the unsupported networks, written under not_in_scope at the end

    def network(self, problem: Any, report: Report) -> None:
        self.fh.write(("\n" if not self.count else ",\n") + _record(problem, report))
        self.count += 1

    def unsupported(self, problem: Any, report: Report) -> None:
        self.spool.write(("\n" if not self.spooled else ",\n") + _record(problem, report))
        self.spooled += 1

    def finish(
        self, tail: dict[str, Any], undrawn: int, checks: Sequence[tuple[str, Any]] = ()
    ) -> None:  # fmt: skip
        """Close the document: ``tail``'s first key (``ok``), ``checks`` (``(where,
        CheckResult)`` pairs, one line each), the rest of ``tail``, then ``not_in_scope``
        (``undrawn`` and the spooled unsupported networks) and ``attributions``."""
        from dataclasses import asdict

        self.fh.write("\n],\n")
        items = iter(tail.items())
        for key, value in itertools.islice(items, 1):
            self.fh.write(f"{json.dumps(key)}: {json.dumps(value)},\n")
        self.fh.write('"checks": [')
        for i, (where, c) in enumerate(checks):
            self.fh.write(("\n" if not i else ",\n") + json.dumps({"where": where, **asdict(c)}))
        self.fh.write("\n],\n" if checks else "],\n")
        for key, value in items:
            self.fh.write(f"{json.dumps(key)}: {json.dumps(value)},\n")
        self.fh.write(f'"not_in_scope": {{"undrawn": {undrawn}, "unsupported": [')
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, self.fh)
        self.fh.write("\n]},\n" if self.spooled else "]},\n")
        self.fh.write(f'"attributions": {json.dumps(ATTRIBUTIONS)}\n}}\n')
        self.close()

    def close(self) -> None:
        self.spool.close()
        self.fh.close()


# --- the JUnit file, suite by suite --------------------------------------------------------

_TOTALS_ROOM = 160
"""Bytes left in the root's start tag for its totals (five attributes, about 80 bytes)."""


class JunitStream:
    """``--junit-xml PATH`` written as the run goes: the root's start tag with room for
    its totals, one ``testsuite`` per network as it completes, then the scope's skipped
    networks, the other checks and the totals. A file that cannot seek (a pipe) gets the
    suites spooled to a temporary file and written after the totals."""

    def __init__(
        self,
        path: Path,
        impl: str,
        *,
        seed: int | None,
        version: str,
        strict: bool,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.impl, self.seed, self.strict = impl, seed, strict
        self.shard = shard or (1, 1)
        """``--shard K/N``: the networks the scope leaves out are written by shard 1 only,
        and a stopped shard's case is named for it, so that no two files share a case."""
        self.base = junit.suite_properties(impl, seed, version)
        self.path = path
        self.fh = open(path, "wb")
        self.fh.write(b"<?xml version='1.0' encoding='utf-8'?>\n")
        name = quoteattr(junit.xml_text(f"backprop-check {impl}"))
        self.fh.write(f"<testsuites name={name}".encode())
        self.seekable = self.fh.seekable()
        self.at = self.fh.tell() if self.seekable else 0
        if self.seekable:
            self.fh.write(b" " * _TOTALS_ROOM + b">\n")
        self.body: IO[bytes] = self.fh if self.seekable else tempfile.TemporaryFile()
        self.totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
        self.seconds = 0.0
        self.root = ET.Element("testsuites")  # a parent for each suite while it is built

    def _write(self, suite: junit._Suite) -> None:
        suite.close(*junit.stamp_and_host())
        for key in self.totals:
            self.totals[key] += suite.counts[key]
        self.seconds += suite.seconds
        junit.clean(suite.element)
        ET.indent(suite.element, space="  ", level=1)
        self.body.write(b"  " + ET.tostring(suite.element, encoding="utf-8",
                                            xml_declaration=False) + b"\n")  # fmt: skip
        self.root.remove(suite.element)

    def network(self, problem: Any, report: Report, seconds: float) -> None:
        self._write(junit.network_suite(self.root, problem, report, self.impl, seconds,
                                        self.base, self.strict))  # fmt: skip

    def finish(self, outcome: Outcome | None, stopped: str = "") -> None:
        """The scope's skipped networks and the other checks (from ``outcome``, None when
        the run stopped), a suite saying why it ``stopped``, the closing tag, the totals."""
        k, n = self.shard
        if outcome is not None:
            undrawn = junit.undrawn_suites(self.root, outcome, self.impl, self.seed, self.base)
            for suite in undrawn:
                if k == 1:
                    self._write(suite)
                else:
                    self.root.remove(suite.element)
            seconds = outcome.times.get(junit.CHECKS_SUITE, 0.0)
            others = junit.checks_suite(self.root, outcome, self.impl, seconds, self.base,
                                        self.strict)  # fmt: skip
            if others is not None:
                self._write(others)
        if stopped:
            where = "run" if n == 1 else f"run, shard {k}/{n}"
            suite = junit._Suite(self.root, "run stopped", 0.0, self.base)
            suite.case(f"backprop_check.{junit.class_part(self.impl)}.{junit.class_part(where)}",
                       "run", "error", f"the run stopped before its end: {stopped}",
                       "stopped")  # fmt: skip
            self._write(suite)
        totals = "".join(f' {key}="{self.totals[key]}"' for key in junit.ROOT_TOTALS)
        totals += f' time="{self.seconds:.6f}"'
        if self.seekable:
            self.fh.write(b"</testsuites>\n")
            self.fh.seek(self.at)
            self.fh.write(totals.encode())
        else:
            self.fh.write(totals.encode() + b">\n")
            self.body.seek(0)
            shutil.copyfileobj(self.body, self.fh)
            self.fh.write(b"</testsuites>\n")
        self.close()

    def close(self) -> None:
        if self.body is not self.fh:
            self.body.close()
        self.fh.close()
