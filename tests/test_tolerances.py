"""The tolerances live in one table (reference/tolerances.py), each with its reason, and no
judging module keeps one of its own."""

import ast
import re
from pathlib import Path

import reference
from reference import tolerances

ROOT = Path(reference.__file__).parent
TOLERANCE_NAME = re.compile(r"^_?[A-Z0-9_]*(RTOL|ATOL|SAFETY|FLOOR|BOUND|ROUNDING)$")


def _assignments(tree: ast.Module):
    """(name, node, the statement after it) of every module-level assignment."""
    body = tree.body
    for i, node in enumerate(body):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name):
                yield target.id, node, body[i + 1] if i + 1 < len(body) else None


def test_every_tolerance_in_the_table_says_why():
    tree = ast.parse(Path(tolerances.__file__).read_text())
    named = 0
    for name, node, after in _assignments(tree):
        if name.isupper() and isinstance(node.value, (ast.Constant, ast.BinOp)):
            named += 1
            assert isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant), name
            assert len(after.value.value.split()) >= 8, f"{name}: its reason is too short"
    assert named >= 20


def test_no_module_defines_a_tolerance_of_its_own():
    """A number that decides a verdict is imported from the table, not written again."""
    table = Path(tolerances.__file__)
    for path in sorted(ROOT.rglob("*.py")):
        if path == table:
            continue
        for name, node, _ in _assignments(ast.parse(path.read_text())):
            if TOLERANCE_NAME.match(name) and isinstance(node.value, (ast.Constant, ast.BinOp)):
                raise AssertionError(f"{path.relative_to(ROOT)}: {name} belongs in tolerances.py")


def test_the_float64_row_is_the_tables_own_numbers():
    row = tolerances.TOLERANCES["float64"]
    assert (row.jax_floor, row.same) == (tolerances.JAX_FLOOR, tolerances.SAME)
    for dtype, row in tolerances.TOLERANCES.items():
        if dtype != "float64":  # lower precisions are looser, never tighter
            assert row.jax_floor > tolerances.JAX_FLOOR and row.same > tolerances.SAME
