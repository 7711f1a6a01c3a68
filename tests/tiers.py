"""The suite's two tiers: a plugin (``tests/conftest.py`` takes its hooks) and the helpers
that put tests in the slow one.

``python -m pytest`` runs the quick tier: every test not marked ``slow``. The slow tier holds
breadth: more cases of what a quick test already checks (more public implementations through
the shipped suite, every catalogued mistake through ``grade``, more forks, the whole catalogue
through ``--bugs``, the class of ``tests/test_submissions.py``, the page in Chromium, the cases
that wait out a time limit). ``-m slow`` runs the slow tier alone, ``--all`` both; CI
(``.ci/run``) runs both, one after the other. A test named on the command line by its id
(``tests/test_people.py::test_...``) runs whatever its tier; ``-k`` selects within the tiers
``-m`` or ``--all`` choose.

A test belongs in the slow tier only if the quick tier still checks what it checks, on a case
that fails when the code is wrong (``first_quick``'s ``quick`` values come first), and still
runs the lines of the command-line interface, the worker and the plugin that it runs:
``benchmarks/tier_coverage.py`` measures the lines, child processes included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

slow = pytest.mark.slow
"""The slow tier's marker (registered in ``pyproject.toml``)."""

_ParameterSet = type(pytest.param(None))


def first_quick(values: Iterable[object], *, quick: int = 1, unpack: bool = False) -> list[object]:
    """``values`` for ``pytest.mark.parametrize``: the first ``quick`` in the quick tier, the
    others marked ``slow``; order them so that the quick ones include a case that fails when
    the code is wrong. ``unpack``: each value is a tuple of several arguments' values.
    ``pytest.param`` values keep their marks and ids."""
    params: list[object] = []
    for index, value in enumerate(values):
        if index < quick:
            params.append(value)
        elif isinstance(value, _ParameterSet):
            params.append(pytest.param(*value.values, marks=[*value.marks, slow], id=value.id))
        else:
            params.append(pytest.param(*(value if unpack else (value,)), marks=slow))
    return params


def _named(config: pytest.Config) -> list[str]:
    """The test ids the command line names (``path::name``, made relative to the root)."""
    ids = []
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        if not sep:
            continue
        full = Path(os.path.abspath(config.invocation_params.dir / path))  # as node ids are
        if full.is_relative_to(config.rootpath):
            ids.append(f"{full.relative_to(config.rootpath).as_posix()}::{rest}")
    return ids


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all", action="store_true", dest="all_tiers",
        help="run the slow tier too (tests marked slow, tests/tiers.py); -m slow runs it alone",
    )  # fmt: skip


def pytest_report_header(config: pytest.Config) -> str:
    return "tiers: " + (
        "quick and slow (--all)" if config.option.all_tiers
        else f"as -m {config.option.markexpr!r} selects" if config.option.markexpr
        else "quick (the slow tier is deselected: --all runs it too, -m slow alone)"
    )  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``slow`` items, unless ``--all`` or a ``-m`` expression was given (the
    expression then decides) or the command line names the test (``path::name``)."""
    if config.option.all_tiers or config.option.markexpr:
        return
    named = _named(config)

    def kept(item: pytest.Item) -> bool:
        return item.get_closest_marker("slow") is None or any(
            item.nodeid == n or item.nodeid.startswith((f"{n}[", f"{n}::")) for n in named
        )

    gone = [item for item in items if not kept(item)]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = [item for item in items if kept(item)]
