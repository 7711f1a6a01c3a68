"""``backprop-check --explain``'s second part: every activation and cost of the tables with
its formulas, read from the tables themselves (each function's docstring states its formula
first), so that a fork's registered names are explained too."""

from __future__ import annotations

import inspect
from typing import Any, TextIO


def _formula(fn: object) -> str:
    """The first paragraph of ``fn``'s docstring on one line (where the formula is stated)."""
    doc = inspect.getdoc(fn)
    if not doc:
        return "(no docstring)"
    return " ".join(doc.split("\n\n")[0].split())


def explain_tables(out: TextIO) -> None:
    """Write each activation (g, g' or its vjp, kinks, whether it is output-only) and each
    cost (J, dJ/dA, the output activations it needs, its fused forms) of the tables."""
    import backprop  # the tables

    from ..formulas.specs import ACTIVATION_SPECS
    from ..inputs.problems import output_only
    from ..registry import load_entry_points

    load_entry_points()
    out.write("The activations (backprop.ACTIVATIONS): A^l = g(Z^l), entry by entry unless said\n")
    for name, entry in backprop.ACTIVATIONS.items():
        only = "  (output layer only: not elementwise)" if output_only(name) else ""
        out.write(f"  {name}{only}\n    g:   {_formula(entry.fn)}\n")
        if entry.vjp is not None:
            out.write(f"    dZ:  {_formula(entry.vjp)}\n")
        else:
            out.write(f"    g':  {_formula(entry.grad)}\n")
        spec = ACTIVATION_SPECS.get(name)
        if spec is not None and spec.kinks:
            points = ", ".join(f"{k:g}" for k in spec.kinks)
            out.write(f"    kinks at z = {points}: finite differences stay off them\n")
    out.write("\nThe costs (backprop.COSTS): J of A^L and Y, both n_L x m\n")
    for name, cost in backprop.COSTS.items():
        needs = (
            f"  (output: {' or '.join(sorted(cost.output_activations))})"
            if cost.output_activations is not None
            else ""
        )
        out.write(f"  {name}{needs}\n    J:     {_formula(cost.fn)}\n")
        out.write(f"    dJ/dA: {_formula(cost.grad)}\n")
        for activation, fused in cost.fused.items():
            out.write(
                f"    with a {activation} output, from the logits Z^L:\n"
                f"      J:    {_formula(fused.fn)}\n      dZ^L: {_formula(fused.delta)}\n"
            )
    _registered_only(out)


def _registered_only(out: TextIO) -> None:
    """The names the harness holds a spec of (registered) that backprop's tables lack: the
    code under test has its own formulas for them, which the harness never sees."""
    from ..formulas.specs import ACTIVATION_SPECS
    from ..registry import activation_names, cost_names, cost_output_activations

    extra = [n for n in activation_names() if n not in _builtin("activation")]
    extra_costs = [n for n in cost_names() if n not in _builtin("cost")]
    if not (extra or extra_costs):
        return
    out.write("\nRegistered with the harness (its twins; the formulas are the code's own)\n")
    for name in extra:
        kinks = ", ".join(f"{k:g}" for k in ACTIVATION_SPECS[name].kinks)
        out.write(f"  activation {name}" + (f": kinks at z = {kinks}" if kinks else "") + "\n")
    for name in extra_costs:
        allowed = cost_output_activations(name)
        needs = f" (output: {' or '.join(sorted(allowed))})" if allowed is not None else ""
        out.write(f"  cost {name}{needs}\n")


def _builtin(kind: str) -> Any:
    import backprop

    return backprop.ACTIVATIONS if kind == "activation" else backprop.COSTS


def explain(out: TextIO) -> None:
    """The seed's section 9, for its 2-3-2-1 network: which matrix holds which connections."""
    sizes = [2, 3, 2, 1]
    out.write(
        "The seed's network: layer 0 has 2 inputs, layers 1 and 2 have 3 and 2 units, layer 3 "
        "has 1 output.\nW^l has shape (n_l, n_{l-1}): row i holds every connection into unit i "
        "of layer l.\n\n"
    )
    for l in range(len(sizes) - 1, 0, -1):
        n, n_prev = sizes[l], sizes[l - 1]
        out.write(
            f"layer {l}: W^{l} is {n}x{n_prev}, b^{l} is {n}x1; "
            f"dJ/dW^{l} and dJ/db^{l} have the same shapes\n"
        )
        for i in range(n):
            for j in range(n_prev):
                out.write(f"  W^{l}[{i}, {j}]: layer {l - 1}, index {j} -> layer {l}, index {i}\n")
        out.write(f"  b^{l}[i, 0]: the bias of unit i of layer {l}\n")
        if l == len(sizes) - 1:
            out.write(
                f"  dZ^{l} = dJ/dA^{l} * g'_{l}(Z^{l})   "
                f"({n}x m; with sigmoid + bce: (A^{l} - Y)/m)\n"
            )
        else:
            out.write(
                f"  dZ^{l} = (W^{l + 1})^T dZ^{l + 1} * g'_{l}(Z^{l})   "
                f"({n}x m: the transpose takes "
                f"the {sizes[l + 1]} units above back to these {n})\n"
            )
        out.write(
            f"  dJ/dW^{l} = dZ^{l} (A^{l - 1})^T   ({n}x m times m x{n_prev} = {n}x{n_prev})\n"
            f"  dJ/db^{l} = dZ^{l} summed over the m columns   ({n}x1)\n\n"
        )
    from .formulas import explain_tables

    explain_tables(out)
