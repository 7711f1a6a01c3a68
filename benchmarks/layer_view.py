"""What the layer view adds to a ``backprop-check`` run on broken code.

    python benchmarks/layer_view.py                       # four catalogued mistakes
    python benchmarks/layer_view.py delta_skips_W ...     # these (names in reference.bugs)

For each mistake, one worker does what ``backprop-check`` does with it: the default run's
networks (``run_checks``), then the layer views (``attach_layer_views``), both timed in the
same run, side by side. The load average is printed with them (a shared machine).
"""

from __future__ import annotations

import os
import sys
import time

DEFAULT = ("delta_skips_W", "dW2_times_2", "sign_flipped", "missing_1_over_m")
"""Mistakes the view places in the chaining, the parameter gradients, a local derivative and
the combining of the samples, on the seed network."""


def main(names: list[str]) -> None:
    from reference.boundary.isolation import Worker
    from reference.inputs.networks import default_problems
    from reference.run.layer_views import attach_layer_views, wanted
    from reference.run.session import Progress, run_checks

    problems = default_problems(0, 2)
    print(f"load average {os.getloadavg()[0]:.1f}; {len(problems)} networks each")
    for name in names:
        with Worker(f"reference.bugs:{name}") as worker:
            start = time.perf_counter()
            outcome = run_checks(worker, problems, Progress(len(problems), False))
            checked = time.perf_counter() - start
            start = time.perf_counter()
            attach_layer_views(worker, outcome)
            viewed = time.perf_counter() - start
        n = len(wanted(outcome.reports))
        print(f"{name}: networks {checked:.2f} s, {n} layer views {viewed:.3f} s "
              f"({100 * viewed / checked:.1f} % more)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":  # the worker is spawned: it imports this module again
    main(sys.argv[1:] or list(DEFAULT))
