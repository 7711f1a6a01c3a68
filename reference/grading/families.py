"""Network families: how grading weighs networks, and how its feedback names them.

A rubric grades many networks, and most are copies of one shape (the seed's 2-3-2-1 network
under every activation/cost combination). Counting networks would let that shape decide a
grade: a mistake on every network with a sigmoid output and bce would cost only the share
of networks that happen to use bce. So an item's score is a weighted fraction, the weights
nested by family:

1. the output activation and the cost (``sigmoid``/``bce``, ``tanh``/``mse``, ...): each
   family present gets an equal share;
2. within it, the depth (layers);
3. within that, the hidden layers' activations (the set of them, ``relu+tanh``);
4. within that, networks with and without an L2 penalty;
5. within that, each network equally.

:func:`weights` gives each network its weight (they sum to 1); :func:`describe` says which
families a set of failing networks covers ("every network with a sigmoid output and bce").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol


class Network(Protocol):
    """What a family is read from (:class:`~reference.inputs.problems.Problem` has it)."""

    activations: Sequence[str]
    cost: str
    l2: float


def family(p: Network) -> tuple[tuple[str, str], int, str, bool]:
    """``((output activation, cost), depth, hidden activations, penalised)``, outermost first."""
    acts = list(p.activations)
    hidden = "+".join(sorted(set(acts[:-1])))
    return (acts[-1], p.cost), len(acts), hidden, bool(getattr(p, "l2", 0.0))


def weights(networks: Sequence[Network]) -> list[float]:
    """Each network's weight in an item's score: equal shares per family at each level of
    :func:`family`, then per network; they sum to 1 (an empty list gives [])."""
    keys = [family(p) for p in networks]
    children: dict[tuple, set] = {}  # each family's families one level down
    for key in keys:
        for level in range(len(key)):
            children.setdefault(key[:level], set()).add(key[: level + 1])
    copies = Counter(keys)
    out = []
    for key in keys:
        w = 1.0 / copies[key]
        for level in range(len(key)):
            w /= len(children[key[:level]])
        out.append(w)
    return out


def weighted_fraction(networks: Sequence[Network], held: Sequence[bool]) -> float:
    """The weight of the networks on which something holds (0 with no networks)."""
    return sum(w for w, ok in zip(weights(networks), held) if ok)


def _article(name: str) -> str:
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _top(key: tuple[str, str]) -> str:
    out, cost = key
    return f"{_article(out)} output and {cost}"


def _hidden(hidden: str) -> str:
    if not hidden:
        return "no hidden layer"
    names = hidden.split("+")
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} hidden layers" if len(names) == 1 else f"hidden layers of {listed}"


def describe(networks: Sequence[Network], failing: Sequence[bool]) -> list[str]:
    """Phrases naming where something fails, one per output/cost family it fails in, the
    largest first: "every network with a sigmoid output and bce (all 10)" where it fails on
    all of a family, "every network with a tanh output and mse and relu hidden layers
    (all 4)" where it fails on exactly some hidden-activation families of one, else "3 of 12
    networks with a relu output and mse"; "every network" where it fails on all."""
    keys = [family(p) for p in networks]
    if keys and all(failing):
        return ["every network"]
    deep = len({k[1] for k in keys}) > 1
    phrases: list[tuple[int, str]] = []
    for top in dict.fromkeys(k[0] for k in keys):
        mine = [(k, bad) for k, bad in zip(keys, failing) if k[0] == top]
        bad = sum(b for _, b in mine)
        if bad:
            phrases.append((bad, _family_phrase(top, mine, bad, deep)))
    phrases.sort(key=lambda t: -t[0])
    return [text for _, text in phrases]


def _family_phrase(
    top: tuple[str, str],
    mine: list[tuple[tuple[tuple[str, str], int, str, bool], bool]],
    bad: int,
    deep: bool,
) -> str:
    """Where something fails in one output/cost family (``mine``: its networks' keys and
    whether each fails; ``bad`` of them do): all of it, exactly some of its depth and
    hidden-activation families (named with their depth when ``deep``: the networks differ
    in depth), or a count."""
    if bad == len(mine):
        return f"every network with {_top(top)} (all {bad})"
    subs: dict[tuple[int, str], list[bool]] = {}
    for k, b in mine:
        subs.setdefault((k[1], k[2]), []).append(b)
    whole = [s for s, bs in subs.items() if all(bs)]
    if whole and sum(len(subs[s]) for s in whole) == bad and bad > 1:
        parts = [(f"{d} layers deep with " if deep else "") + _hidden(h) for d, h in whole]
        return f"every network with {_top(top)} and {' or '.join(parts)} (all {bad})"
    return f"{bad} of {len(mine)} networks with {_top(top)}"
