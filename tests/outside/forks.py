"""Fork branches of ``backprop`` built from patches, for the tests of the fork workflow
(``tests/test_forks.py``): a copy of the package with a planted change, the fork's
``pyproject.toml`` (its declared differences) and, where the fork adds or changes a formula,
the harness's spec of it (an entry point's module, and the same keyword arguments for a
registration in the test's own process)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import backprop

PACKAGE = Path(backprop.__file__).resolve().parent
"""The built-in package: the upstream every fork starts from."""

SOFTPLUS_CODE = """

def softplus(z):
    \"\"\"g(z) = log(1 + e^z).\"\"\"
    return np.logaddexp(0.0, z)


def softplus_grad(z, a):
    \"\"\"g'(z) = sigmoid(z).\"\"\"
    return SCALE * sigmoid(z)


ACTIVATIONS["softplus"] = Activation(softplus, softplus_grad)
"""

SMOOTHED_CODE = """

def _smoothed(y):
    \"\"\"Label smoothing 1/8: the targets 1/16 and 15/16.\"\"\"
    return 0.875 * y + 0.0625


COSTS["bce"] = Cost(
    lambda a, y: bce(a, _smoothed(y)),
    lambda a, y: bce_grad(a, _smoothed(y)),
    output_activations=frozenset({"sigmoid"}),
    fused=MappingProxyType({"sigmoid": Fused(
        lambda z, y: bce_from_logits(z, _smoothed(y)),
        lambda a, y: bce_sigmoid_delta(a, _smoothed(y)),
    )}),
)
"""

PATCHES: dict[str, list[tuple[str, str, str]]] = {
    # the output delta summed over the outputs: the same with one output, wrong with several
    "outputs": [(
        "network.py",
        "dZ = cost.grad(A[L], Y) * g.grad(Z[L - 1], A[L])",
        "dZ = cost.grad(A[L], Y).sum(axis=0, keepdims=True) * g.grad(Z[L - 1], A[L])",
    )],
    "softplus": [("activations.py", "", "SCALE = 1.0\n" + SOFTPLUS_CODE)],
    "softplus_wrong": [("activations.py", "", "SCALE = 1.1\n" + SOFTPLUS_CODE)],
    # mse averaged over the outputs as well as the samples: 1/(2 m n_L) sum (A - Y)^2
    "convention": [
        ("costs.py", "float(np.vdot(diff, diff)) / (2 * m)",
         "float(np.vdot(diff, diff)) / (2 * m * a.shape[0])"),
        ("costs.py", "d /= a.shape[1]  # in place", "d /= a.shape[1] * a.shape[0]  # in place"),
    ],
    "formula": [("costs.py", "", SMOOTHED_CODE)],
    "float32": [("__init__.py", '"penalties": ["l2"]}', '"penalties": ["l2"], "dtype": "float32"}')],
}  # fmt: skip
"""Each fork's changes to the package: (file, text, replacement); an empty text appends."""

DIFFERENCES = {
    "softplus": 'softplus = { kind = "new", reason = "a smooth relu" }',
    "softplus_wrong": 'softplus = { kind = "new", reason = "a smooth relu" }',
    "convention": 'mse = { kind = "convention", reason = "averaged over the outputs too" }',
    "formula": 'bce = { kind = "formula", reason = "label smoothing 1/8" }',
}
"""Each fork's ``[tool.backprop-check.differences]`` entry, where it declares one."""

SPEC = """
import jax.numpy as jnp
import numpy as np

SOFTPLUS = {"numpy": lambda z: np.logaddexp(0.0, z), "jax": lambda z: jnp.logaddexp(0.0, z)}


def _numpy_smoothed(a, y):
    t = 0.875 * y + 0.0625
    return -t * np.log(a) - (1.0 - t) * np.log1p(-a)


def _jax_smoothed(a, y):
    t = 0.875 * y + 0.0625
    return -t * jnp.log(a) - (1.0 - t) * jnp.log1p(-a)


SMOOTHED_BCE = {
    "numpy": _numpy_smoothed,
    "jax": _jax_smoothed,
    "numpy_from_logits": {"sigmoid": lambda z, y: np.logaddexp(0.0, z) - (0.875 * y + 0.0625) * z},
    "jax_from_logits": {"sigmoid": lambda z, y: jnp.logaddexp(0.0, z) - (0.875 * y + 0.0625) * z},
    "replace": True,
}
"""
"""The harness's spec of the forks' formulas (``fork_spec``, the entry points' module)."""

ENTRY_POINTS = {
    "softplus": ("backprop_harness.activations", "softplus = fork_spec:SOFTPLUS"),
    "softplus_wrong": ("backprop_harness.activations", "softplus = fork_spec:SOFTPLUS"),
    "formula": ("backprop_harness.costs", "bce = fork_spec:SMOOTHED_BCE"),
}
"""Each fork's entry point, where it has a spec for the harness."""


def spec(name: str) -> dict:
    """The keyword arguments of ``fork_spec``'s ``name``, for a registration in this process."""
    space: dict = {}
    exec(compile(SPEC, "fork_spec", "exec"), space)
    return space[name]


def build(kind: str, where: Path, declare: bool = True) -> Path:
    """Fork ``kind`` of :data:`PATCHES` in ``where``: ``backprop/`` patched, ``pyproject.toml``
    with its declared difference (``declare``), and its spec's module and entry point."""
    if kind not in PATCHES:
        raise ValueError(f"kind must be one of {', '.join(PATCHES)}, got {kind!r}")
    where.mkdir(parents=True, exist_ok=True)
    package = where / "backprop"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    for file, text, replacement in PATCHES[kind]:
        path = package / file
        source = path.read_text()
        if text:
            if source.count(text) != 1:
                raise ValueError(f"{file}: {text!r} is not there exactly once")
            source = source.replace(text, replacement)
        else:
            source += textwrap.dedent(replacement)
        path.write_text(source)
    table = DIFFERENCES.get(kind) if declare else None
    (where / "pyproject.toml").write_text(
        '[project]\nname = "myfork"\nversion = "0"\n'
        + (f"\n[tool.backprop-check.differences]\n{table}\n" if table else "")
    )
    if kind in ENTRY_POINTS:
        group, line = ENTRY_POINTS[kind]
        (where / "fork_spec.py").write_text(SPEC)
        info = where / "fork_spec-0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fork-spec\nVersion: 0\n")
        (info / "entry_points.txt").write_text(f"[{group}]\n{line}\n")
    return where


def upstream(where: Path) -> Path:
    """The upstream beside the fork, as the recipe installs it from a git ref into a
    directory of its own (``git archive REF backprop | tar -x -C upstream``): ``where/
    upstream/backprop``, importable as ``upstream.backprop`` from ``where``."""
    target = where / "upstream" / "backprop"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
