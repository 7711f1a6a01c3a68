"""The ``backprop-check`` console script: say in one line what is missing before loading
the harness, whose JAX oracle needs ``jax`` (the ``check`` extra)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    missing = [name for name in ("jax",) if importlib.util.find_spec(name) is None]
    if missing:
        sys.stderr.write(
            f"backprop-check: error: needs {', '.join(missing)} for its JAX oracle: "
            'python -m pip install "backprop-harness[check]" (or pip install jax)\n'
        )
        return 2
    from .cli import main as run

    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
