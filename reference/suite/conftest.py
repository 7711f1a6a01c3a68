"""The shipped suite always runs under the backprop harness.

``python -m pytest --pyargs reference.suite`` checks ``backprop``; ``--backprop-impl`` (or
the ``backprop_impl`` ini key) names another implementation.
"""

import pytest

from reference.frontends.pytest_plugin import activate


@pytest.hookimpl(tryfirst=True)  # before hypothesis loads a --hypothesis-profile of ours
def pytest_configure(config: pytest.Config) -> None:
    activate(config)
