"""pytest plugin: ``--backprop-impl`` and the hypothesis profiles.

Registered through the ``pytest11`` entry point, so it is active wherever the
package is installed:

- ``--backprop-impl package.module[:object]`` selects the implementation that
  the ``impl`` fixture gives every protocol-level test (default: ``backprop``).
- Hypothesis profiles ``ci`` (derandomized, no example database, no deadline,
  bounded), ``dev`` (the default) and ``thorough`` (nightly: ten times dev's
  examples and more). ``HYPOTHESIS_PROFILE`` picks one; otherwise ``CI=true``
  picks ``ci``. hypothesis' own ``--hypothesis-profile`` still wins.
"""

from __future__ import annotations

import os

import pytest

PROFILES = {
    "ci": {"max_examples": 25, "derandomize": True, "database": None},
    "dev": {"max_examples": 60},
    "thorough": {"max_examples": 1000},
}
"""max_examples per profile; every profile has no deadline (a first call compiles JAX)."""


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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-harness")
    group.addoption(
        "--backprop-impl",
        action="store",
        default="backprop",
        metavar="MODULE",
        help="implementation under test: package.module or package.module:object "
        "(default: backprop)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    _register_profiles()
    if not config.getoption("hypothesis_profile", default=None):
        name = profile_name()
        if name not in PROFILES:
            raise pytest.UsageError(
                f"HYPOTHESIS_PROFILE={name!r} is not a profile; choose one of {', '.join(PROFILES)}"
            )
        settings.load_profile(name)
    from ..boundary.loading import ImplementationError, load_impl

    spec = config.getoption("backprop_impl")
    try:
        config._backprop_impl = load_impl(spec)  # type: ignore[attr-defined]
    except ImplementationError as exc:
        raise pytest.UsageError(f"--backprop-impl {spec}: {exc}") from exc


def pytest_report_header(config: pytest.Config) -> list[str]:
    from hypothesis import settings

    return [
        f"backprop-harness: implementation {config.getoption('backprop_impl')}, "
        f"hypothesis profile {settings.get_current_profile_name()} "
        f"({settings.default.max_examples} examples per test)"
    ]


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest):
    """The implementation under test (``--backprop-impl``), checked for the protocol."""
    return request.config._backprop_impl  # type: ignore[attr-defined]
