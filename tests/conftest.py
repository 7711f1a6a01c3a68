"""This repository's own tests run under the backprop harness: its Hypothesis profiles, and
``backprop`` unless ``--backprop-impl`` names another implementation."""

import pytest

from reference.frontends.pytest_plugin import activate


@pytest.hookimpl(tryfirst=True)  # before hypothesis loads a --hypothesis-profile of ours
def pytest_configure(config: pytest.Config) -> None:
    activate(config)
