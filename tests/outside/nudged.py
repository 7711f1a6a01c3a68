"""A fork's intended numerical change: correct gradients, every one scaled by 1 + 1e-7 (a
changed rounding, or a regularisation term too small to matter), for golden-file tests."""

from __future__ import annotations

from reference.bugs.base import Correct

NUDGE = 1e-7
"""The relative change of every gradient array: ||(1 + NUDGE) g - g|| / ||g|| = NUDGE."""


class Nudged(Correct):
    """:class:`~reference.bugs.base.Correct` with its gradients times ``1 + NUDGE``."""

    name = "nudged"

    def finish(self, grads, params, activations):
        return [((1 + NUDGE) * dW, (1 + NUDGE) * db) for dW, db in grads]


NUDGED = Nudged()
