"""Kinks judged, not excused: the entries of a gradient that sit on a kink of ``phi``.

At an entry on a kink the gradient must lie between the one-sided slopes (every subgradient
does: :func:`outside_slopes`), and entries on kinks moved together must add up to a rate
between the one-sided rates along them (:func:`kinks_together`: the tie of a maximum). Both
hold only where ``phi`` is convex (or concave) in the entries concerned, which
:func:`kink_groups` decides from the differences themselves
(:mod:`reference.oracles.function_fd`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..oracles import function_fd
from ..tolerances import SUBGRADIENT_SAFETY as KINK_SAFETY
from ..tolerances import SUM_ROUNDING


@dataclass
class Together:
    """Entries on a kink whose sum, moved together, falls outside the rates along them."""

    masks: list[np.ndarray]
    """Per argument, the entries moved."""
    diagnosis: str


@dataclass
class KinkGroup:
    """The entries on a kink of one kind: convex (the slope from the right above the slope
    from the left: a maximum, a relu, a hinge under a positive upstream) or concave."""

    masks: list[np.ndarray]
    """Per argument, the entries in the group."""
    judged: bool
    """Whether ``phi`` bends only the group's way along every direction tried in them: only
    then are its entries held to their slopes, alone and together."""


DIRECTIONS = 8
"""How many random directions in a cluster of coupled kinks are tried for a bend of the other
kind."""


def kink_groups(
    phi: Callable[..., Any], xs: list[np.ndarray], fd: function_fd.FunctionFD, batched: bool
) -> list[KinkGroup]:
    """The convex and the concave kinks at the point, each judged or not.

    Where ``phi`` is convex in a set of entries, every subgradient lies between each entry's
    one-sided slopes, and the entries' sum between the one-sided rates along them; likewise
    where it is concave; and an entry whose kink no other entry's moves (a relu's, an
    abs's) is a function of that entry alone there. So the entries on a kink are split into
    clusters of coupled kinks (:func:`reference.oracles.function_fd.coupled_pairs`: tied
    maxima, a hinge's classes) and a cluster is judged where all its kinks are of one kind
    and ``phi`` bends only that way along random directions in its entries
    (:func:`reference.oracles.function_fd.kink_curvature`). A sum of convex and concave
    kinks that share entries (overlapping max-pooling windows under an upstream gradient of
    both signs, one entry tied in several windows) has subgradients outside those
    intervals: there, no verdict. Above COUPLED_MAX entries on kinks, none is judged.
    """
    if fd.slopes is None:
        return []
    entries = [(k, int(i)) for k in range(len(xs)) for i in np.flatnonzero(fd.on_kink(k).ravel())]
    if not entries:
        return []
    pairs = function_fd.coupled_pairs(phi, xs, entries, fd.roundoff, batched=batched)
    kinds = np.array([np.sign(fd.slopes[k][0].flat[i] - fd.slopes[k][2].flat[i])
                      for k, i in entries])  # fmt: skip
    judged = _judged_entries(phi, xs, fd, batched, entries, pairs, kinds)
    return _by_kind(xs, entries, kinds, judged)


def _clusters(count: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """The entries 0..count-1 joined by ``pairs`` into clusters (union-find), each in order."""
    parent = list(range(count))

    def root(e: int) -> int:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for a, b in pairs:
        parent[root(a)] = root(b)
    clusters: dict[int, list[int]] = {}
    for e in range(count):
        clusters.setdefault(root(e), []).append(e)
    return list(clusters.values())


def _judged_entries(
    phi: Callable[..., Any],
    xs: list[np.ndarray],
    fd: function_fd.FunctionFD,
    batched: bool,
    entries: list[tuple[int, int]],
    pairs: list[tuple[int, int]] | None,
    kinds: np.ndarray,
) -> np.ndarray:
    """Per entry, whether its cluster holds kinks of one kind only and ``phi`` bends only
    that way in it (:func:`_bends_one_way`); none where the pairs were not measured."""
    judged = np.zeros(len(entries), dtype=bool)
    rng = np.random.default_rng(len(entries))
    for members in _clusters(len(entries), pairs) if pairs is not None else []:
        kind = kinds[members]
        if not (np.all(kind == kind[0]) and kind[0] != 0):
            continue  # kinks of both kinds coupled: neither convex nor concave
        inside = [(a, b) for a, b in pairs if a in members]
        if len(members) > 1 and not _bends_one_way(phi, xs, entries, members, inside, kind[0],
                                                   fd, batched, rng):  # fmt: skip
            continue
        judged[members] = True
    return judged


def _by_kind(
    xs: list[np.ndarray], entries: list[tuple[int, int]], kinds: np.ndarray, judged: np.ndarray
) -> list[KinkGroup]:
    """The entries as groups: convex judged, convex not, concave judged, concave not (the
    empty ones left out)."""
    groups = []
    for sign in (1.0, -1.0):
        masks = [np.zeros(x.shape, dtype=bool) for x in xs]
        unjudged = [np.zeros(x.shape, dtype=bool) for x in xs]
        for e, (k, i) in enumerate(entries):
            if kinds[e] == sign:
                (masks if judged[e] else unjudged)[k].flat[i] = True
        if any(mk.any() for mk in masks):
            groups.append(KinkGroup(masks, True))
        if any(mk.any() for mk in unjudged):
            groups.append(KinkGroup(unjudged, False))
    return groups


SPREAD = 16.0
"""For each coupled pair of a cluster, its kinks are looked at two points beside the given
one too: the pair kept as it is (a tie kept a tie, so its kink stays at the point) and the
cluster's other entries moved below it, then above it, by SPREAD steps or more, so that the
pair's coupling bends alone. A sum of a large convex and a small concave kink can bend one
way along every line through the point itself, and the other way at such a point."""


def _one_hot(xs: list[np.ndarray], k: int, i: int, value: float = 1.0) -> list[np.ndarray]:
    d = [np.zeros(x.shape) for x in xs]
    d[k].flat[i] = value
    return d


def _bends_one_way(
    phi: Callable[..., Any],
    xs: list[np.ndarray],
    entries: list[tuple[int, int]],
    members: list[int],
    pairs: list[tuple[int, int]],
    sign: float,
    fd: function_fd.FunctionFD,
    batched: bool,
    rng: np.random.Generator,
) -> bool:
    """Whether ``phi`` bends only the ``sign`` way (1 convex, -1 concave) in a cluster's
    entries: along random directions in them at the point, and, for each coupled pair, along
    each of the two at the points beside it where that pair's coupling bends alone
    (:data:`SPREAD`)."""
    largest = max(abs(float(xs[k].flat[i])) for k, i in (entries[e] for e in members))
    t = float(function_fd.steps(np.array([largest]))[0])
    bases: list[tuple[list[np.ndarray], list[list[np.ndarray]]]] = []
    directions = []
    for _ in range(DIRECTIONS):
        d = [np.zeros(x.shape) for x in xs]
        for e in members:
            k, i = entries[e]
            d[k].flat[i] = rng.standard_normal()
        directions.append(d)
    bases.append((xs, directions))
    for a, b in pairs:
        for side in (-1.0, 1.0):  # the others below the pair (a maximum's ties), then above
            y = [x.copy() for x in xs]
            for e in members:
                if e not in (a, b):
                    k, i = entries[e]
                    y[k].flat[i] += side * SPREAD * t * (1.0 + abs(rng.standard_normal()))
            bases.append((y, [_one_hot(xs, *entries[a]), _one_hot(xs, *entries[b])]))
    for base, ds in bases:
        kappa, noise = function_fd.kink_curvature(phi, base, ds, fd.roundoff, batched=batched)
        with np.errstate(invalid="ignore"):
            if not np.all(sign * kappa >= -noise):
                return False
    return True


def kinks_together(
    phi: Callable[..., Any],
    xs: list[np.ndarray],
    grads: list[np.ndarray],
    fd: function_fd.FunctionFD,
    batched: bool,
    groups: list[KinkGroup],
) -> list[Together]:
    """The entries of each judged group, moved together: the gradient's entries there must
    add up to a rate between the one-sided rates of ``phi`` along that direction.

    Each entry alone is held to its own one-sided slopes
    (:func:`reference.judging.function_verdict.compare`); a max-pooling backward pass that
    hands the upstream gradient to every tied maximum passes that, entry by entry, and is
    wrong in sum: moving every tied entry moves the maximum at the rate of one. For a
    function convex (or concave) in the entries moved (:func:`kink_groups`), every
    subgradient satisfies g . d <= the rate from the right along d and >= the rate from
    the left.
    """
    if any(g.shape != x.shape for g, x in zip(grads, xs)):
        return []
    found = []
    for group in groups:
        masks = [mk & np.isfinite(g) for mk, g in zip(group.masks, grads)]
        count = int(sum(mk.sum() for mk in masks))
        if not group.judged or count < 2:  # one entry alone is judged by its own slopes
            continue
        direction = [mk.astype(np.float64) for mk in masks]
        estimate, error, method, slopes = function_fd.along(
            phi, xs, direction, fd.roundoff, batched=batched
        )
        if np.isfinite(slopes).all():  # a kink along them: any rate between the two sides
            # (one side judged to cross another kink still bounds it: wider, never a false
            # alarm; each entry moved sits on a kink, so a kink along them is the usual case)
            low, high = sorted((slopes[0], slopes[2]))
            allowed = KINK_SAFETY * (slopes[1] + slopes[3])
        elif method == function_fd.CENTRAL:
            low = high = estimate
            allowed = KINK_SAFETY * error
        else:
            continue
        if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(allowed)):
            continue  # between two kinks along it, or f not finite: nothing to hold it to
        parts = np.concatenate([g[mk] for g, mk in zip(grads, masks)])
        yours = float(parts.sum())
        allowed += SUM_ROUNDING * float(np.abs(parts).sum())
        if low - allowed <= yours <= high + allowed:
            continue
        found.append(Together(masks, _together_diagnosis(grads, fd, masks, yours, low, high)))
    return found


def _together_diagnosis(
    grads: list[np.ndarray],
    fd: function_fd.FunctionFD,
    masks: list[np.ndarray],
    yours: float,
    low: float,
    high: float,
) -> str:
    """What a sum outside the rates along the kinked entries looks like."""
    count = int(sum(mk.sum() for mk in masks))
    rate = (
        f"{low:.6g}"
        if high - low <= 1e-9 * max(abs(low), abs(high), 1e-300)
        else (f"between {low:.6g} and {high:.6g}")
    )
    full = True
    for k, (g, mk) in enumerate(zip(grads, masks)):
        right, e_right, left, e_left = (s[mk] for s in fd.slopes[k])
        steep = np.where(np.abs(right) >= np.abs(left), right, left)
        full &= bool(np.all(np.abs(g[mk] - steep) <= KINK_SAFETY * (e_right + e_left)))
    facts = (
        f"the {count} entries on a kink, moved together, change f at a rate {rate}; your "
        f"gradient's entries there add up to {yours:.6g}"
    )
    if full and abs(yours) > max(abs(low), abs(high)):
        return (
            f"every tied maximum got the full gradient: {facts}. At a tie of a maximum "
            "(max-pooling, a window of zeros after a relu) the gradient goes to one tied entry "
            "or is shared among them, never to each in full"
        )
    return (
        f"{facts}: each entry is a valid one-sided slope alone, but together they are not a "
        "subgradient"
    )


def outside_slopes(
    a: np.ndarray, slopes: np.ndarray | None, kinked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where ``a`` lies outside [min, max] of the one-sided slopes (widened by their error
    bounds) at the entries on a kink, and how far beyond (0 elsewhere)."""
    beyond = np.zeros(a.shape)
    if slopes is None or not kinked.any():
        return np.zeros(a.shape, dtype=bool), beyond
    right, e_right, left, e_left = (s[kinked] for s in slopes)
    low, high = np.minimum(right, left), np.maximum(right, left)
    allowed = KINK_SAFETY * (e_right + e_left) + SUM_ROUNDING * np.abs(a[kinked])
    g = a[kinked]
    with np.errstate(invalid="ignore"):
        distance = np.maximum(low - g, g - high)
        out = ~(distance <= allowed)  # NaN in the gradient is outside too
    beyond[kinked] = np.where(out, np.where(np.isfinite(distance), distance, np.inf), 0.0)
    return beyond > 0, beyond


def outside_diagnosis(
    name: str, a: np.ndarray, slopes: np.ndarray, outside: np.ndarray, on_kink: int
) -> str:
    """A sentence on entries of d``name`` outside the interval of their one-sided slopes."""
    right, left = slopes[0][outside], slopes[2][outside]
    count = int(outside.sum())
    text = (
        f"{count} of the {on_kink} entries of d{name} on a kink lie outside the interval "
        "between the slopes from the left and from the right, where every subgradient lies"
    )
    g = a[outside]
    if np.all(g == 0):
        return text + ": yours are 0 there, and f moves on both sides (a term left out?)"
    steep = np.where(np.abs(right) >= np.abs(left), right, left)
    ratio = g / np.where(steep == 0, np.nan, steep)
    with np.errstate(invalid="ignore"):
        if np.all(np.abs(ratio + 1) <= 1e-6):
            return text + ": yours have the opposite sign (the sign is flipped)"
        c = float(np.nanmedian(ratio))
        if np.isfinite(c) and np.all(np.abs(ratio - c) <= 1e-6 * abs(c)):
            return text + f": yours are {c:.6g} times the steeper slope"
    return text
