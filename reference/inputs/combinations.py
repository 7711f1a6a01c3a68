"""Which activation/cost combinations the seed's network is checked with by default.

The seed's network has two hidden layers and an output layer: a combination is a hidden
activation for each of the two hidden layers and an (output activation, cost) pair the
cost allows (bce needs a sigmoid, cce a softmax; an output-only activation such as softmax
is never hidden). While every combination makes at most :data:`FULL_PRODUCT_LIMIT`
networks they are all checked; beyond it, a pairwise covering set: every pair of choices
(first and second hidden activation, second hidden activation and output, first hidden
activation and output) appears in at least one network, which is what a mistake in one
activation's derivative, or in how two layers' deltas chain, needs to show, after every
combination of the seed notes' own activations (:data:`SEED_TABLE`), so that code that
computes only those, with no declared scope, is checked on as many networks as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from .problems import compatible_costs, output_only

FULL_PRODUCT_LIMIT = 64
"""The most networks the full product may have before a pairwise covering set replaces it."""

Combination = tuple[tuple[str, str, str], str]
"""((hidden activation 1, hidden activation 2, output activation), cost)."""

SEEDS_OWN: Combination = (("tanh", "tanh", "sigmoid"), "bce")
"""The seed notes' own network, always checked first."""

SEED_TABLE = ("sigmoid", "tanh", "relu")
"""The seed notes' activations: every combination of them (with mse and bce) comes first,
as before the tables grew, so that code without the newer names (and no declared scope) is
still checked on all of them."""


def seed_combinations(
    names: Sequence[str], keep: Callable[[tuple[str, str, str], str], bool] | None = None
) -> list[Combination]:
    """The combinations of the activations ``names`` (and the costs each output allows) that
    the default run checks on the seed's network, in a fixed order (see the module's doc), the
    seed notes' own first. ``keep(activations, cost)``: whether a combination is in scope;
    the covering set is built from those kept, so a scope loses no pair it admits."""
    hidden, heads, full = _candidates(names, keep)
    if len(full) <= FULL_PRODUCT_LIMIT or not hidden:
        return _seeds_own_first(full, full)
    admitted = set(full)
    out = [c for c in full if set(c[0]) <= set(SEED_TABLE)]
    for h1, h2, head in _covering_rows(len(hidden), len(heads)):
        out_act, cost = heads[head]
        combination = ((hidden[h1], hidden[h2], out_act), cost)
        if combination in admitted:
            out.append(combination)
    return _seeds_own_first(list(dict.fromkeys(out)), full)


def _candidates(
    names: Sequence[str], keep: Callable[[tuple[str, str, str], str], bool] | None
) -> tuple[list[str], list[tuple[str, str]], list[Combination]]:
    """The hidden activations, the (output activation, cost) heads and every combination of
    them, each limited to what ``keep`` admits."""
    hidden = [n for n in names if not output_only(n)]
    heads = [(out, cost) for out in names for cost in compatible_costs(out)]
    full = [((h1, h2, out), cost) for h1 in hidden for h2 in hidden for out, cost in heads]
    if keep is not None:
        full = [(acts, cost) for acts, cost in full if keep(acts, cost)]
        hidden = [h for h in hidden if any(h in acts[:2] for acts, _ in full)]
        heads = [head for head in heads if any((acts[2], cost) == head for acts, cost in full)]
    return hidden, heads, full


def _covering_rows(n: int, o: int) -> list[tuple[int, int, int]]:
    """(first hidden, second hidden, head) indices, once each, that cover every pair of the
    three among ``n`` hidden activations and ``o`` heads."""
    rows: list[tuple[int, int, int]] = [
        (j % n, i, (i + j) % o) for i in range(n) for j in range(max(n, o))
    ]
    covered = {(h1, head) for h1, _, head in rows}
    rows += [(h1, 0, head) for h1, head in itertools.product(range(n), range(o))
             if (h1, head) not in covered]  # fmt: skip
    return list(dict.fromkeys(rows))


def _seeds_own_first(chosen: list[Combination], full: list[Combination]) -> list[Combination]:
    rest = [c for c in chosen if c != SEEDS_OWN]
    return [SEEDS_OWN, *rest] if SEEDS_OWN in full else rest
