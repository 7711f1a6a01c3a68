"""The worker as an implementation server: what crosses the boundary, and how.

The worker runs the code under test and answers member calls with plain data; the judge
stays in this process. These tests check the wire (nothing but plain data is read back), the
batching of the finite differences' loss calls, and that what the code does to its own
arguments in the worker is seen here as if it ran here."""

from __future__ import annotations

import os
import pickle
import textwrap

import numpy as np
import pytest

import backprop
from reference.boundary.guard import Guarded, ImplementationFailed
from reference.boundary.isolation import IMPORT_TIME, Failed, LoadFailed, Worker
from reference.boundary.wire import Opaque, UnsafeMessage, loads, plain
from reference.inputs.problems import seed_problem
from reference.oracles.finite_diff import numerical_gradients
from reference.run.jobs import check_network


def _module(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo exploited",))


def test_the_wire_reads_plain_data_and_refuses_anything_that_names_code():
    data = {"value": [(np.ones((2, 3)), np.float32(1.5))], "text": "x", "n": 3, "o": Opaque("Foo")}
    back = loads(pickle.dumps(data, protocol=4))
    assert back["value"][0][0].shape == (2, 3) and back["value"][0][1].dtype == np.float32
    assert back["o"].type_name == "Foo"
    for crafted in (_Exploit(), {"ok": True, "value": _Exploit()}, Guarded):
        with pytest.raises(UnsafeMessage):
            loads(pickle.dumps(crafted, protocol=4))
    with pytest.raises(UnsafeMessage):
        loads(b"not a pickle")


def test_plain_keeps_dtypes_and_names_what_it_cannot_send():
    jnp = pytest.importorskip("jax.numpy")
    got = plain({"a": jnp.ones((2, 2), dtype=jnp.float32), "b": {1, 2}, "c": object()})
    assert isinstance(got["a"], np.ndarray) and got["a"].dtype == np.float32
    assert sorted(got["b"]) == [1, 2]
    assert isinstance(got["c"], Opaque) and got["c"].type_name == "object"


def test_finite_differences_of_calls_in_a_worker_are_those_in_this_process(tmp_path):
    p = seed_problem()
    here = numerical_gradients(backprop, p.params, p.X, p.Y, **p.kwargs(), method="calls")
    with Worker("backprop") as worker:
        before = worker.requests

        def calls(impl):
            return numerical_gradients(impl, p.params, p.X, p.Y, **p.kwargs(), method="calls")

        there = worker.run(calls)
        sent = worker.requests - before
    for (a, b), (c, d) in zip(here.grads, there.grads):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    calls = sum(W.size + b.size for W, b in p.params) * 3
    # one message per parameter array (and one for J at theta), not one per perturbed point
    assert sent <= 2 * len(p.params) + 1 < calls


def test_what_a_member_does_to_its_arguments_in_the_worker_is_seen_here(tmp_path):
    spec = _module(
        tmp_path,
        "mutates",
        """
        import warnings
        import backprop
        def loss(params, X, Y, **kw):
            return backprop.loss(params, X, Y, **kw)
        def gradients(params, X, Y, **kw):
            grads = backprop.gradients(params, X, Y, **kw)
            params[0][0][0, 0] += 1.0  # in place: the caller's W would change
            warnings.warn("from the code under test")
            return grads
    """,
    )
    p = seed_problem()
    with Worker(spec) as worker:
        worker.run(check_network, p, False)
        impurities = worker.run(lambda impl: [i.describe() for i in impl.impurities])
    assert any("layer 1's W" in text for text in impurities), impurities
    assert worker.warnings >= 1  # counted, not printed


def test_a_worker_that_sends_code_instead_of_data_is_a_crash_not_a_run(tmp_path):
    spec = _module(
        tmp_path,
        "forger",
        """
        import os, pickle
        import backprop
        from reference.boundary import server
        class Exploit:
            def __reduce__(self):
                return (os.system, ("touch " + os.path.join(os.getcwd(), "exploited"),))
        loss = backprop.loss
        def gradients(params, X, Y, **kw):  # from now on, every reply is the exploit
            server.dumps = lambda message: pickle.dumps({"ok": True, "value": Exploit()})
            return backprop.gradients(params, X, Y, **kw)
    """,
    )
    p = seed_problem()
    with Worker(spec) as worker:
        done = worker.run(check_network, p, False)
    assert isinstance(done, Failed) and "protocol" in done.finding.message
    assert not (tmp_path / "exploited").exists() and not os.path.exists("exploited")


def test_a_call_that_hangs_is_named_with_its_line_and_the_next_job_gets_a_fresh_worker(tmp_path):
    spec = _module(
        tmp_path,
        "hangs_once",
        """
        import os
        import backprop
        loss = backprop.loss
        def gradients(params, X, Y, **kw):
            if not os.path.exists(os.path.join(os.path.dirname(__file__), "done")):
                open(os.path.join(os.path.dirname(__file__), "done"), "w").close()
                while True:
                    pass
            return backprop.gradients(params, X, Y, **kw)
    """,
    )
    p = seed_problem()
    with Worker(spec, timeout=1.0) as worker:
        done = worker.run(check_network, p, False)
        assert isinstance(done, Failed) and done.finding.kind == "timeout"
        assert done.finding.where and done.finding.where["code"] in ("while True:", "pass")
        report, _ = worker.run(check_network, p, False)
    assert report.ok and worker.restarts == 1


def test_a_worker_budget_counts_the_code_s_time_and_names_that_limit(tmp_path):
    spec = _module(
        tmp_path,
        "slow",
        """
        import time
        import backprop
        loss = backprop.loss
        def gradients(params, X, Y, **kw):
            time.sleep(0.3)
            return backprop.gradients(params, X, Y, **kw)
    """,
    )
    p = seed_problem()
    with Worker(spec, timeout=5.0, budget=0.5) as worker:
        results = [worker.run(check_network, p, False) for _ in range(3)]
    failed = [r for r in results if isinstance(r, Failed)]
    assert failed and "for the whole grading" in failed[-1].finding.message
    assert worker.busy >= 0.5


def test_an_import_that_hangs_stops_at_the_budget_not_at_the_import_s_own_allowance(tmp_path):
    """An import gets IMPORT_TIME (more than a call's limit), but never more than what is
    left of the whole grading's wall time: a teacher's limit holds from the first line."""
    spec = _module(tmp_path, "hangs_at_import", "while True:\n    pass\n")
    budget = 1.0
    assert budget < IMPORT_TIME
    # without the cap it would say "did not return within 60 s", a minute later
    with pytest.raises(LoadFailed, match=f"wall-time limit of {budget:g} s for the whole grading"):
        Worker(spec, timeout=0.5, budget=budget).start()


def test_an_implementation_error_in_the_worker_names_the_user_s_line(tmp_path):
    spec = _module(
        tmp_path,
        "raises",
        """
        import backprop
        loss = backprop.loss
        def gradients(params, X, Y, **kw):
            raise ValueError("shapes do not align")
    """,
    )
    p = seed_problem()
    with Worker(spec) as worker:
        failure = worker.run(lambda impl: _failure(impl, p))
    assert failure.kind == "raised" and "shapes do not align" in failure.message
    assert failure.where["file"] == spec and "raise ValueError" in failure.where["code"]


def _failure(impl, p):
    try:
        impl.gradients(p.params, p.X, p.Y, **p.kwargs())
    except ImplementationFailed as failed:
        return failed.finding
    raise AssertionError("no failure")


def test_an_extra_answer_from_the_worker_is_a_broken_protocol_not_a_shifted_one(tmp_path):
    spec = _module(
        tmp_path,
        "doubler",
        """
        import gc, pickle
        from multiprocessing.connection import Connection
        import backprop
        loss = backprop.loss
        def gradients(params, X, Y, **kw):
            grads = backprop.gradients(params, X, Y, **kw)
            for conn in [o for o in gc.get_objects() if isinstance(o, Connection)]:
                # an answer the harness did not ask for, ahead of the real one
                conn.send_bytes(pickle.dumps({"ok": True, "value": grads, "seq": 10**6}))
            return grads
    """,
    )
    p = seed_problem()
    with Worker(spec) as worker:
        done = worker.run(check_network, p, False)
    assert isinstance(done, Failed) and "not the one to this call" in done.finding.message
