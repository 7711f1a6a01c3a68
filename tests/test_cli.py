"""backprop-check and backprop-train: every flag, every exit code, the files they write."""

import argparse
import io
import json
import sys
import xml.etree.ElementTree as ET

import pytest
from tiers import slow

import backprop
from backprop import cli as train_cli
from reference.bugs import CATALOG
from reference.formulas.specs import NUMPY_ACTIVATIONS
from reference.frontends import cli, options
from reference.inputs import networks as default_networks
from reference.inputs.penalties import penalty_problems
from reference.inputs.scope import Scope
from reference.run import session


def check(*argv):
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def penalised(impl) -> int:
    """How many networks with an L2 penalty the run adds for ``impl``'s declaration."""
    return len(penalty_problems(0, Scope.read(getattr(impl, "SUPPORTS", None), "SUPPORTS")))


@pytest.fixture(scope="module")
def builtin_run(tmp_path_factory):
    """``backprop-check --networks 2`` (seed 0) and its JSON, run once for the tests below."""
    path = tmp_path_factory.mktemp("builtin") / "a.json"
    code, text = check("--networks", "2", "--json", str(path))
    return code, text, json.loads(path.read_text())


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """``backprop-check --impl reference.bugs:dW2_times_2 --networks 0`` and its JUnit XML, run
    once for the tests below."""
    path = tmp_path_factory.mktemp("broken") / "junit.xml"
    code, text = check(
        "--impl", "reference.bugs:dW2_times_2", "--networks", "0", "--junit-xml", str(path)
    )
    return code, text, path


def test_no_arguments_checks_the_builtin_and_passes(builtin_run):
    code, text, _ = builtin_run
    assert code == 0
    assert "seed 2-3-2-1 tanh/tanh/sigmoid bce" in text and "err FD" in text
    last = text.strip().splitlines()[-1]
    # every seed combination of the tables, two random, and the penalised ones it declares
    n = default_networks.seed_combinations() + 2 + penalised(backprop)
    assert last.startswith(f"PASS: backprop (built-in): {n}/{n} networks")


def test_a_broken_implementation_exits_1_and_says_where(broken_run):
    code, text, _ = broken_run
    assert code == 1
    assert "only layer 2's dW is wrong: dW is off by a constant factor of 2" in text
    assert text.strip().splitlines()[-1].startswith("FAIL: reference.bugs:dW2_times_2")


def test_quiet_prints_failures_and_the_summary_only():
    code, text = check("--impl", "reference.bugs:update_wrong_sign", "--networks", "0", "--quiet")
    assert code == 1 and "err FD" not in text
    assert "FAIL update:" in text and "moved up the gradient" in text


def test_verbose_prints_every_table_and_check():
    code, text = check("--networks", "1", "--verbose")
    # a table per network: every seed network, one random, the penalised ones
    n = default_networks.seed_combinations() + 1 + penalised(backprop)
    assert code == 0 and text.count("err FD") == n and "relu'(0)" in text


def test_quiet_and_verbose_together_is_a_usage_error(capsys):
    assert check("--quiet", "--verbose")[0] == 2
    assert "contradict" in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec, says",
    [
        ("no.such.module", "cannot import module 'no.such.module'"),
        ("backprop:nope", "has no attribute 'nope'"),
    ],
)
def test_an_unimportable_implementation_is_a_usage_error(capsys, spec, says):
    assert check("--impl", spec)[0] == 2
    assert says in capsys.readouterr().err


def test_a_bad_flag_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        check("--frobnicate")
    assert exc.value.code == 2


def test_seed_changes_the_random_networks(tmp_path, builtin_run):
    check("--networks", "2", "--seed", "1", "--json", str(tmp_path / "b.json"))
    a = builtin_run[2]["networks"][-1]["network"]  # seed 0
    b = json.loads((tmp_path / "b.json").read_text())["networks"][-1]["network"]
    assert a != b


def test_json_holds_every_report(tmp_path):
    path = tmp_path / "out" / "result.json"
    code, _ = check(
        "--impl", "reference.bugs:bias_grad_mean", "--networks", "1", "--json", str(path)
    )
    data = json.loads(path.read_text())
    n = default_networks.seed_combinations() + 1 + penalised(CATALOG["bias_grad_mean"])
    assert code == 1 and data["ok"] is False and len(data["networks"]) == n
    first = data["networks"][0]
    assert {"ok", "attribution", "layers", "loss", "kinks_excluded"} <= set(first)
    assert first["layers"][1]["diagnosis"].startswith("db is off by a constant factor of 1/m")
    assert any(c["name"] == "purity" for c in data["checks"])


def test_junit_xml_parses_and_carries_the_diagnosis(broken_run):
    code, _, path = broken_run
    root = ET.parse(path).getroot()
    assert code == 1 and root.tag == "testsuites"
    cases = root.findall("testsuite/testcase")
    assert int(root.get("tests")) == len(cases) and int(root.get("failures")) > 0
    failed = [c for c in cases if c.find("failure") is not None]
    layer2 = [c for c in failed if c.get("name") == "layer 2 W"]
    assert layer2 and "off by a constant factor of 2" in layer2[0].find("failure").get("message")
    assert all(c.get("name") != "layer 1 W" for c in failed)


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    code, _text = check(
        "--impl", "reference.bugs:tanh_grad_wrong_cache", "--networks", "0", "--plot", str(tmp_path)
    )
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert code == 1 and "fd_error_vs_step.png" in pngs and "gradients_1.png" in pngs
    assert all((tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_plots_without_matplotlib_say_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert check("--networks", "0", "--plot", str(tmp_path))[0] == 2
    assert "pip install 'backprop-harness[plot]'" in capsys.readouterr().err


def test_golden_round_trip_and_drift(tmp_path):
    path = tmp_path / "golden.npz"
    code, text = check("--golden", "save", str(path))
    assert code == 0 and path.exists() and "saved the gradients of" in text
    code, text = check("--golden", "compare", str(path))
    assert code == 0 and "DRIFT" not in text and "same gradients as" in text
    code, text = check("--impl", "reference.bugs:dW2_times_2", "--golden", "compare", str(path))
    assert code == 1 and "gradients DRIFTED" in text
    drifted = [line for line in text.splitlines() if line.strip().startswith("DRIFT")]
    assert drifted and all("layer 2 dW" in line for line in drifted)
    assert "drift 1.00e+00" in drifted[0]


def test_golden_compare_without_a_file_is_a_usage_error(tmp_path, capsys):
    assert check("--golden", "compare", str(tmp_path / "missing.npz"))[0] == 2
    assert "does not exist" in capsys.readouterr().err
    assert check("--golden", "keep", str(tmp_path / "x.npz"))[0] == 2


def test_explain_names_every_connection_of_the_seed_network():
    code, text = check("--explain")
    assert code == 0
    assert "W^2[1, 0]: layer 1, index 0 -> layer 2, index 1" in text
    assert "dJ/dW^2 = dZ^2 (A^1)^T" in text and "(W^3)^T dZ^3" in text
    assert text.count("->") == 3 * 2 + 2 * 3 + 1 * 2


def test_explain_states_every_activation_and_cost_of_the_tables():
    """Each name with its formulas, taken from the tables' own docstrings; output-only and
    kinked activations and fused cost forms said as such."""
    import inspect

    import backprop
    from reference.inputs.problems import output_only

    def first(fn):
        return " ".join(inspect.getdoc(fn).split("\n\n")[0].split())

    code, text = check("--explain")
    assert code == 0
    for name, entry in backprop.ACTIVATIONS.items():
        assert f"  {name}" in text and first(entry.fn) in text
        assert first(entry.vjp if entry.vjp is not None else entry.grad) in text
        assert (f"  {name}  (output layer only" in text) == output_only(name)
    for name, cost in backprop.COSTS.items():
        assert f"  {name}" in text and first(cost.fn) in text and first(cost.grad) in text
        for activation, fused in cost.fused.items():
            assert f"with a {activation} output, from the logits" in text
            assert first(fused.fn) in text and first(fused.delta) in text
    assert text.count("kinks at z = 0:") == sum(
        1 for n in backprop.ACTIVATIONS if 0.0 in NUMPY_ACTIVATIONS[n].kinks
    )


def test_bugs_on_part_of_the_catalog_prints_its_matrix_and_json(tmp_path, monkeypatch):
    """``--bugs`` through the command on two of the catalogue's mistakes; the whole catalogue:
    the slow tier's test below, and tests/test_catalog.py in process."""
    from reference.bugs import detect

    part = dict(sorted(CATALOG.items())[:2])
    monkeypatch.setattr(detect, "CATALOG", part)
    path = tmp_path / "bugs.json"
    code, text = check("--bugs", "--json", str(path))
    bugs = json.loads(path.read_text())["bugs"]
    assert code == 0 and "2 of 2 mistakes detected" in text, text
    assert [b["name"] for b in bugs] == sorted(part) and all(b["detected"] for b in bugs)
    assert "the correct base passes every check" in text


@slow
def test_bugs_prints_the_matrix_and_writes_json(tmp_path):
    path = tmp_path / "bugs.json"
    code, text = check("--bugs", "--json", str(path))
    bugs = json.loads(path.read_text())["bugs"]
    n = len(CATALOG)
    assert code == 0 and f"{n} of {n} mistakes detected" in text
    assert len(bugs) >= 20 and all(b["detected"] for b in bugs)
    assert {"name", "detected", "caught_by", "diagnosis"} <= set(bugs[0])


def test_train_default_demo_converges_on_xor():
    out = io.StringIO()
    assert train_cli.main([], out=out) == 0
    text = out.getvalue()
    assert "xor: 2-3-2-1 [tanh, tanh, sigmoid] bce" in text
    assert "(converged)" in text and "accuracy 100.0%" in text


def test_train_flags_and_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = io.StringIO()
    png = tmp_path / "circles.png"
    code = train_cli.main(
        [
            "--dataset",
            "circles",
            "--hidden",
            "6",
            "--activations",
            "relu,sigmoid",
            "--cost",
            "mse",
            "--learning-rate",
            "1.0",
            "--batch-size",
            "32",
            "--epochs",
            "5",
            "--seed",
            "3",
            "--plot",
            str(png),
        ],
        out=out,
    )
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert "(no_more_batches)" in out.getvalue()


def test_train_max_iterations_and_bad_values():
    out = io.StringIO()
    assert train_cli.main(["--max-iterations", "3", "--tolerance", "0"], out=out) == 0
    assert "after 3 updates" in out.getvalue() and "(max_iterations)" in out.getvalue()
    assert train_cli.main(["--learning-rate", "-1"], out=io.StringIO()) == 2
    with pytest.raises(SystemExit):
        train_cli.main(["--hidden", "3,x"], out=io.StringIO())


def test_progress_bar_only_on_a_terminal():
    stream = io.StringIO()
    bar = session.Progress(10, enabled=True, stream=stream)
    bar.start -= 5
    bar.update(5)
    assert stream.getvalue() == ""  # not a terminal

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = session.Progress(10, enabled=True, stream=tty)
    bar.start -= 5
    bar.update(5)
    assert "5/10" in tty.getvalue()
    quiet = Tty()
    session.Progress(10, enabled=False, stream=quiet).update(5)
    assert quiet.getvalue() == ""


def test_without_jax_backprop_check_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    from reference.frontends import launch

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    assert launch.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "backprop-harness[check]"' in err


def test_one_mistake_shows_once_with_the_networks_it_affects(tmp_path):
    import re

    path = tmp_path / "r.json"
    code, text = check("--impl", "reference.bugs:dW2_times_2", "--in-process", "--quiet",
                       "--json", str(path))  # fmt: skip
    failing = [n for n in json.loads(path.read_text())["networks"] if not n["ok"]]
    groups = [int(n) for n in re.findall(r"^  FAIL \((\d+) networks?: ", text, re.M)]
    assert code == 1 and len(failing) > 3
    assert sum(groups) == len(failing) and len(groups) < len(failing)
    assert text.count("only layer 2's dW is wrong") == len(groups)


def test_the_default_seed_networks_cover_every_pair_of_the_tables():
    """Every pair of choices (the two hidden activations, each with the output and its cost)
    in some seed network; every combination of the seed's own activations; no duplicate, no
    output-only activation in a hidden layer; the full product while it is small."""
    import itertools

    import backprop
    from reference.inputs.combinations import SEED_TABLE, SEEDS_OWN, seed_combinations
    from reference.inputs.problems import compatible_costs, output_only

    names = sorted(backprop.ACTIVATIONS)
    combos = seed_combinations(names)
    hidden = [n for n in names if not output_only(n)]
    heads = [(out, cost) for out in names for cost in compatible_costs(out)]
    assert combos[0] == SEEDS_OWN and len(set(combos)) == len(combos)
    assert {acts[:2] for acts, _ in combos} == set(itertools.product(hidden, hidden))
    for k in (0, 1):
        assert {(acts[k], acts[2], cost) for acts, cost in combos} == {
            (h, out, cost) for h in hidden for out, cost in heads
        }
    seeds = [(acts, cost) for acts, cost in combos if set(acts) <= set(SEED_TABLE)]
    assert set(seeds) == set(seed_combinations(list(SEED_TABLE)))
    assert len(seed_combinations(list(SEED_TABLE))) == sum(
        len(compatible_costs(out)) for *_, out in itertools.product(SEED_TABLE, repeat=3)
    )


# --- subcommands ---------------------------------------------------------------------------


def _options(parser):
    """Every ``--option`` of ``parser`` (of a subcommand's parser: its own only)."""
    return {f for a in parser._actions for f in a.option_strings if f.startswith("--")} - {"--help"}


def _subparsers():
    parser = options.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_subcommand_refuses_the_options_of_the_others(capsys):
    """A combination that means nothing (--shard with golden, --against with bugs) is a usage
    error by construction, naming the subcommand: every option of the flat form that a
    subcommand does not hold is refused by it."""
    everything = _options(options.legacy_parser())
    subparsers = _subparsers()
    assert set(subparsers) == set(options.SUBCOMMANDS)
    positional = {"against": ["backprop"], "golden": ["save", "x.npz"]}
    for name, parser in subparsers.items():
        own = _options(parser)
        assert own < everything | {"--no-layer-view"}, name
        for option in sorted(everything - own):
            with pytest.raises(SystemExit) as stop:
                options.parse([name, *positional.get(name, []), option, "1"])
            assert stop.value.code == 2
            assert f"not options of {name}" in capsys.readouterr().err, (name, option)


@pytest.mark.parametrize(
    ("flat", "sub"),
    [
        (["--bugs", "--json", "m.json"], ["bugs", "--json", "m.json"]),
        (["--explain"], ["explain"]),
        (["--golden", "compare", "g.npz", "--golden-rtol", "1e-6", "--impl", "m"],
         ["golden", "compare", "g.npz", "--golden-rtol", "1e-6", "--impl", "m"]),
        (["--against", "up", "--impl", "m", "--jobs", "2", "--shard", "1/2"],
         ["against", "up", "--impl", "m", "--jobs", "2", "--shard", "1/2"]),
        (["--gradescope", "r.json", "--impl", "m", "--user", "nobody"],
         ["grade", "--gradescope", "r.json", "--impl", "m", "--user", "nobody"]),
        (["--impl", "m", "--seed", "3", "--activations", "tanh"],
         ["check", "--impl", "m", "--seed", "3", "--activations", "tanh"]),
    ],
)  # fmt: skip
def test_the_old_flags_mean_what_their_subcommand_means_with_a_note(flat, sub, capsys):
    """The flag form of before runs the same (every option the same value), and a mode
    flag says once, on stderr, which subcommand it is now."""
    notes = io.StringIO()
    old, new = options.parse(flat, notes), options.parse(sub)
    positional = {"upstream", "mode", "path"}
    assert {k: v for k, v in vars(new).items() if k not in positional} == vars(old)
    mode = [flag for flag in options.MODE_FLAGS if f"--{flag}" in flat]
    assert notes.getvalue().count("note:") == len(mode)
    for flag in mode:
        assert f"--{flag} is now `backprop-check {options.MODE_FLAGS[flag]}`" in notes.getvalue()


def test_no_subcommand_checks_and_explain_prints_the_same_either_way():
    assert options.parse([]).command == "check"
    texts = []
    for argv in (["explain"], ["--explain"]):
        out = io.StringIO()
        assert cli.main(argv, out=out) == 0
        texts.append(out.getvalue())
    assert texts[0] == texts[1] and "W^1 is 3x2" in texts[0]


def test_grade_without_a_target_is_a_usage_error(capsys):
    assert cli.main(["grade"], out=io.StringIO()) == 2
    assert "go with --gradescope PATH or --submissions DIR" in capsys.readouterr().err
