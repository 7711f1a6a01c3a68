"""The default run's networks with an L2 penalty, for an implementation that declares it.

``SUPPORTS = {"penalties": ["l2"]}`` (or ``--penalties l2``) adds :data:`L2_VALUES`'s
networks to ``backprop-check``'s run: random networks inside the rest of the declared scope,
each with its lambda. Without the declaration there are none, and nothing is counted as out
of scope: the penalty is an extra, not a part of the seed's protocol.
"""

from __future__ import annotations

import numpy as np

from .problems import Problem
from .scope import Scope, random_problem_in

L2_VALUES = (0.1, 1.0, 5.0)
"""lambda of each penalised network of the default run: weak, moderate, and strong enough
that the penalty's gradient outweighs the cost's."""

_SEED_OFFSET = 0x12
"""Added to ``--seed`` so that these networks are not the default run's random ones again."""


def penalty_problems(seed: int, scope: Scope) -> list[Problem]:
    """One random network inside ``scope`` per value of :data:`L2_VALUES`, with that lambda
    (``Problem.l2``); none when ``scope`` does not declare the l2 penalty. Named
    ``random l2 #k``, so the run gives them the non-gradient checks too."""
    if not scope.admits_penalty("l2"):
        return []
    rng = np.random.default_rng(seed + _SEED_OFFSET)
    out = []
    for k, lam in enumerate(L2_VALUES, start=1):
        p = random_problem_in(rng, scope, name=f"random l2 #{k}")
        p.l2 = lam
        out.append(p)
    return out
