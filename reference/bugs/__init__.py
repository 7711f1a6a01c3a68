"""A catalog of real backprop mistakes, each planted in an otherwise correct implementation.

``CATALOG`` maps a name to an instance that satisfies the implementation
protocol; ``reference.bugs:missing_transpose`` style module paths load one
(``backprop-check --impl reference.bugs:missing_transpose``). ``CORRECT`` is
the shared correct code they vary.
"""

from .base import Correct
from .catalog import MISTAKES

CORRECT = Correct()
CATALOG: dict[str, Correct] = {cls.name: cls() for cls in MISTAKES}

globals().update(CATALOG)  # each mistake importable by name, for --impl and --backprop-impl

__all__ = ["CATALOG", "CORRECT", "MISTAKES", "Correct"]
