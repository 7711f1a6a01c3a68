"""What a fork changes on purpose, declared for ``--against``: its differences from the upstream.

A fork states them in the ``[tool.backprop-check.differences]`` table of the ``pyproject.toml``
of the directory the check runs from, one entry per activation or cost name, each with its
kind and its reason::

    [tool.backprop-check.differences]
    softplus = { kind = "new", reason = "a smooth relu for the fork's models" }
    mse = { kind = "convention", reason = "averaged over the outputs as well (1/n_L)" }
    bce = { kind = "formula", reason = "label smoothing 0.1: targets 0.05 and 0.95" }

- ``new``: a name the upstream lacks. Its networks are not run on the upstream.
- ``convention``: a cost scaled by a constant the checker names (summed over the samples,
  without the 1/2, averaged over the outputs). Its networks are compared up to that factor:
  the fork's gradients against the upstream's times the ratio of the two losses.
- ``formula``: a name whose formula the fork changed (declared to the oracles with
  ``reference.register_activation(..., replace=True)``, so that they judge the fork by it).
  Its networks are not compared with the upstream.

``--against`` lists every declared difference in its report, compares what both sides share,
and fails on every difference that is not declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scope import ScopeError

KINDS = {
    "new": "new in the fork: the upstream lacks it",
    "convention": "a cost convention: compared up to its constant factor",
    "formula": "a changed formula",
}
"""The kinds of declared difference, each with what ``--against`` does with it."""

TABLE = "differences"
"""The key of the table inside ``[tool.backprop-check]``."""


@dataclass(frozen=True)
class Difference:
    """One declared difference: the activation or cost ``name``, its ``kind`` (one of
    :data:`KINDS`) and the fork's ``reason``."""

    name: str
    kind: str
    reason: str

    def describe(self) -> str:
        """``name``: what it is, and why (the fork's words)."""
        return f"{self.name}: {KINDS[self.kind]} ({self.reason})"


@dataclass(frozen=True)
class Differences:
    """Every declared difference, by name."""

    entries: tuple[Difference, ...] = ()

    @classmethod
    def read(cls, table: Mapping[str, Any] | None, where: str) -> Differences:
        """The differences of a declaration's table; a :class:`ScopeError` (a ValueError)
        naming the place and the entry for anything that is not ``name = {kind, reason}``."""
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ScopeError(f"{where} must be a table of names, got {type(table).__name__}")
        out = []
        for name, entry in table.items():
            if not isinstance(entry, Mapping):
                raise ScopeError(
                    f"{where}: {name} must be a table {{ kind = ..., reason = ... }}, got {entry!r}"
                )
            unknown = sorted(set(entry) - {"kind", "reason"})
            if unknown:
                raise ScopeError(f"{where}: {name} has unknown key(s) {unknown}; "
                                 "the keys are kind and reason")  # fmt: skip
            kind, reason = entry.get("kind"), entry.get("reason")
            if kind not in KINDS:
                raise ScopeError(
                    f"{where}: {name}'s kind must be one of {', '.join(KINDS)}, got {kind!r}"
                )
            if not isinstance(reason, str) or not reason.strip():
                raise ScopeError(
                    f"{where}: {name} needs a reason (a non-empty string), got {reason!r}"
                )
            out.append(Difference(str(name), kind, reason.strip()))
        return cls(tuple(sorted(out, key=lambda d: d.name)))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def get(self, name: str) -> Difference | None:
        """The difference declared for ``name``, if any."""
        return next((d for d in self.entries if d.name == name), None)

    def used_by(self, activations: Any, cost: str) -> list[Difference]:
        """The declared differences a network with these activations and cost uses."""
        names = [*dict.fromkeys(activations), cost]
        return [d for d in (self.get(n) for n in names) if d is not None]


def from_pyproject(directory: Path) -> Differences:
    """The ``[tool.backprop-check.differences]`` table of ``directory/pyproject.toml``."""
    path = Path(directory) / "pyproject.toml"
    if not path.is_file():
        return Differences()
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, as a package
        import tomli as tomllib
    try:
        tool = tomllib.loads(path.read_text()).get("tool", {}).get("backprop-check") or {}
    except (OSError, ValueError) as exc:
        raise ScopeError(f"{path}: cannot read it ({exc})") from None
    table = tool.get(TABLE) if isinstance(tool, Mapping) else None
    return Differences.read(table, f"[tool.backprop-check.{TABLE}] in {path}")
