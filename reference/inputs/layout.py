"""How an implementation lays out its arrays: one small declaration, read from anywhere.

DESIGN.md, "Checking other people's code": code written in another layout is checked
unchanged, behind an adapter (``reference/boundary/layouts.py``) that this declaration
drives. Each key has a default, the seed's; a declaration names only what differs:

=============  ==================================================================  ===========
key            values                                                              default
=============  ==================================================================  ===========
``samples``    ``columns``: X (n_0, m); ``rows``: X (m, n_0); ``one``: one sample  ``columns``
               at a time, x (n_0, 1), the batch's J the mean of the samples' terms
``W``          ``out_in``: W (n_out, n_in); ``in_out``: W (n_in, n_out)             ``out_in``
``b``          ``column``: (n_out, 1); ``row``: (1, n_out); ``flat``: (n_out,)      ``column``
``container``  ``pairs``: [(W1, b1), ...]; ``lists``: ([W1, ...], [b1, ...]);      ``pairs``
               ``dict``: {"W1": W1, "b1": b1, ...}; ``object``: attributes W1, b1
``W_key``      the name of layer l's W in a dict or an object, ``{l}`` counting    ``W{l}``
               from 1 (``{i}`` from 0); also how reports name it
``b_key``      the same for b                                                      ``b{l}``
``grads``      the gradients' names from the parameters' (``{}``): ``d{}`` gives  ``auto``
               dW1, ``{}`` W1; ``auto``: whichever one pattern of
               :data:`GRAD_PATTERNS` names every gradient returned
=============  ==================================================================  ===========

A gradient of b may come back in the declared shape or 1-D. Written as a string,
``key=value`` pairs joined by commas, optionally after a preset's name
(``"rows,b=flat"``); as a mapping (``SUPPORTS["layout"]``, a pyproject table), the same
keys. The presets (:data:`PRESETS`) are the layouts that had names before the keys:
``columns`` (the seed's), ``rows``, ``dicts`` and ``samples``. For example, samples as rows
with W (n_out, n_in) and 1-D biases::

    SUPPORTS = {"layout": {"samples": "rows", "b": "flat"}}
    backprop-check --layout samples=rows,b=flat
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any

CHOICES: dict[str, dict[str, str]] = {
    "samples": {
        "columns": "X (n_0, m)",
        "rows": "X (m, n_0)",
        "one": "one sample at a time, x (n_0, 1)",
    },
    "W": {"out_in": "W (n_out, n_in)", "in_out": "W (n_in, n_out)"},
    "b": {"column": "b (n_out, 1)", "row": "b (1, n_out)", "flat": "b (n_out,)"},
    "container": {
        "pairs": "a list of (W, b) pairs",
        "lists": "a pair of lists (Ws, bs)",
        "dict": "a dict",
        "object": "an object with attributes",
    },
}
"""Each key with a fixed set of values: the values, each with what it means."""

GRAD_PATTERNS = ("d{}", "{}", "grad_{}", "{}_grad", "d_{}", "grad{}", "nabla_{}")
"""What ``grads="auto"`` tries: the patterns that name gradients from the parameters."""


class LayoutError(ValueError):
    """A layout declaration that cannot be read: names the key, what it takes, what came."""


@dataclass(frozen=True)
class Layout:
    """One layout declaration (the module docstring's table); ``str()`` gives it back as a
    preset's name or as the ``key=value`` pairs that differ from the seed's."""

    samples: str = "columns"
    W: str = "out_in"
    b: str = "column"
    container: str = "pairs"
    W_key: str = "W{l}"
    b_key: str = "b{l}"
    grads: str = "auto"

    def __post_init__(self) -> None:
        for key, allowed in CHOICES.items():
            value = getattr(self, key)
            if value not in allowed:
                raise LayoutError(
                    f"layout key {key!r} must be one of {', '.join(allowed)}, got {value!r}"
                )
        for key in ("W_key", "b_key"):
            value = getattr(self, key)
            if not isinstance(value, str) or len(re.findall(r"\{[li]\}", value)) != 1:
                raise LayoutError(
                    f"layout key {key!r} must be a name holding {{l}} (the layer, from 1) or "
                    f"{{i}} (from 0) once, such as 'W{{l}}', got {value!r}"
                )
            if re.sub(r"\{[li]\}", "", value).count("{") or "," in value or "=" in value:
                raise LayoutError(f"layout key {key!r} holds a brace, ',' or '=': {value!r}")
        if self.W_key.replace("{i}", "{l}") == self.b_key.replace("{i}", "{l}"):
            raise LayoutError(f"layout keys W_key and b_key are both {self.W_key!r}")
        if self.grads != "auto" and (
            not isinstance(self.grads, str) or self.grads.count("{}") != 1 or "," in self.grads
        ):
            raise LayoutError(
                "layout key 'grads' must be 'auto' or a pattern holding {} (the parameter's "
                f"name) once, such as 'd{{}}', got {self.grads!r}"
            )

    def __str__(self) -> str:
        for name, preset in PRESETS.items():
            if preset == self:
                return name
        seed = Layout()
        return ",".join(
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(seed, f.name)
        )

    @property
    def is_seed(self) -> bool:
        """Whether the seed's protocol reaches the code unchanged (no adapter needed)."""
        return replace(self, grads="auto", W_key="W{l}", b_key="b{l}") == Layout()

    def key(self, param: str, layer: int) -> str:
        """Layer ``layer``'s (from 1) ``param`` ("W" or "b") as the code names it."""
        pattern = self.W_key if param == "W" else self.b_key
        return pattern.replace("{l}", str(layer)).replace("{i}", str(layer - 1))

    def grad_key(self, param: str, layer: int, pattern: str | None = None) -> str:
        """The gradient of layer ``layer``'s ``param`` as named by ``pattern`` (default: the
        declared ``grads``; ``auto`` names it ``d`` and the parameter's name)."""
        pattern = pattern or (self.grads if self.grads != "auto" else "d{}")
        return pattern.replace("{}", self.key(param, layer))

    def describe(self) -> str:
        """In words: "samples as rows X (m, n_0), W (n_out, n_in), b (n_out,), ..."."""
        words = [CHOICES[k][getattr(self, k)] for k in CHOICES]
        if self.container in ("dict", "object"):
            words[-1] += f" {self.key('W', 1)}, {self.key('b', 1)}, ..."
            if self.grads != "auto":
                words.append(f"gradients {self.grad_key('W', 1)}, {self.grad_key('b', 1)}")
        return ", ".join(words)

    def declaration(self) -> str:
        """The one line that declares this layout in ``SUPPORTS``."""
        return f'SUPPORTS = {{"layout": "{self}"}}'


PRESETS: dict[str, Layout] = {}
"""The named layouts: each a declaration."""
PRESETS.update(
    columns=Layout(),
    rows=Layout(samples="rows", W="in_out", b="row"),
    dicts=Layout(container="dict", grads="d{}"),
    samples=Layout(samples="one"),
)

KEYS = tuple(f.name for f in fields(Layout))
"""The keys a declaration may hold."""


def read_layout(value: Any, where: str = "layout") -> Layout:
    """A :class:`Layout` from a preset's name, a ``key=value,...`` string (a preset's name
    may come first), a mapping of keys, or a :class:`Layout`; :class:`LayoutError` (a
    ``ValueError``) names ``where``, the key, what it takes and what came."""
    if isinstance(value, Layout):
        return value
    try:
        if isinstance(value, str):
            return _read_text(value.strip())
        if isinstance(value, Mapping):
            return _read_mapping(dict(value), Layout())
    except LayoutError as exc:
        raise LayoutError(f"{where}: {exc}") from None
    raise LayoutError(
        f"{where} must be a preset ({', '.join(PRESETS)}), 'key=value,...' or a mapping of "
        f"{', '.join(KEYS)}; got {type(value).__name__}"
    )


@lru_cache(maxsize=256)
def _read_text(text: str) -> Layout:
    base, items = Layout(), [p.strip() for p in text.split(",") if p.strip()]
    if items and "=" not in items[0]:
        if items[0] not in PRESETS:
            raise LayoutError(
                f"unknown layout {items[0]!r}: a preset ({', '.join(PRESETS)}) or "
                "key=value pairs joined by commas"
            )
        base, items = PRESETS[items[0]], items[1:]
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise LayoutError(f"{item!r} is not key=value (keys: {', '.join(KEYS)})")
        pairs[key.strip()] = value.strip()
    return _read_mapping(pairs, base)


def _read_mapping(pairs: dict[str, Any], base: Layout) -> Layout:
    if "preset" in pairs:
        preset = pairs.pop("preset")
        if preset not in PRESETS:
            raise LayoutError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        base = PRESETS[preset]
    unknown = sorted(set(pairs) - set(KEYS))
    if unknown:
        raise LayoutError(
            f"unknown layout key(s) {', '.join(map(repr, unknown))}; the keys are {', '.join(KEYS)}"
        )
    for key, value in pairs.items():
        if not isinstance(value, str):
            raise LayoutError(f"layout key {key!r} must be a string, got {value!r}")
    return replace(base, **pairs)
