"""The JUnit XML file ``backprop-check --junit-xml`` writes, in the shape CI servers read.

There is no single JUnit standard; this follows what Jenkins' JUnit plugin and GitLab's unit
test reports both read (``reference/report/junit.xsd`` states it as a schema), within the
two schemas Jenkins' plugins publish (the junit-4 one the JUnit 5 project keeps for Jenkins,
and the xUnit plugin's junit-10: :data:`SCHEMAS`)::

    testsuites  name, tests, failures, errors, time (the run's totals; no skipped total,
                which neither published schema allows there: the suites carry it)
      testsuite       one per network (and one for the other checks): name, tests,
                      failures, errors, skipped, time, timestamp, hostname
        properties    seed, implementation, harness version, the network, the attribution
        testcase      classname "backprop_check.<impl>.<network>", name, time: one per layer
                      parameter ("layer 2 W"), the loss, and what the boundary saw
          failure     message, type: a wrong gradient or loss, a failed check
          error       message, type: a crash, a time-out, a malformed result
          skipped     its reason as text (junit-4 allows no attribute on it): a
                      network outside the declared scope
        system-out    what the implementation printed (the checks' suite only)

GitLab shows ``classname`` as the suite and ``name`` as the test; Jenkins splits
``classname`` at its last dot into package and class, so the parts of it are made of
letters, digits, ``_`` and ``-`` only. A network's check computes all its layers at once:
its time is shared evenly among its test cases, so that they add up to the suite's.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..judging.outcome import Outcome
from ..judging.records import ATTRIBUTIONS, Report

SCHEMA = Path(__file__).with_name("junit.xsd")
"""The project's schema of the files written here (tests/test_ci_output.py validates them)."""

SCHEMAS = {
    "backprop-check": SCHEMA,
    "jenkins junit-4": Path(__file__).with_name("jenkins-junit-4.xsd"),
    "xunit junit-10": Path(__file__).with_name("xunit-junit-10.xsd"),
}
"""Every schema the files written here meet: the project's own, and the structures of the
two Jenkins' plugins publish, written out (each file says where each constraint comes from)."""

PRINTED_LINES = 200
"""How many lines of what the implementation printed the file keeps."""

ROOT_TOTALS = ("tests", "failures", "errors")
"""The counts the ``testsuites`` root carries (the published schemas declare no skipped one)."""

CHECKS_SUITE = "other checks"
"""The name of the test suite that holds the non-gradient checks."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def xml_text(text: str) -> str:
    """``text`` with what XML 1.0 cannot hold replaced: terminal colour codes are dropped,
    control characters and lone surrogates become U+FFFD."""
    return _NOT_XML.sub("\ufffd", _ANSI.sub("", text))


def class_part(text: str) -> str:
    """One dotted part of a ``classname``: runs of anything but letters, digits, ``_`` and
    ``-`` become one ``_`` ("seed 2-3-2-1 tanh/tanh/sigmoid bce" -> "seed_2-3-2-1_tanh_tanh_
    sigmoid_bce"), so that no CI server splits it at a dot of its own."""
    return _NOT_NAME.sub("_", text).strip("_") or "_"


class _Suite:
    """One ``testsuite`` being built, with its counts."""

    def __init__(self, root: ET.Element, name: str, seconds: float, props: dict[str, str]):
        self.element = ET.SubElement(root, "testsuite", name=name)
        self.seconds = seconds
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if props:
            properties = ET.SubElement(self.element, "properties")
            for key, value in props.items():
                ET.SubElement(properties, "property", name=key, value=value)
        self.cases: list[ET.Element] = []

    def case(self, classname: str, name: str, outcome: str | None = None, message: str = "",
             kind: str = "", text: str = "") -> ET.Element:  # fmt: skip
        """A test case; ``outcome`` None (passed), "failure", "error" or "skipped"."""
        case = ET.SubElement(self.element, "testcase", classname=classname, name=name)
        self.cases.append(case)
        self.counts["tests"] += 1
        if outcome is not None:
            self.counts[{"failure": "failures", "error": "errors"}.get(outcome, outcome)] += 1
            if outcome == "skipped":  # junit-4: text only, no attribute
                ET.SubElement(case, outcome).text = message or "skipped"
                return case
            detail = ET.SubElement(case, outcome, message=message)
            if kind:
                detail.set("type", kind)
            if text:
                detail.text = text
        return case

    def close(self, stamp: str, host: str) -> None:
        share = self.seconds / max(1, len(self.cases))
        for case in self.cases:
            case.set("time", f"{share:.6f}")
        for key, value in self.counts.items():
            self.element.set(key, str(value))
        self.element.set("time", f"{self.seconds:.6f}")
        self.element.set("timestamp", stamp)
        self.element.set("hostname", host)


def _network_cases(suite: _Suite, classname: str, report: Report) -> None:
    """The cases of one checked network: its layer parameters, its loss, the boundary."""
    if not report.layers:  # it crashed, hung or returned the wrong structure: one case
        finding = report.finding or {}
        kind = finding.get("kind", report.attribution)
        if report.attribution == "unsupported":
            suite.case(classname, "gradients", "skipped", report.summary)
        else:
            suite.case(classname, finding.get("member") or "gradients", "error", report.summary,
                       kind, report.render())  # fmt: skip
        return
    for c in report.layers:
        name = f"layer {c.layer} {c.param}"
        if c.ok:
            suite.case(classname, name)
        else:
            text = (
                f"{c.diagnosis}\nerror vs FD {c.error_fd} (bound {c.bound_fd}), "
                f"vs JAX {c.error_jax} (bound {c.bound_jax})\n"
                f"attribution: {ATTRIBUTIONS[report.attribution]}\n\n{report.render()}"
            )
            suite.case(classname, name, "failure", c.diagnosis, report.attribution, text)
    if "ok" in report.loss:
        if report.loss["ok"]:
            suite.case(classname, "loss")
        else:
            suite.case(classname, "loss", "failure", report.summary, report.attribution,
                       json.dumps(report.loss))  # fmt: skip
    if report.findings:
        suite.case(classname, "arguments and repeatability", "failure", report.findings[0],
                   "boundary", "\n".join(report.findings))  # fmt: skip
    else:
        suite.case(classname, "arguments and repeatability")


def _undrawn(outcome: Outcome, seed: int | None) -> list[tuple[str, str]]:
    """The seed networks the scope left out (declared, or the seed's names where nothing
    is), with the reason for each."""
    from ..inputs.networks import default_problems
    from ..inputs.scope import Scope

    scope = Scope.read(outcome.scope or None, "the run's scope")
    if seed is None:
        return []
    return [(p.name, scope.why_not(p) or "") for p in default_problems(seed, 0)
            if not scope.admits(p)]  # fmt: skip


def suite_properties(impl: str, seed: int | None, version: str) -> dict[str, str]:
    """The properties every suite of a run carries: the seed, the implementation, the
    harness version."""
    base = {"impl": impl, "harness version": version}
    return {"seed": str(seed), **base} if seed is not None else base


def network_suite(
    root: ET.Element, problem: Any, report: Report, impl: str, seconds: float,
    base: dict[str, str], strict: bool = False,
) -> _Suite:  # fmt: skip
    """The ``testsuite`` of one network (checked, or outside the scope it declared), under
    ``root``; ``seconds`` its check's time, ``base`` :func:`suite_properties`."""
    props = {**base, "network": problem.describe(), "attribution": report.attribution}
    suite = _Suite(root, problem.name, seconds, props)
    classname = f"backprop_check.{class_part(impl)}.{class_part(problem.name)}"
    if strict and report.ok:
        for text in report.warnings + report.conventions:
            suite.case(classname, "conventions", "failure", text, "strict")
    _network_cases(suite, classname, report)
    return suite


def undrawn_suites(
    root: ET.Element, outcome: Outcome, impl: str, seed: int | None, base: dict[str, str]
) -> list[_Suite]:
    """One skipped ``testsuite`` per seed network the declared scope left out."""
    suites = []
    for name, why in _undrawn(outcome, seed):
        suite = _Suite(root, name, 0.0, {**base, "attribution": "not in scope"})
        suite.case(f"backprop_check.{class_part(impl)}.{class_part(name)}", "gradients",
                   "skipped", f"not in the declared scope: {why}")  # fmt: skip
        suites.append(suite)
    return suites


def checks_suite(
    root: ET.Element, outcome: Outcome, impl: str, seconds: float,
    base: dict[str, str], strict: bool = False,
) -> _Suite | None:  # fmt: skip
    """The ``testsuite`` of the non-gradient checks (None when there are none), with what
    the implementation printed."""
    if not outcome.checks:
        return None
    top = class_part(impl)
    suite = _Suite(root, CHECKS_SUITE, seconds, base)
    for where, c in outcome.checks:
        classname = f"backprop_check.{top}.checks.{class_part(where)}"
        crashed = c.finding is not None and c.finding.get("kind") != "unsupported"
        if c.ok is None:
            suite.case(classname, c.name, "skipped", c.message)
        elif c.ok:
            suite.case(classname, c.name)
        elif crashed:
            suite.case(classname, c.name, "error", c.message, c.finding["kind"], c.message)
        elif c.is_error or strict:
            suite.case(classname, c.name, "failure", c.message, c.severity, c.message)
        else:  # a warning or a convention: it passes, and says so
            case = suite.case(classname, c.name)
            ET.SubElement(case, "system-out").text = f"{c.severity}: {c.message}"
    printed = outcome.printed
    if printed:
        more = len(printed) - PRINTED_LINES
        ET.SubElement(suite.element, "system-out").text = "\n".join(
            printed[:PRINTED_LINES] + ([f"... and {more} more lines"] if more > 0 else [])
        )
    return suite


def clean(element: ET.Element) -> None:
    """:func:`xml_text` on every text and attribute under ``element``."""
    for node in element.iter():
        if node.text:
            node.text = xml_text(node.text)
        for key, value in node.attrib.items():
            node.set(key, xml_text(value))


def stamp_and_host() -> tuple[str, str]:
    """The ``timestamp`` (UTC, to the second) and ``hostname`` of the suites written now."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return stamp, socket.gethostname() or "localhost"


def build_junit(
    outcome: Outcome,
    impl: str,
    *,
    seed: int | None = None,
    version: str = "unknown",
    strict: bool = False,
) -> ET.Element:
    """The ``testsuites`` element for a run's ``outcome`` (:func:`~reference.run.session.
    run_checks`' dictionary, with ``times`` from :class:`Timed` when there), ``impl`` the
    implementation as named on the command line. ``strict``: failed warnings and conventions
    are failures too, as ``--strict`` makes them."""
    root = ET.Element("testsuites", name=f"backprop-check {impl}")
    times = outcome.times or {}
    stamp, host = stamp_and_host()
    base = suite_properties(impl, seed, version)
    checked = [(p, r) for p, r in outcome.reports] + list(outcome.unsupported)
    suites = [
        network_suite(root, problem, report, impl, times.get(problem.name, 0.0), base, strict)
        for problem, report in checked
    ]
    suites += undrawn_suites(root, outcome, impl, seed, base)
    others = checks_suite(root, outcome, impl, times.get(CHECKS_SUITE, 0.0), base, strict)
    suites += [others] if others is not None else []
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        suite.close(stamp, host)
        for key in totals:
            totals[key] += suite.counts[key]
    for key in ROOT_TOTALS:
        root.set(key, str(totals[key]))
    root.set("time", f"{sum(s.seconds for s in suites):.6f}")
    clean(root)
    return root


def write_junit(
    outcome: Outcome,
    impl: str,
    path: Path,
    *,
    seed: int | None = None,
    version: str = "unknown",
    strict: bool = False,
) -> None:
    """Write :func:`build_junit`'s file to ``path`` (UTF-8, with an XML declaration)."""
    root = build_junit(outcome, impl, seed=seed, version=version, strict=strict)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
