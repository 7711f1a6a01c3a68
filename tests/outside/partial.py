"""A correct implementation that supports mse only: bce raises NotImplementedError, and it
declares nothing, so the harness learns its scope network by network."""

from __future__ import annotations

from reference.bugs.base import Correct


class MseOnly(Correct):
    """:class:`~reference.bugs.base.Correct` with ``cost="bce"`` refused."""

    name = "mse_only"

    def loss(self, params, X, Y, *, activations, cost):
        if cost != "mse":
            raise NotImplementedError(f"cost {cost!r}: only mse")
        return super().loss(params, X, Y, activations=activations, cost=cost)

    def gradients(self, params, X, Y, *, activations, cost):
        if cost != "mse":
            raise NotImplementedError(f"cost {cost!r}: only mse")
        return super().gradients(params, X, Y, activations=activations, cost=cost)


MSE_ONLY = MseOnly()
