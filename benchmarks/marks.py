"""What a grade says about one-line mistakes: the marks of a student's file and its variants.

    python benchmarks/marks.py [--rubric PATH] [--hidden-seed N]

Grades ``tests/outside/student.py`` (a correct implementation of the seed's network alone,
NumPy only, no ``SUPPORTS``), the same file without its optional ``update``, and the file
with each of its marked one-line mistakes (``tests/students.py``: a bce sign flip, a
transposed dW, ...), in this process, on the rubric (default: the shipped one), and prints
each one's score, the maximum, and its first shortfall. Fairness, not speed: the numbers
are points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reference.grading.grade import grade  # noqa: E402
from tests import students  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rubric", help="a rubric TOML (default: the shipped one)")
    parser.add_argument("--hidden-seed", type=int, default=4242)
    args = parser.parse_args()
    variants = [("correct, seed's names only", students.module())]
    variants.append(("without update", students.module(update=False)))
    variants += [(mistake, students.module(mistake)) for mistake in students.MISTAKES]
    for label, module in variants:
        graded = grade(module, rubric=args.rubric, hidden_seed=args.hidden_seed, name=label)
        short = graded.first_error().splitlines()[0][:100] if graded.first_error() else ""
        print(f"{label:28s} {graded.score:6.2f} of {graded.max_score:g}  {short}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
