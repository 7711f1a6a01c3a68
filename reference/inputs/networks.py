"""The networks of a ``backprop-check`` run: the seed's combinations (inside a scope), then
seeded random ones."""

from __future__ import annotations

import numpy as np

from ..inputs import combinations
from ..inputs.problems import Problem, random_problem, seed_problem
from ..inputs.scope import (
    Scope,
    random_problem_in,
)


def default_problems(seed: int, networks: int, scope: Scope | None = None) -> list[Problem]:
    """The activation/cost combinations on the seed's network (every one, or a pairwise
    covering set once there are many: :mod:`reference.inputs.combinations`), then ``networks``
    random ones; with a ``scope``, only the combinations inside it, and random networks drawn
    inside it."""
    from ..registry import activation_names

    names = sorted(activation_names())

    def keep(acts: tuple[str, str, str], cost: str) -> bool:
        return scope is None or scope.admits(seed_problem(acts, cost, seed=seed))

    out = [
        seed_problem(acts, cost, seed=seed)
        for acts, cost in combinations.seed_combinations(names, keep)
    ]
    rng = np.random.default_rng(seed)
    for k in range(networks):
        name = f"random #{k + 1}"
        if scope is None:
            out.append(random_problem(rng, depth=(1, 4), width=(1, 6), samples=(2, 6), name=name))
        else:
            out.append(random_problem_in(rng, scope, name=name))
    return out


def seed_combinations() -> int:
    """How many seed networks the default run has before a scope filters them."""
    return len(default_problems(0, 0))


def undrawn(seed: int, scope: Scope) -> int:
    """How many of the default run's seed networks (before a scope filters them) ``scope``
    leaves out: the JUnit file's skipped "not in scope" suites, one each. (A scoped run
    covers the pairs of its own names, so it may check seed networks the unscoped set does
    not hold; those are not counted here.)"""
    return sum(not scope.admits(p) for p in default_problems(seed, 0))
