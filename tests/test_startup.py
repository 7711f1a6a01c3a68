"""What the default ``backprop-check`` run's own process imports: the command line, the
boundary and the judging, not JAX, which only the worker process needs (it imports it at its
first check)."""

import subprocess
import sys

SCRIPT = """
import sys
import reference.frontends.cli, reference.run.jobs, reference.judging.checker
import reference.registry, reference.oracles.numpy_model
from reference.formulas import specs
# every spec read, and the registry's names: the built-ins' JAX twins stay names till used
assert [list(map(vars, t.values())) for t in (specs.ACTIVATION_SPECS, specs.COST_SPECS)]
assert reference.registry.activation_names() and dict(specs.NUMPY_ACTIVATIONS)
print(sorted(m for m in sys.modules if m == "jax" or m.startswith("jax.")))
"""


def test_the_cli_process_does_not_import_jax():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_first_check_imports_the_jax_model():
    import numpy as np

    import backprop
    from reference.judging.checker import check_gradients
    from reference.oracles.jax_model import jax_model

    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(2, 2)), rng.normal(size=(2, 1)))]
    X, Y = rng.normal(size=(2, 3)), rng.uniform(size=(2, 3))
    kw = {"activations": ["tanh"], "cost": "mse"}
    report = check_gradients(backprop, params, X, Y, **kw)
    assert report.ok
    assert abs(report.loss["jax"] - jax_model(params, X, Y, **kw).loss) == 0.0
