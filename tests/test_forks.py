"""Fork branches built from patches (``tests/outside/forks.py``), run through CONTRIBUTING's
fork workflow: the check, ``--against`` the upstream installed beside the fork, and
``--golden compare`` against the upstream's golden file. Regressions exit 1 with the place
named; changes the fork declares exit 0 with every declared difference listed.

One test runs the documented commands as a fork's CI does (the fork installed as
``backprop``, the upstream as ``upstream.backprop`` from a directory of its own); the others
run the same commands in this process on the fork's package by path, which keeps them small.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiers import first_quick

import backprop
import reference
import reference.registry
from reference.frontends import cli
from reference.inputs.problems import output_only
from reference.run import golden as golden_files
from tests.outside import forks

ROOT = Path(reference.__file__).resolve().parents[1]

# One hidden activation and no penalty; with SEED or OUTPUTS below, one output activation and
# one cost: a run of a few networks, with several outputs where the case needs them.
SMALL = ["--penalties=", "--activations", "tanh"]
SEED = ["--output-activations", "sigmoid", "--costs", "bce", "--networks", "0"]
OUTPUTS = ["--output-activations", "tanh", "--costs", "mse", "--outputs", "3", "--networks", "1"]


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """The upstream's golden file, saved once by the upstream (this repository's backprop)."""
    path = tmp_path_factory.mktemp("upstream") / "golden.npz"
    code, text = run_here("--golden", "save", str(path))
    assert code == 0, text
    return path


def run_here(*argv):
    out = io.StringIO()
    code = cli.main([*argv, "--in-process"], out=out)
    return code, out.getvalue()


def fork_here(tmp_path, monkeypatch, kind, declare=True):
    """Fork ``kind`` and the upstream beside it in ``tmp_path``, run from there (its
    pyproject.toml read): the fork's package and the upstream's by path."""
    where = forks.build(kind, tmp_path / kind, declare=declare)
    up = forks.upstream(where)
    monkeypatch.chdir(where)
    return str(where / "backprop"), str(up)


@contextlib.contextmanager
def spec_of(kind):
    """The harness's spec of fork ``kind``'s formula, registered in this process (what its
    entry point does in a fork's environment)."""
    with contextlib.ExitStack() as stack:
        if kind.startswith("softplus"):
            stack.enter_context(
                reference.registry.registered_activation("softplus", **forks.spec("SOFTPLUS"))
            )
        if kind == "formula":
            stack.enter_context(
                reference.registry.registered_cost("bce", **forks.spec("SMOOTHED_BCE"))
            )
        yield


def checks_of(path):
    return json.loads(Path(path).read_text())["checks"]


# --- the documented workflow, as a fork's CI runs it ----------------------------------------


def _python(cwd, *argv):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update(PYTHONPATH=os.pathsep.join([str(cwd), str(ROOT)]))
    return subprocess.run(
        [sys.executable, "-m", "reference.frontends.cli", *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_a_regression_only_several_outputs_show_is_caught_by_each_command(tmp_path, golden):
    """The output delta summed over the outputs: right with one output, wrong with several.
    The check names the output delta, --against the layer where fork and upstream part
    (backing the upstream), --golden compare the drifting networks: exactly the golden
    networks with several outputs whose output delta is not a fused form; and an upstream
    that cannot be imported stops the run before the fork's check starts."""
    where = forks.build("outputs", tmp_path / "fork")
    forks.upstream(where)
    scope = [*SMALL, *OUTPUTS]
    done = _python(where, "--against", "upstream.backprop", *scope, "--quiet")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "look at the output delta dZ^" in done.stdout
    assert "backprop and upstream.backprop part at layer" in done.stdout
    assert "the oracles back upstream.backprop" in done.stdout

    report = tmp_path / "golden.json"
    done = _python(where, "--golden", "compare", str(golden), "--json", str(report), "--quiet")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    drifted = {c["where"] for c in checks_of(report) if c["ok"] is False}
    assert drifted == {
        p.name for p in golden_files.golden_problems()
        if p.Y.shape[0] > 1 and p.activations[-1] not in backprop.COSTS[p.cost].fused
        and not output_only(p.activations[-1])
    }  # fmt: skip
    assert "backprop-check golden compare " in json.loads(report.read_text())["command"]

    stopped = tmp_path / "stopped.json"  # the fork's run writes it as it goes
    done = _python(where, "--against", "nothere.backprop", *scope, "--json", str(stopped))
    assert done.returncode == 2
    assert not stopped.exists()  # stopped before the fork's run began
    assert "no module named 'nothere'" in done.stderr and "The upstream beside" in done.stderr


# --- the fork cases, the same commands in this process --------------------------------------


@pytest.mark.parametrize(
    "kind, declare, scope, status, says",
    first_quick(
        [
            ("softplus", True, SEED, 0, "NOTE declared softplus: with {up}: new in the fork"),
            ("softplus_wrong", True, SEED, 1, "off by the same factor 1.1"),
            ("convention", True, OUTPUTS, 0, "compared up to its factor"),
            ("convention", False, OUTPUTS, 1, "an undeclared difference, which the oracles pass"),
            ("softplus", False, SEED, 0, None),
            ("formula", True, SEED, 0,
             "NOTE declared bce: with {up}: a changed formula (label smoothing 1/8)"),
        ],
        quick=4,
        unpack=True,
    ),
)  # fmt: skip
def test_each_fork_against_its_upstream(tmp_path, monkeypatch, kind, declare, scope, status, says):
    """Declared changes pass with the difference listed; a wrong one and an undeclared one
    fail; a name the upstream lacks, declared or not, never fails its networks."""
    impl, up = fork_here(tmp_path, monkeypatch, kind, declare)
    if kind.startswith("softplus"):
        scope = [*scope, "--activations", "softplus,tanh"]
    report = tmp_path / "r.json"
    with spec_of(kind):
        code, text = run_here("--impl", impl, "--against", up, *SMALL, *scope,
                              "--json", str(report), "--quiet")  # fmt: skip
    assert code == status, text
    if says:
        assert says.format(up=up) in text, text
    found = checks_of(report)
    same = [c for c in found if c["name"] == f"same as {up}"]
    assert same, found
    if status == 0:  # nor a warning: what is kept apart is kept out of every comparison
        assert not [c for c in found if c["name"].startswith("same") and c["ok"] is False]
    declared = forks.DIFFERENCES.get(kind) if declare else None
    listed = [c for c in found if c["name"].startswith("declared ")]
    assert len(listed) == (1 if declared else 0)
    if kind.startswith("softplus"):  # never failed for the name the upstream lacks
        uses = [c for c in same if "softplus" in c["where"]]
        assert uses and all(c["ok"] is None for c in uses), uses
        assert (
            "declared" in uses[0]["message"]
            if declare
            else "lacks 'softplus'" in uses[0]["message"]
        )
    if kind == "softplus_wrong":
        failing = [n["name"] for n in json.loads(report.read_text())["networks"] if not n["ok"]]
        assert failing and all("softplus" in name for name in failing)
        assert not any(c["ok"] is False for c in same)  # the comparison is not what fails


def test_a_golden_file_from_before_a_new_activation_says_which_flags_compare_it(
    tmp_path, monkeypatch, golden, capsys
):
    impl, _ = fork_here(tmp_path, monkeypatch, "softplus")
    with spec_of("softplus"):
        assert run_here("--impl", impl, "--golden", "compare", str(golden))[0] == 2
        err = capsys.readouterr().err
        assert "records the networks of these names only: compare it with --activations" in err
        flags = err.split("compare it with ")[1].split()
        assert "softplus" not in " ".join(flags)
        code, text = run_here("--impl", impl, "--golden", "compare", str(golden), *flags)
    assert code == 0, text
    assert "same gradients as" in text


def test_a_float32_fork_drifts_within_the_default_tolerance_of_its_precision(
    tmp_path, monkeypatch, golden
):
    impl, _ = fork_here(tmp_path, monkeypatch, "float32")
    code, text = run_here("--impl", impl, "--golden", "compare", str(golden), "--quiet")
    assert code == 0, text
    assert f"--golden-rtol {golden_files.golden_rtol('float32'):g})" in text
    rtol = f"{golden_files.golden_rtol('float64'):g}"  # the float64 default drifts
    code, text = run_here("--impl", impl, "--golden", "compare", str(golden), "--golden-rtol", rtol)
    assert code == 1 and "gradients DRIFTED" in text
