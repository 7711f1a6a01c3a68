"""The JAX model's shared programs: small networks of every depth up to a bucket, every
activation and every cost run in one compiled program that chooses them at run time, and give
what a program compiled for the one combination gives (reference/oracles/jax_model.py)."""

import inspect
import itertools

import numpy as np
import pytest

from reference.inputs.problems import (
    compatible_costs,
    needs_one_hot,
    one_hot_labels,
    output_only,
    random_problem,
    table_activations,
    with_relu_margin,
)
from reference.oracles import jax_model as jm

TINY = np.finfo(np.float64).tiny
SAME = 1e-13
"""Norm-wise relative agreement of two float64 programs of the same formulas: rounding."""


def combinations() -> list[tuple[str, str]]:
    """Every (output activation, cost) the tables allow."""
    return [(out, cost) for out in table_activations() for cost in compatible_costs(out)]


def network(seed: int, out: str, cost: str, depth: int):
    """A small network (widths and samples up to 6: the padded path) ending in ``out``, its
    hidden layers taking the table's elementwise activations in turn, labels fit for ``cost``."""
    rng = np.random.default_rng(seed)
    hidden = [a for a in table_activations() if not output_only(a)]
    acts = [hidden[(seed + l) % len(hidden)] for l in range(depth - 1)] + [out]
    sizes = [int(n) for n in rng.integers(1, 7, depth + 1)]
    if output_only(out):
        sizes[-1] = max(sizes[-1], 2)
    m = int(rng.integers(2, 7))
    params = [
        (rng.normal(0, 1 / np.sqrt(p), (n, p)), rng.normal(0, 0.5, (n, 1)))
        for p, n in itertools.pairwise(sizes)
    ]
    X = rng.normal(size=(sizes[0], m))
    if needs_one_hot(out, cost):
        Y = one_hot_labels(rng, sizes[-1], m)
    elif cost == "bce":
        Y = rng.uniform(0, 1, (sizes[-1], m))
    else:
        Y = rng.normal(size=(sizes[-1], m))
    params = with_relu_margin(params, X, acts, margin=1e-3)
    return params, X, Y, {"activations": acts, "cost": cost}


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), TINY))


@pytest.mark.parametrize(("k", "out", "cost"), [(k, *c) for k, c in enumerate(combinations())])
def test_the_shared_program_gives_what_one_for_the_combination_gives(k, out, cost, monkeypatch):
    """Every output activation and cost of the tables, chosen at run time in the shared
    program (softmax's padded units at their fill, the layers past the depth passing the
    output through), against the program compiled for that network alone (no padding)."""
    depth = 1 + k % (2 * jm._PAD_MIN_DEPTH)  # the depths of two buckets, in turn
    params, X, Y, kwargs = network(k, out, cost, depth)
    shared = jm.jax_model(params, X, Y, **kwargs)
    monkeypatch.setattr(jm, "_PAD_MAX_WIDTH", 0)  # every network takes the per-combination path
    alone = jm.jax_model(params, X, Y, **kwargs)
    assert np.isfinite(shared.loss)
    assert shared.loss == pytest.approx(alone.loss, rel=SAME)
    for got, want in zip(jm._arrays(shared.grads), jm._arrays(alone.grads)):
        assert got.shape == want.shape
        assert rel(got, want) <= SAME
    for got, want in zip(jm._arrays(shared.rounding), jm._arrays(alone.rounding)):
        assert rel(got, want) <= 1e-12
    for got, want in zip(shared.near_kink, alone.near_kink):
        np.testing.assert_array_equal(got, want)


def test_one_program_serves_every_depth_activation_and_cost_of_the_random_networks():
    """The number of programs does not grow with the tables: every combination at every depth
    random networks are drawn at (``random_problem``'s default, the default run's), widths
    and samples within one padded size, compiles one program."""
    low, high = inspect.signature(random_problem).parameters["depth"].default
    jm._padded_fn.cache_clear()
    seeds = itertools.count()
    for (out, cost), depth in itertools.product(combinations(), range(low, high + 1)):
        params, X, Y, kwargs = network(next(seeds), out, cost, depth)
        jm.jax_model(params, X, Y, **kwargs)
    assert jm._padded_fn.cache_info().currsize == 1
    table, branches = tuple(jm.JAX_ACTIVATIONS), jm._cost_branches(tuple(jm.JAX_COSTS))
    fn = jm._padded_fn(jm._bucket(high, jm._PAD_MIN_DEPTH), table, branches, True)
    assert fn._cache_size() == 1  # traced and compiled once: one set of shapes


def test_every_cost_and_output_activation_has_its_own_branch():
    """Each (cost, output activation) of the tables selects the terms its cost's twin gives
    for that output: the fused ones from the logits where the twin has them."""
    branches = jm._cost_branches(tuple(jm.JAX_COSTS))
    assert len(set(branches)) == len(branches)
    for out, cost in combinations():
        chosen = branches[jm._cost_index(branches, cost, out)]
        fused = out in jm.JAX_COSTS[cost].from_logits
        assert chosen == (cost, out if fused else None)
