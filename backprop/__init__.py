"""A hand-written NumPy implementation of backpropagation for dense networks.

The implementation protocol (see DESIGN.md)::

    loss(params, X, Y, *, activations, cost[, l2]) -> float
    gradients(params, X, Y, *, activations, cost[, l2]) -> [(dW^1, db^1), ..., (dW^L, db^L)]
    forward(params, X, *, activations) -> A^L
    update(params, grads, learning_rate) -> new params

``params`` is ``[(W^1, b^1), ..., (W^L, b^L)]`` with W^l of shape (n_l, n_{l-1})
and b^l of shape (n_l, 1); X is (n_0, m) and Y is (n_L, m), samples as columns.
``l2`` = lambda >= 0 adds the L2 penalty lambda/(2m) sum_l ||W^l||^2 (biases excluded).
"""

from . import datasets
from .activations import ACTIVATIONS, Activation, register_activation
from .costs import COSTS, Cost, Fused, register_cost
from .network import (
    Cache,
    backward,
    forward,
    forward_pass,
    gradients,
    init_params,
    l2_penalty,
    loss,
)
from .train import STOP_REASONS, History, TrainResult, train, update

__all__ = [
    "ACTIVATIONS",
    "COSTS",
    "STOP_REASONS",
    "Activation",
    "Cache",
    "Cost",
    "Fused",
    "History",
    "TrainResult",
    "backward",
    "datasets",
    "forward",
    "forward_pass",
    "gradients",
    "init_params",
    "l2_penalty",
    "loss",
    "register_activation",
    "register_cost",
    "train",
    "update",
]

SUPPORTS = {"activations": "*", "output_activations": "*", "costs": "*", "penalties": ["l2"]}
"""What the harness may check beyond the seed's networks (``reference/inputs/scope.py``):
every activation and cost of the tables (``"*"``), and the optional ``l2`` keyword of
``loss`` and ``gradients``."""

__version__ = "0.1.0"
