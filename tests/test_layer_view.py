"""The layer view: each catalogued backward-pass mistake is placed in a local derivative, the
chaining of the deltas, the parameter gradients, or the combining of the samples.

The expected place comes from the catalog itself: the step of ``Correct`` a mistake replaces
(``act_grad`` and ``output_delta`` are local derivatives, ``hidden_delta`` the chaining,
``weight_grad``, ``bias_grad`` and ``finish`` the parameter gradients), and from what the
mistake does on each problem (nothing there: "none"; nothing at any single sample: "batch").
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.bugs import CATALOG, CORRECT
from reference.bugs.detect import detection_problems
from reference.judging.layer_view import MAX_SAMPLES, VERDICTS, layer_view

PLACES = {
    "act_grad": "local",
    "output_delta": "local",
    "hidden_delta": "chaining",
    "weight_grad": "parameters",
    "bias_grad": "parameters",
    "finish": "parameters",
}
"""The step of ``Correct`` a mistake replaces, and where the view must place it."""


def _backward_mistakes() -> list[str]:
    """The mistakes that replace backward steps only, all of them in one place."""
    names = []
    for name, bug in CATALOG.items():
        replaced = {m for m in vars(type(bug)) if callable(getattr(type(bug), m))} - {"__init__"}
        replaced -= {m for m in replaced if m.startswith("__")}
        places = {PLACES.get(m) for m in replaced}
        if replaced and None not in places and len(places) == 1:
            names.append(name)
    return names


def _same(a, b) -> bool:
    flat = [np.concatenate([np.ravel(g) for pair in x for g in pair]) for x in (a, b)]
    return flat[0].shape == flat[1].shape and np.allclose(*flat, rtol=1e-12, atol=0)


def _expected(bug, problem) -> str | None:
    """Where the view must place ``bug`` on ``problem``; None where the mistake breaks the
    shapes (the network check reports it as such)."""
    if problem.l2:
        return "unavailable"  # the steps are read without a penalty
    kw = problem.kwargs()
    try:
        mine = bug.gradients(problem.params, problem.X, problem.Y, **kw)
    except ValueError:  # a product of the wrong shapes
        return None
    if any(np.shape(g) != np.shape(p) for pair, ps in zip(mine, problem.params)
           for g, p in zip(pair, ps)):  # fmt: skip
        return None
    if _same(mine, CORRECT.gradients(problem.params, problem.X, problem.Y, **kw)):
        return "none"
    columns = range(min(MAX_SAMPLES, problem.X.shape[1]))
    if all(
        _same(
            bug.gradients(problem.params, problem.X[:, [j]], problem.Y[:, [j]], **kw),
            CORRECT.gradients(problem.params, problem.X[:, [j]], problem.Y[:, [j]], **kw),
        )
        for j in columns
    ):
        return "batch"
    replaced = {m for m in vars(type(bug)) if m in PLACES}
    return PLACES[replaced.pop()]


MISTAKES = _backward_mistakes()
PROBLEMS = detection_problems()


def test_the_table_holds_every_kind_of_place():
    """The catalog gives the view something to tell apart in every place."""
    places = {PLACES[m] for name in MISTAKES for m in vars(type(CATALOG[name])) if m in PLACES}
    assert places == set(PLACES.values())


@pytest.mark.parametrize("index", range(len(PROBLEMS)), ids=[p.name for p in PROBLEMS])
@pytest.mark.parametrize("name", MISTAKES)
def test_each_backward_mistake_is_placed(name, index):
    bug, problem = CATALOG[name], PROBLEMS[index]
    expected = _expected(bug, problem)
    if expected is None:
        pytest.skip("the mistake breaks the shapes here")
    view = layer_view(bug, problem.params, problem.X, problem.Y, **problem.kwargs())
    if expected == "chaining" and _zero_hidden_delta(bug, problem):
        # A delta that is zero (up to rounding) at every sample (the upstream of a two-unit softmax sums
        # to zero, and the mistake sums it): no change of W^{l+1} moves it, so the view
        # cannot tell a g' of zeros from the chaining; either answer places it in that step.
        assert view.verdict in ("chaining", "local"), str(view)
    else:
        assert view.verdict == expected, str(view)
    if expected != "unavailable":
        assert "the mistake is in" in str(view)
    if expected in ("local", "chaining", "parameters"):
        assert any(not s.ok for s in view.steps), str(view)


def _zero_hidden_delta(bug, problem) -> bool:
    """Whether some hidden layer's db (its delta, at one sample) is zero up to rounding
    (1e-12 of the correct one's norm) at every sample tried while the correct one's is not."""
    kw = problem.kwargs()
    for j in range(min(MAX_SAMPLES, problem.X.shape[1])):
        X, Y = problem.X[:, [j]], problem.Y[:, [j]]
        mine = bug.gradients(problem.params, X, Y, **kw)
        right = CORRECT.gradients(problem.params, X, Y, **kw)
        if not any(
            np.linalg.norm(m[1]) <= 1e-12 * np.linalg.norm(r[1]) and np.any(r[1])
            for m, r in zip(mine[:-1], right[:-1])
        ):
            return False
    return True


@pytest.mark.parametrize("index", range(len(PROBLEMS)), ids=[p.name for p in PROBLEMS])
def test_the_correct_implementation_has_every_step_right(index):
    problem = PROBLEMS[index]
    view = layer_view(CORRECT, problem.params, problem.X, problem.Y, **problem.kwargs())
    if problem.l2:  # read without a penalty: not available, and says why
        assert view.verdict == "unavailable" and "L2 penalty" in view.explanation, str(view)
        return
    assert view.verdict == "none" and all(s.ok for s in view.steps), str(view)
    assert VERDICTS["none"].split(":")[0] in view.explanation


def test_a_given_sample_is_the_one_viewed_and_bad_ones_are_refused():
    problem = PROBLEMS[0]
    kw = problem.kwargs()
    view = layer_view(CATALOG["sign_flipped"], problem.params, problem.X, problem.Y, **kw,
                      sample=1)  # fmt: skip
    assert view.sample == 1 and view.verdict == "local"
    with pytest.raises(ValueError, match="sample must be in"):
        layer_view(CORRECT, problem.params, problem.X, problem.Y, **kw, sample=99)
    with pytest.raises(TypeError, match="sample must be an int"):
        layer_view(CORRECT, problem.params, problem.X, problem.Y, **kw, sample=True)
