"""A grading rubric: how many points each thing the harness checks is worth.

A rubric is a small TOML file (``reference/grading/rubric.toml`` is the default and
documents every key). Its items are derived, never listed by hand: one per layer and
parameter of the graded networks (``layer 1 dW`` ... ``layer <depth> db``), the loss,
one per check of :mod:`reference.judging.checks` (its ``PROBLEM_CHECKS`` and
``FIXED_CHECKS`` tables), and one per hidden group. :func:`load_rubric` reads and
validates one; a mistake in it is a :class:`RubricError` that names the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boundary.loading import OPTIONAL
from ..inputs.scope import Scope, ScopeError
from ..judging import checks

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
"""Gradescope's visibility settings for a test case (its autograder specification,
https://gradescope-autograders.readthedocs.io/en/latest/specs/, "Controlling test case
visibility")."""

DEFAULT = Path(__file__).with_name("rubric.toml")
"""The rubric shipped with the package."""

_TOP = ("visibility", "strict", "require", "networks", "points", "scope", "hidden", "integrity")
_INTEGRITY = ("forbid", "zero")
_NETWORKS = ("seed", "random", "depth", "combinations")
_POINTS = ("W", "b", "loss", "checks", "check")
_HIDDEN = ("visibility", "groups")
_GROUP = ("name", "networks", "points", "visibility")
_SCOPE = ("activations", "output_activations", "costs", "outputs", "penalties")


class RubricError(ValueError):
    """A rubric that cannot be read or says something impossible; the message names the key."""


def check_names() -> list[str]:
    """Every non-gradient check's name, from :mod:`reference.judging.checks`' tables."""
    return [*checks.PROBLEM_CHECKS, *checks.FIXED_CHECKS]


@dataclass(frozen=True)
class HiddenGroup:
    """Networks drawn from the secret seed, graded together as one item."""

    name: str
    networks: int
    points: float
    visibility: str


@dataclass(frozen=True)
class Rubric:
    """A validated rubric (see ``rubric.toml`` for what each field means)."""

    source: str
    seed: int
    random: int
    depth: int
    combinations: bool
    W: tuple[float, ...]
    b: tuple[float, ...]
    loss: float
    check_points: dict[str, float]
    scope: Scope
    visibility: str
    strict: bool
    hidden: tuple[HiddenGroup, ...]
    require: tuple[str, ...] = ()
    """Optional protocol members (``forward``, ``update``) the assignment asks for: a check
    that needs one the code lacks scores 0. Others are not charged when left out."""
    forbid: tuple[str, ...] = ()
    """Modules a submission may not import (``[integrity] forbid``)."""
    zero_on_finding: bool = True
    """Whether an integrity finding zeroes the grade (``[integrity] zero``)."""

    @property
    def graded_scope(self) -> Scope:
        """The rubric's scope with every network ``depth`` layers deep."""
        return Scope(min_depth=self.depth, max_depth=self.depth).over(self.scope)


def _where(source: str, key: str) -> str:
    return f"rubric {source}: {key}"


def _table(value: Any, source: str, key: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RubricError(f"{_where(source, key)} must be a table, got {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise RubricError(
            f"{_where(source, key)} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"the keys are {', '.join(keys)}"
        )
    return value


def _points(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RubricError(
            f"{_where(source, key)} must be a number of points, got {value!r} "
            f"({type(value).__name__})"
        )
    if not value >= 0 or value == float("inf"):
        raise RubricError(f"{_where(source, key)} must be finite and >= 0, got {value!r}")
    return float(value)


def _integer(value: Any, source: str, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RubricError(
            f"{_where(source, key)} must be an integer, got {value!r} ({type(value).__name__})"
        )
    if value < low:
        raise RubricError(f"{_where(source, key)} must be >= {low}, got {value}")
    return value


def _per_layer(value: Any, source: str, key: str, depth: int) -> tuple[float, ...]:
    if isinstance(value, list):
        if len(value) != depth:
            raise RubricError(
                f"{_where(source, key)} gives {len(value)} numbers; [networks] depth is "
                f"{depth}, so it needs one per layer (or a single number for every layer)"
            )
        return tuple(_points(v, source, f"{key}[{k}]") for k, v in enumerate(value))
    return (_points(value, source, key),) * depth


def _visibility(value: Any, source: str, key: str) -> str:
    if value not in VISIBILITIES:
        raise RubricError(
            f"{_where(source, key)} must be one of {', '.join(VISIBILITIES)}, got {value!r}"
        )
    return value


def _boolean(value: Any, source: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise RubricError(f"{_where(source, key)} must be true or false, got {value!r}")
    return value


def _members(value: Any, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RubricError(f"{_where(source, key)} must be a list of member names, got {value!r}")
    unknown = [v for v in value if v not in OPTIONAL]
    if unknown:
        raise RubricError(
            f"{_where(source, key)} names {', '.join(map(repr, unknown))}; the optional "
            f"members are {', '.join(OPTIONAL)} (loss and gradients are always required)"
        )
    return tuple(value)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: tables merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merged(base[key], value)
        else:
            out[key] = value
    return out


def _required(table: dict[str, Any], source: str, where: str, key: str) -> Any:
    if key not in table:
        raise RubricError(f"{_where(source, where)} has no {key!r} (it is required)")
    return table[key]


def parse_rubric(table: dict[str, Any], source: str = "<table>") -> Rubric:
    """A :class:`Rubric` from a parsed TOML table laid over the default rubric's: a key the
    table leaves out keeps the default's value (``[hidden] groups = []`` drops the hidden
    groups).

    Raises :class:`RubricError` naming the key for an unknown key, a wrong type, negative
    points, an unknown check name or visibility, or a list of points of the wrong length.
    """
    if not isinstance(table, dict):
        raise RubricError(f"rubric {source} must be a table, got {type(table).__name__}")
    top = _table(_merged(_default_table(), table), source, "the top level", _TOP)
    nets = _table(top["networks"], source, "[networks]", _NETWORKS)
    points = _table(top["points"], source, "[points]", _POINTS)
    hidden = _table(top["hidden"], source, "[hidden]", _HIDDEN)
    scope_table = _table(top["scope"], source, "[scope]", _SCOPE)
    integrity = _table(top["integrity"], source, "[integrity]", _INTEGRITY)
    forbid = integrity["forbid"]
    if not isinstance(forbid, list) or not all(
        isinstance(m, str) and m.strip() and " " not in m for m in forbid
    ):
        raise RubricError(
            f"{_where(source, '[integrity] forbid')} must be a list of module names, got {forbid!r}"
        )

    depth = _integer(nets["depth"], source, "[networks] depth", 1)
    every = _points(points["checks"], source, "[points] checks")
    own = _table(points["check"], source, "[points.check]", tuple(check_names()))
    check_points = {
        name: _points(own[name], source, f'[points.check] "{name}"') if name in own else every
        for name in check_names()
    }
    try:
        scope = Scope.read(scope_table, f"rubric {source}: [scope]")
    except ScopeError as exc:
        raise RubricError(str(exc)) from None

    default_visibility = _visibility(hidden["visibility"], source, "[hidden] visibility")
    groups_value = hidden["groups"]
    if not isinstance(groups_value, list):
        raise RubricError(
            f"{_where(source, '[hidden] groups')} must be an array of tables "
            f"([[hidden.groups]]), got {type(groups_value).__name__}"
        )
    groups: list[HiddenGroup] = []
    for k, raw in enumerate(groups_value):
        key = f"[[hidden.groups]] #{k + 1}"
        g = _table(raw, source, key, _GROUP)
        name = _required(g, source, key, "name")
        if not isinstance(name, str) or not name.strip():
            raise RubricError(f"{_where(source, key + ' name')} must be a non-empty string")
        if name in {h.name for h in groups}:
            raise RubricError(f"{_where(source, key + ' name')} {name!r} is used twice")
        groups.append(
            HiddenGroup(
                name=name,
                networks=_integer(
                    _required(g, source, key, "networks"), source, f"{key} networks", 1
                ),
                points=_points(_required(g, source, key, "points"), source, f"{key} points"),
                visibility=_visibility(
                    g.get("visibility", default_visibility), source, f"{key} visibility"
                ),
            )
        )
    return Rubric(
        source=source,
        seed=_integer(nets["seed"], source, "[networks] seed", 0),
        random=_integer(nets["random"], source, "[networks] random", 0),
        depth=depth,
        combinations=_boolean(nets["combinations"], source, "[networks] combinations"),
        W=_per_layer(points["W"], source, "[points] W", depth),
        b=_per_layer(points["b"], source, "[points] b", depth),
        loss=_points(points["loss"], source, "[points] loss"),
        check_points=check_points,
        scope=scope,
        visibility=_visibility(top["visibility"], source, "visibility"),
        strict=_boolean(top["strict"], source, "strict"),
        hidden=tuple(groups),
        require=_members(top["require"], source, "require"),
        forbid=tuple(forbid),
        zero_on_finding=_boolean(integrity["zero"], source, "[integrity] zero"),
    )


def _toml() -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, as a package
        import tomli as tomllib
    return tomllib


def _read(path: Path) -> dict[str, Any]:
    tomllib = _toml()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"rubric {path}: cannot read it ({exc.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(f"rubric {path}: not valid TOML ({exc})") from None


def _default_table() -> dict[str, Any]:
    return _read(DEFAULT)


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The rubric in the TOML file at ``path`` over the default one (None: the default
    itself, ``reference/grading/rubric.toml``, shipped with the package).

    Raises :class:`RubricError` for a file that does not exist, is not TOML, or fails
    :func:`parse_rubric`'s checks.
    """
    path = DEFAULT if path is None else Path(path)
    return parse_rubric(_read(path), str(path))
