"""pytest plugin: the backprop harness, for the runs that ask for it.

Registered through the ``pytest11`` entry point, so pytest loads it in every session of an
environment where the package is installed. Loaded, it only adds an option and an ini key;
it imports neither JAX nor hypothesis and changes nothing until a run asks for the harness:

- ``--backprop-impl package.module[:object]`` on the command line, or
- ``backprop_impl = "package.module"`` in the project's pytest configuration
  (``[tool.pytest.ini_options]`` in ``pyproject.toml``, or ``pytest.ini``), or
- a ``conftest.py`` that calls :func:`activate` from its ``pytest_configure``: the shipped
  suite (``python -m pytest --pyargs reference.suite``) and this repository's ``tests/`` do.

Asked for, the harness

- registers the Hypothesis profiles ``ci`` (derandomized, no example database, bounded),
  ``dev`` and ``thorough`` (nightly: ten times dev's examples and more), every one without a
  deadline, and loads one: ``HYPOTHESIS_PROFILE`` names it, else ``CI=true`` picks ``ci``,
  else ``dev``; hypothesis' own ``--hypothesis-profile`` still wins;
- loads the implementation under test that the ``backprop_impl`` fixture gives every
  protocol-level test: the option's, else the ini key's, else ``backprop``; written in
  another layout (``--backprop-layout``, the ini key ``backprop_layout``, or the module's
  ``SUPPORTS["layout"]``), it gets that layout's adapter in front;
- names both in the report header;
- judges as strictly as the run's own configuration says (the ``backprop_settings``
  fixture, :func:`judging_settings`): ``--backprop-strict`` or the ini key ``backprop_strict``
  fails warnings and conventions too; the relu'(0) required is ``--backprop-relu-at-zero``
  given on the command line, else the one the code declares (``SUPPORTS["relu_at_zero"]``
  or ``relu_at_zero`` in ``[tool.backprop-check]``), else the ini key
  ``backprop_relu_at_zero``, else none (any value in [0, 1]). A fork inherits its upstream's
  ini keys with its ``pyproject.toml``; the convention it declares is what its code is held
  to, and strictness then fails only what it has not declared.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import pytest

PROFILES = {
    "ci": {"max_examples": 25, "derandomize": True, "database": None},
    "dev": {"max_examples": 60},
    "thorough": {"max_examples": 1000},
}
"""max_examples per profile; every profile has no deadline (a first call compiles JAX)."""

DEFAULT_IMPL = "backprop"
"""The implementation checked when the harness is asked for without naming one."""

HOW_TO_ACTIVATE = (
    "pass --backprop-impl package.module (or package.module:object), set "
    'backprop_impl = "package.module" in [tool.pytest.ini_options] of pyproject.toml '
    "(or in pytest.ini), or run the shipped suite: "
    "python -m pytest --pyargs reference.suite --backprop-impl package.module"
)


class Harness(NamedTuple):
    """What an activated run checks: the spec as written, where it came from, the object,
    and the object behind the boundary (what the ``backprop_impl`` fixture gives tests)."""

    spec: str
    source: str
    impl: Any
    guarded: Any
    scope: Any
    layout_note: str | None = None
    """The NOTE of a layout found from the shapes (None: the declared or seed layout fit)."""


class Settings(NamedTuple):
    """How strictly the suite judges: the ``backprop_settings`` fixture."""

    strict: bool = False
    relu_at_zero: float | None = None


HARNESS = pytest.StashKey[Harness]()
"""Set on ``config.stash`` once the harness is activated; absent otherwise."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-harness")
    group.addoption(
        "--backprop-impl",
        action="store",
        default=None,
        metavar="MODULE",
        help="check this implementation: package.module or package.module:object "
        "(turns the backprop harness on; the shipped suite's default is backprop)",
    )
    group.addoption(
        "--backprop-timeout",
        action="store",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit on each call into the implementation under test (default 60): a "
        "call that runs longer fails its test with a timeout finding",
    )
    group.addoption(
        "--backprop-strict",
        action="store_true",
        help="warnings (numerical robustness) and convention notes (deliberate differences "
        "from the seed, such as relu'(0) = 0) fail their tests too",
    )
    group.addoption(
        "--backprop-relu-at-zero",
        type=float,
        choices=(0.0, 1.0),
        default=None,
        metavar="0|1",
        help="require this relu'(0) (default: any value in [0, 1] is a valid subgradient)",
    )
    group.addoption(
        "--backprop-layout",
        action="store",
        default=None,
        metavar="LAYOUT",
        help="the layout the implementation is written in: columns (the seed's), rows, dicts "
        "or samples (default: its SUPPORTS['layout'], else the ini key backprop_layout, else "
        "columns)",
    )
    parser.addini(
        "backprop_layout",
        "layout of the implementation under test (columns, rows, dicts, samples)",
        default="",
    )
    parser.addini(
        "backprop_strict",
        "fail warnings and convention notes too, as --backprop-strict does",
        type="bool",
        default=False,
    )
    parser.addini(
        "backprop_relu_at_zero",
        "require this relu'(0), 0 or 1, unless the code declares its own (SUPPORTS or "
        "[tool.backprop-check] relu_at_zero) or --backprop-relu-at-zero is given",
        default="",
    )
    parser.addini(
        "backprop_impl",
        "implementation the backprop harness checks (package.module[:object]); "
        "setting it turns the harness on",
        default="",
    )


def requested_impl(config: pytest.Config) -> tuple[str, str] | None:
    """``(spec, source)`` for the implementation this run names, or None if it names none.

    The command line wins over the ini key.
    """
    spec = config.getoption("backprop_impl", default=None)
    if spec:
        return spec, "--backprop-impl"
    try:
        spec = config.getini("backprop_impl")
    except ValueError:  # the key is not registered: this plugin was disabled (-p no:...)
        spec = ""
    if spec:
        return str(spec), "ini key backprop_impl"
    return None


@pytest.hookimpl(tryfirst=True)  # profiles registered before hypothesis loads --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    if requested_impl(config) is not None:
        activate(config)


def activate(config: pytest.Config) -> None:
    """Turn the harness on for this run: profiles, the implementation, the header.

    Called by this plugin when the run names an implementation, and by the conftests of the
    suites that always need the harness. A second call changes nothing.
    """
    if HARNESS in config.stash:
        return
    spec, source = requested_impl(config) or (DEFAULT_IMPL, "the default implementation")
    try:
        from hypothesis import settings
    except ImportError as exc:
        raise pytest.UsageError(
            f"the backprop harness needs hypothesis and jax ({exc}): "
            'python -m pip install "backprop-harness[test]"'
        ) from exc
    _register_profiles()
    if not config.getoption("hypothesis_profile", default=None):
        name = profile_name()
        if name not in PROFILES:
            raise pytest.UsageError(
                f"HYPOTHESIS_PROFILE={name!r} is not a profile; choose one of {', '.join(PROFILES)}"
            )
        settings.load_profile(name)

    from ..boundary.loading import ImplementationError, load_impl

    try:
        impl = load_impl(spec)
    except ImplementationError as exc:
        raise pytest.UsageError(f"{source} {spec}: {exc}") from exc
    from ..boundary.guard import guard
    from ..inputs.scope import Scope, ScopeError, from_pyproject

    try:
        declared = Scope.read(getattr(impl, "SUPPORTS", None), f"{spec}.SUPPORTS")
        scope = from_pyproject(config.rootpath).over(declared)
    except ScopeError as exc:
        raise pytest.UsageError(str(exc)) from exc
    guarded = guard(impl, spec)
    guarded.time_limit = config.getoption("backprop_timeout")
    layout = requested_layout(config, impl, spec)
    guarded.use_layout(layout or "columns")
    note = settle_layout(guarded, layout, scope, f"{source} {spec}")
    config.stash[HARNESS] = Harness(spec, source, impl, guarded, scope, note)
    judging_settings(config)  # a bad ini key is a usage error now, not an error in every test


def requested_layout(config: pytest.Config, impl: Any, spec: str) -> str | None:
    """The layout declared for ``impl``: ``--backprop-layout``, else the ini key
    ``backprop_layout``, else the module's ``SUPPORTS["layout"]``; None when none is (the
    seed's columns are tried first, then the shapes say)."""
    from ..inputs.scope import Scope, ScopeError

    given = config.getoption("backprop_layout", default=None)
    where = "--backprop-layout"
    if not given:
        try:
            given, where = config.getini("backprop_layout"), "the ini key backprop_layout"
        except ValueError:  # the key is not registered: this plugin was disabled
            given = ""
    try:
        declared = Scope.read(getattr(impl, "SUPPORTS", None), f"{spec}.SUPPORTS")
        chosen = Scope.read({"layout": given or None}, where).over(declared)
    except ScopeError as exc:
        raise pytest.UsageError(str(exc)) from None
    return chosen.layout


def settle_layout(guarded: Any, declared: str | None, scope: Any, named: str) -> str | None:
    """Call the code once on a probe network (``boundary/detect.py``), as ``backprop-check``
    does, and set ``guarded`` to the layout its shapes say when nothing was declared; the
    NOTE saying so, or None. A declared layout that does not fit while another does, or
    undeclared code that several layouts fit, is one usage error, not the same shape error
    in every test."""
    from ..boundary.detect import detect_layout, probe_problem

    found = detect_layout(guarded, declared, probe_problem(scope), "--backprop-layout")
    if found.error is not None:
        raise pytest.UsageError(f"{named}: FAIL layout: {found.error}")
    if found.layout is not None:
        guarded.use_layout(found.layout)
    return found.note


def _register_profiles() -> None:
    from hypothesis import HealthCheck, settings

    for name, options in PROFILES.items():
        settings.register_profile(
            name,
            deadline=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            **options,
        )


def profile_name(environ: dict[str, str] | None = None) -> str:
    """The profile the environment asks for: HYPOTHESIS_PROFILE, else ci under CI=true, else dev."""
    env = os.environ if environ is None else environ
    if env.get("HYPOTHESIS_PROFILE"):
        return env["HYPOTHESIS_PROFILE"]
    return "ci" if env.get("CI", "").lower() in ("true", "1", "yes") else "dev"


def pytest_report_header(config: pytest.Config) -> list[str]:
    harness = config.stash.get(HARNESS, None)
    if harness is None:
        return []
    from hypothesis import settings

    layout = harness.guarded.layout
    lines = [
        f"backprop-harness: implementation {harness.spec}"
        + ("" if layout == "columns" else f" ({layout} layout)")
        + ", "
        f"hypothesis profile {settings.get_current_profile_name()} "
        f"({settings.default.max_examples} examples per test)"
    ]
    return lines if harness.layout_note is None else [*lines, harness.layout_note]


@pytest.fixture(scope="session")
def backprop_impl(request: pytest.FixtureRequest) -> Any:
    """The implementation under test behind the boundary (every call copied, validated and
    timed: ``--backprop-timeout``); needs the harness turned on."""
    harness = request.config.stash.get(HARNESS, None)
    if harness is None:
        pytest.fail(
            "the backprop_impl fixture needs the backprop harness, and this run did not turn "
            f"it on: {HOW_TO_ACTIVATE}",
            pytrace=False,
        )
    return harness.guarded


@pytest.fixture(scope="session")
def backprop_scope(request: pytest.FixtureRequest) -> Any:
    """What the implementation declares it supports (its ``SUPPORTS``, then
    ``[tool.backprop-check]`` in the run's pyproject.toml): the suite draws only inside it."""
    harness = request.config.stash.get(HARNESS, None)
    if harness is None:
        from ..inputs.scope import Scope

        return Scope()
    return harness.scope


def _ini(config: pytest.Config, name: str, default: Any) -> Any:
    try:
        return config.getini(name)
    except ValueError:  # the key is not registered: this plugin was disabled (-p no:...)
        return default


def judging_settings(config: pytest.Config) -> Settings:
    """How strictly this run judges (the module docstring gives the order): strict from the
    option or the ini key ``backprop_strict``; relu'(0) from the option, else the code's
    declaration (the harness's scope), else the ini key ``backprop_relu_at_zero``."""
    strict = bool(config.getoption("backprop_strict", default=False))
    strict = strict or bool(_ini(config, "backprop_strict", False))
    relu = config.getoption("backprop_relu_at_zero", default=None)
    harness = config.stash.get(HARNESS, None)
    if relu is None and harness is not None:
        relu = getattr(harness.scope, "relu_at_zero", None)
    if relu is None:
        text = str(_ini(config, "backprop_relu_at_zero", "") or "").strip()
        if text:
            try:
                relu = float(text)
            except ValueError:
                relu = -1.0
            if relu not in (0.0, 1.0):
                raise pytest.UsageError(
                    f"the ini key backprop_relu_at_zero must be 0 or 1 (relu'(0)), got {text!r}"
                )
    return Settings(strict, relu)


@pytest.fixture(scope="session")
def backprop_settings(request: pytest.FixtureRequest) -> Settings:
    """:func:`judging_settings`: strictness and the relu'(0) required, as the suite reads them."""
    return judging_settings(request.config)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each test gives the implementation a fresh chance after a time-out in an earlier one."""
    harness = item.config.stash.get(HARNESS, None)
    if harness is not None:
        harness.guarded.hung = None
