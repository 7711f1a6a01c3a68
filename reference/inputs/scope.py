"""What an implementation says it supports, and which networks that admits.

An implementation declares its scope in any of three places, with one meaning
(DESIGN.md, "Checking other people's code"):

- a module attribute::

      SUPPORTS = {
          "activations": ["relu"],             # hidden layers
          "output_activations": ["sigmoid"],   # the output layer
          "costs": ["bce"],
          "outputs": [1],                      # output widths n_L
          "max_depth": 3,                      # layers L (also "min_depth")
          "layout": "columns",                 # how its arrays are laid out (layout.py)
          "dtype": "float64",                  # the precision it computes in (DTYPES)
          "penalties": ["l2"],                 # the optional l2 keyword (PENALTIES)
          "relu_at_zero": 0,                   # its relu'(0), a convention (0 or 1)
          "shared_hidden": True,               # one activation for every hidden layer
          "output_cost_pairs": [["sigmoid", "bce"], ["identity", "mse"]],
      }

- a ``[tool.backprop-check]`` table in the ``pyproject.toml`` of the directory
  the check runs from, with the same keys;
- ``backprop-check`` flags (``--activations``, ``--output-activations``,
  ``--costs``, ``--outputs``, ``--min-depth``, ``--max-depth``, ``--penalties``).

A name key left out (``activations``, ``output_activations``, ``costs``) admits the seed's
names (:data:`SEED_NAMES`: its notes' sigmoid, tanh and relu, mse and cross-entropy) and every
name a fork registers (``reference.register_activation``, entry points), not the names the
harness's tables add beyond the seed (identity, leaky_relu, softmax, cce): code written to the
seed is never failed for lacking them. ``"*"`` admits every name of the tables. The other
keys left out admit everything, except ``penalties``: a penalty is an extra the seed's
protocol does not have, so networks with one are drawn only for an implementation that
declares it (and one that does not is never called with its keyword). Where several
places give the same key, the flags win over the pyproject table, which wins over the
module. Networks outside the scope are never generated; the report counts them as not in
scope.

``shared_hidden`` (True) admits only networks whose hidden layers all use one activation
(scikit-learn's MLP takes one ``activation`` for all of them). ``output_cost_pairs`` lists the
(output activation, cost) pairs the code handles, and admits no other pairing; where
``output_activations`` or ``costs`` is left out, the pairs' names are what it admits.

``relu_at_zero`` limits no network: it declares the code's relu'(0) (any value in [0, 1] is
a subgradient; the seed's is 1), which the relu'(0) check then requires, as
``--relu-at-zero`` does. Declared, it wins over the shipped suite's ini key
``backprop_relu_at_zero`` (a fork inherits its upstream's pytest configuration; its own
declaration is what holds for its code), not over ``--backprop-relu-at-zero`` given on a
command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .layout import PRESETS, LayoutError, read_layout
from .problems import Problem, compatible_costs, random_problem, table_activations

KEYS = (
    "activations",
    "output_activations",
    "costs",
    "outputs",
    "min_depth",
    "max_depth",
    "layout",
    "dtype",
    "penalties",
    "relu_at_zero",
    "shared_hidden",
    "output_cost_pairs",
)
"""The keys a declaration may hold."""

SEED_NAMES = {
    "activations": frozenset({"sigmoid", "tanh", "relu"}),
    "output_activations": frozenset({"sigmoid", "tanh", "relu"}),
    "costs": frozenset({"mse", "bce"}),
}
"""What a name key left out admits besides registered names: the activations and costs of
the seed's notes (sections 9-12: sigmoid, tanh and relu; MSE and binary cross-entropy)."""

EVERY = "*"
"""The value of a name key that admits every name of the tables."""


def table_names(key: str) -> frozenset[str]:
    """Every name of the tables for a name key: activations, or costs."""
    if key == "costs":
        from ..registry import cost_names

        return frozenset(cost_names())
    return frozenset(table_activations())


def default_names(key: str) -> frozenset[str]:
    """What name key ``key`` admits when it is left out: :data:`SEED_NAMES` and every
    registered name, among the tables' names."""
    from ..registry import registered_names

    kind = "cost" if key == "costs" else "activation"
    return table_names(key) & (SEED_NAMES[key] | registered_names(kind))


PENALTIES = ("l2",)
"""The penalties an implementation may declare: ``l2`` is lambda/(2m) sum_l ||W^l||^2,
passed as the keyword ``l2=lambda`` of ``loss`` and ``gradients`` (DESIGN.md's protocol)."""

LAYOUTS = tuple(PRESETS)
"""The named layouts (presets of a declaration, :mod:`.layout`): ``columns`` is the seed's
(samples as columns, W (n_l, n_(l-1)), b (n_l, 1)); ``rows`` has samples as rows, W (n_in,
n_out) and b (1, n_out); ``dicts`` keeps parameters and gradients in dicts named W1, b1,
dW1, db1; ``samples`` takes one sample (a column) at a time. ``layout`` may also be a
declaration of its own: ``"samples=rows,b=flat"``, or a mapping of those keys."""

RELU_AT_ZERO = (0, 1)
"""The relu'(0) a declaration may require: JAX's and PyTorch's 0, or the seed's 1."""

DTYPES = ("float64", "float32", "float16")
"""The precisions an implementation may compute in; the oracles stay float64."""


class ScopeError(ValueError):
    """A declaration that cannot be read; the message names the place and the key."""


@dataclass(frozen=True)
class Scope:
    """The networks an implementation supports; None in a field admits anything."""

    activations: frozenset[str] | None = None
    output_activations: frozenset[str] | None = None
    costs: frozenset[str] | None = None
    outputs: frozenset[int] | None = None
    min_depth: int | None = None
    max_depth: int | None = None
    layout: str | None = None
    dtype: str | None = None
    penalties: frozenset[str] | None = None
    """None (not declared) admits no penalty, unlike every other key."""
    relu_at_zero: float | None = None
    """The relu'(0) the code declares (0.0 or 1.0), which the relu'(0) check requires; None:
    any value in [0, 1], named as a convention when it is not the seed's 1."""
    shared_hidden: bool | None = None
    """True: every hidden layer of a network uses the same activation; None: any mix."""
    output_cost_pairs: frozenset[tuple[str, str]] | None = None
    """The (output activation, cost) pairs admitted; None: any pair of admitted names."""

    @classmethod
    def read(cls, declared: Mapping[str, Any] | None, where: str) -> Scope:
        """A scope from a declaration (``SUPPORTS``, a pyproject table, the flags)."""
        if declared is None:
            return cls()
        if not isinstance(declared, Mapping):
            raise ScopeError(f"{where} must be a mapping of {', '.join(KEYS)}, "
                             f"got {type(declared).__name__}")  # fmt: skip
        unknown = sorted(set(declared) - set(KEYS))
        if unknown:
            raise ScopeError(
                f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"the keys are {', '.join(KEYS)}"
            )
        values: dict[str, Any] = {}
        for key, value in declared.items():
            if value is None:
                continue
            read = _READERS.get(key, _read_names)
            got = read(value, where, key)
            if got is not None:  # shared_hidden False declares nothing
                values[key] = got
        return cls(**values)

    def over(self, other: Scope) -> Scope:
        """This scope's keys, and ``other``'s where this one says nothing."""
        return Scope(**{
            f.name: getattr(self, f.name) if getattr(self, f.name) is not None
            else getattr(other, f.name)
            for f in fields(self)
        })  # fmt: skip

    @property
    def declared(self) -> bool:
        """Whether anything limits which networks are drawn (layout and dtype do not, nor
        penalties, which add networks: :meth:`admits_penalty`)."""
        return any(
            getattr(self, f.name) is not None for f in fields(self)
            if f.name not in ("layout", "dtype", "penalties", "relu_at_zero")
        )  # fmt: skip

    @classmethod
    def everything(cls) -> Scope:
        """Every name of the tables (``"*"`` for each name key), nothing else limited."""
        return cls(**{key: table_names(key) for key in SEED_NAMES})

    def names(self, key: str) -> frozenset[str]:
        """The names name key ``key`` admits: as declared, else the names of the declared
        ``output_cost_pairs`` (for ``output_activations`` and ``costs``), else
        :func:`default_names`."""
        value = getattr(self, key)
        if value is not None:
            return value
        if self.output_cost_pairs is not None and key != "activations":
            return frozenset(p[key == "costs"] for p in self.output_cost_pairs)
        return default_names(key)

    def admits_pair(self, output_activation: str, cost: str) -> bool:
        """Whether the output activation and the cost are admitted together (each admitted,
        and the pair declared where ``output_cost_pairs`` is)."""
        return (
            output_activation in self.names("output_activations")
            and cost in self.names("costs")
            and (self.output_cost_pairs is None
                 or (output_activation, cost) in self.output_cost_pairs)
        )  # fmt: skip

    def admits_penalty(self, name: str = "l2") -> bool:
        """Whether the implementation declared penalty ``name`` (none is admitted undeclared)."""
        return self.penalties is not None and name in self.penalties

    def why_not(self, problem: Problem) -> str | None:
        """Why ``problem`` is outside the scope, or None when it is inside."""
        acts, L = problem.activations, len(problem.params)
        if problem.l2 and not self.admits_penalty("l2"):
            return "an l2 penalty (not declared: SUPPORTS['penalties'])"
        if self.min_depth is not None and L < self.min_depth:
            return f"{L} layers, fewer than min_depth {self.min_depth}"
        if self.max_depth is not None and L > self.max_depth:
            return f"{L} layers, more than max_depth {self.max_depth}"
        hidden = sorted(set(acts[:-1]) - self.names("activations"))
        if hidden:
            return f"hidden activation {', '.join(hidden)}" + self._undeclared("activations")
        if acts[-1] not in self.names("output_activations"):
            return f"output activation {acts[-1]}" + self._undeclared("output_activations")
        if problem.cost not in self.names("costs"):
            return f"cost {problem.cost}" + self._undeclared("costs")
        if not self.admits_pair(acts[-1], problem.cost):
            return (f"output activation {acts[-1]} with cost {problem.cost} (not among "
                    "SUPPORTS['output_cost_pairs'])")  # fmt: skip
        if self.shared_hidden and len(set(acts[:-1])) > 1:
            return (f"hidden activations {', '.join(sorted(set(acts[:-1])))} in one network "
                    "(SUPPORTS['shared_hidden'] admits one)")  # fmt: skip
        n_out = problem.params[-1][0].shape[0]
        if self.outputs is not None and n_out not in self.outputs:
            return f"{n_out} outputs"
        return None

    def admits(self, problem: Problem) -> bool:
        return self.why_not(problem) is None

    def admits_network(self, activations: list[str], cost: str, outputs: int) -> bool:
        """Whether a network of these activations, cost and output width is inside."""
        L = len(activations)
        return (
            (self.min_depth is None or L >= self.min_depth)
            and (self.max_depth is None or L <= self.max_depth)
            and set(activations[:-1]) <= self.names("activations")
            and self.admits_pair(activations[-1], cost)
            and not (self.shared_hidden and len(set(activations[:-1])) > 1)
            and (self.outputs is None or outputs in self.outputs)
        )

    def _undeclared(self, key: str) -> str:
        return "" if getattr(self, key) is not None else f" (not declared: SUPPORTS['{key}'])"

    def hidden_choices(self, table: Iterable[str]) -> list[str]:
        return sorted(set(table) & self.names("activations"))

    def output_choices(self, table: Iterable[str]) -> list[str]:
        return sorted(set(table) & self.names("output_activations"))

    def cost_choices(self, output_activation: str) -> list[str]:
        allowed = compatible_costs(output_activation)
        return [c for c in allowed if self.admits_pair(output_activation, c)]

    def suggest(self, ran: Sequence[Any], refused: Sequence[Any]) -> dict[str, Any]:
        """What to declare besides this scope so that the networks that ``ran`` stay in and
        those ``refused`` (NotImplementedError) are left out, as far as their activations,
        costs, output widths and depths tell (each a :class:`Problem`, or anything with its
        ``activations``, ``cost`` and ``params[-1][0].shape[0]``): the name keys of
        :data:`KEYS`, the output widths, one shared hidden activation, the (output, cost)
        pairs and the depths. Greedily, the key that leaves out the most refused networks
        still admitted, among the keys this scope does not declare, then among those it
        declares with a wider value; a value it already declares is never named again.
        {} when nothing tells them apart (or nothing ran)."""
        if not ran:
            return {}
        nets = [(list(p.activations), p.cost, p.params[-1][0].shape[0]) for p in ran]
        out_of = [(list(p.activations), p.cost, p.params[-1][0].shape[0]) for p in refused]
        proposal = _proposal(nets)
        picked = self._pick(proposal, [n for n in out_of if self.admits_network(*n)])
        return {
            key: [list(v) for v in value] if key == "output_cost_pairs" else value
            for key, value in proposal.items() if key in picked
        }  # fmt: skip

    def _pick(self, proposal: dict[str, Any], remaining: list[Any]) -> list[str]:
        """The keys of ``proposal`` :meth:`suggest` names, in the order chosen: each the one
        that leaves out the most of the ``remaining`` refused networks."""
        chosen, picked = self, []
        for declared_too in (False, True):  # what is not declared first, then narrower values
            while remaining:
                best = self._best_key(proposal, picked, chosen, remaining, declared_too)
                if best is None:
                    break
                key, chosen, remaining = best
                picked.append(key)
        return picked

    def _best_key(
        self,
        proposal: dict[str, Any],
        picked: list[str],
        chosen: Scope,
        remaining: list[Any],
        declared_too: bool,
    ) -> tuple[str, Scope, list[Any]] | None:
        """The key not yet ``picked`` whose proposed value over ``chosen`` admits the fewest
        ``remaining`` networks (fewer than now), that scope and those it still admits; None
        when no key leaves one out. Keys this scope declares count only when
        ``declared_too``; a value it already declares never counts."""
        best, left = None, remaining
        for key, value in proposal.items():
            if value is None or key in picked or (key == "activations" and not value):
                continue
            if getattr(self, key) is not None and not declared_too:
                continue
            trial = Scope.read({key: value}, "the suggestion").over(chosen)
            if getattr(trial, key) == getattr(chosen, key):
                continue  # already declared so
            kept = [n for n in remaining if trial.admits_network(*n)]
            if len(kept) < len(left):
                best, left = (key, trial), kept
        return None if best is None else (best[0], best[1], left)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = (
                    [list(p) if isinstance(p, tuple) else p for p in sorted(value)]
                    if isinstance(value, frozenset) else value
                )  # fmt: skip
        return out

    def describe(self) -> str:
        """The scope as the ``SUPPORTS`` line that declares it."""
        if self.declared:
            return f"SUPPORTS = {self.to_dict()!r}"
        return "the seed's activations and costs (nothing declared)"


def _items(value: Any, where: str, key: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ScopeError(f"{where}: {key} must be a list, got {value!r}")
    return list(value)


def _proposal(nets: list[tuple[list[str], str, int]]) -> dict[str, Any]:
    """Every key :meth:`Scope.suggest` may name, with the value that admits ``nets`` (each
    ``(activations, cost, output width)``) and as little else as the key can say."""
    return {
        "activations": sorted({a for acts, _, _ in nets for a in acts[:-1]}),
        "output_activations": sorted({acts[-1] for acts, _, _ in nets}),
        "costs": sorted({cost for _, cost, _ in nets}),
        "outputs": sorted({n for _, _, n in nets}),
        "shared_hidden": all(len(set(acts[:-1])) <= 1 for acts, _, _ in nets) or None,
        "output_cost_pairs": sorted({(acts[-1], cost) for acts, cost, _ in nets}),
        "min_depth": min(len(acts) for acts, _, _ in nets),
        "max_depth": max(len(acts) for acts, _, _ in nets),
    }


# --- reading a declaration: one reader per key ---------------------------------------------
# Each takes the declared value (never None), the place and the key, and returns the field's
# value, or None where the value declares nothing; a value it cannot read is a ScopeError.


def _read_depth(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScopeError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    return value


def _read_layout(value: Any, where: str, key: str) -> str:
    try:
        return str(read_layout(value, f"{where}: layout"))
    except LayoutError as exc:
        raise ScopeError(str(exc)) from None


def _read_dtype(value: Any, where: str, key: str) -> str:
    if value not in DTYPES:
        raise ScopeError(f"{where}: {key} must be one of {', '.join(DTYPES)}, got {value!r}")
    return value


def _read_relu_at_zero(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or value not in RELU_AT_ZERO:
        raise ScopeError(f"{where}: relu_at_zero must be 0 or 1 (relu'(0)), got {value!r}")
    return float(value)


def _read_shared_hidden(value: Any, where: str, key: str) -> bool | None:
    if not isinstance(value, bool):
        raise ScopeError(f"{where}: shared_hidden must be True or False, got {value!r}")
    return True if value else None


def _read_pairs(value: Any, where: str, key: str) -> frozenset[tuple[str, str]]:
    pairs = []
    for pair in _items(value, where, key):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(n, str) for n in pair)):  # fmt: skip
            raise ScopeError(
                f"{where}: output_cost_pairs must be a list of [output activation, "
                f"cost] pairs, got {pair!r} in it"
            )
        pairs.append((pair[0], pair[1]))
    return frozenset(pairs)


def _read_penalties(value: Any, where: str, key: str) -> frozenset[str]:
    items = _items(value, where, key)
    if any(n not in PENALTIES for n in items):
        raise ScopeError(f"{where}: penalties must name some of "
                         f"{', '.join(PENALTIES)}, got {value!r}")  # fmt: skip
    return frozenset(items)


def _read_outputs(value: Any, where: str, key: str) -> frozenset[int]:
    items = _items(value, where, key)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
               for n in items):  # fmt: skip
        raise ScopeError(f"{where}: outputs must be widths >= 1, got {value!r}")
    return frozenset(items)


def _read_names(value: Any, where: str, key: str) -> frozenset[str]:
    """A name key: :data:`EVERY`, or a list of names."""
    if value == EVERY:
        return table_names(key)
    items = _items(value, where, key)
    if not all(isinstance(n, str) for n in items):
        raise ScopeError(f"{where}: {key} must be a list of names, got {value!r}")
    return frozenset(items)


_READERS = {
    "min_depth": _read_depth,
    "max_depth": _read_depth,
    "layout": _read_layout,
    "dtype": _read_dtype,
    "relu_at_zero": _read_relu_at_zero,
    "shared_hidden": _read_shared_hidden,
    "output_cost_pairs": _read_pairs,
    "penalties": _read_penalties,
    "outputs": _read_outputs,
}
"""The reader of each key but the name keys (:func:`_read_names`)."""


def from_pyproject(directory: Path) -> Scope:
    """The ``[tool.backprop-check]`` table of ``directory/pyproject.toml``, if any."""
    path = directory / "pyproject.toml"
    if not path.is_file():
        return Scope()
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, as a package
        import tomli as tomllib
    try:
        table = tomllib.loads(path.read_text()).get("tool", {}).get("backprop-check")
    except (OSError, ValueError) as exc:
        raise ScopeError(f"{path}: cannot read it ({exc})") from None
    if isinstance(table, Mapping) and "differences" in table:  # --against's (differences.py)
        table = {k: v for k, v in table.items() if k != "differences"}
    return Scope.read(table, f"[tool.backprop-check] in {path}")


def random_problem_in(
    rng: np.random.Generator,
    scope: Scope,
    *,
    depth: tuple[int, int] = (1, 4),
    width: tuple[int, int] = (1, 6),
    samples: tuple[int, int] = (2, 6),
    name: str = "",
    attempts: int = 20_000,
) -> Problem:
    """:func:`~reference.inputs.problems.random_problem` drawn until it lies in ``scope``
    (depth and width ranges widened to reach the declared depths and output widths)."""
    lo, hi = depth
    if scope.min_depth is not None:
        lo, hi = max(lo, scope.min_depth), max(hi, scope.min_depth)
    if scope.max_depth is not None:
        hi = min(hi, scope.max_depth)
        lo = min(lo, hi)
    w_hi = max(width[1], *(scope.outputs or [0]))
    names = sorted(scope.names("activations") | scope.names("output_activations"))
    for _ in range(attempts):
        p = random_problem(
            rng, depth=(lo, hi), width=(width[0], w_hi), samples=samples,
            activation_names=names, name=name,
        )  # fmt: skip
        if scope.admits(p):
            return p
    raise ScopeError(f"no network drawn in {attempts} attempts fits {scope.describe()}")
