"""The worker process: the code under test, alone, answering calls of the protocol's members.

It imports NumPy, this folder's guard helpers and the implementation, and nothing else of
the harness: no ``backprop``, no oracles, no judging, no JAX. The harness
(:class:`~reference.boundary.isolation.Worker`) starts it with ``python -c`` and a
connection (:mod:`multiprocessing.connection`) over an inherited socket; the first message
says what to load and under which policy. Then, for each call the harness sends
(``("call", member, args, kwargs)``), the worker calls the member on the arguments it was
sent and answers, as plain data (:mod:`.wire`), the result and the arguments as the member
left them, or what the member raised and where. It knows nothing of networks, seeds,
rubrics or verdicts: a hidden network is a call like any other, and whatever the code does
to this process (patching modules, reading its stack, replacing this loop) cannot change a
verdict, which is computed elsewhere from what comes back.

Under a grading policy (:class:`~reference.boundary.policy.Policy`) the worker sets its
resource limits and installs the policy's audit hook (:pep:`578`) before the submission is
imported; neither can be undone from Python code.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import warnings
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from . import policy as _policy
from .guard import _describe_exception, _ProcessExit, _refuse_exit, user_frame
from .layouts import StructureError
from .loading import ImplementationError, definitions, load_impl
from .wire import dumps, plain

MEMBERS = ("loss", "gradients", "forward", "update")


def _failure(exc: BaseException) -> dict[str, Any]:
    """What a member raised, as the guard would word it."""
    kind = (
        "structure"
        if isinstance(exc, StructureError)
        else "exit"
        if isinstance(exc, SystemExit)
        else "unsupported"
        if isinstance(exc, NotImplementedError)
        else "raised"
    )
    text = str(exc) if kind == "structure" else _describe_exception(exc)
    return {
        "ok": False,
        "kind": kind,
        "text": text,
        "exception": type(exc).__name__,
        "where": user_frame(exc.__traceback__),
    }


def _import_failure(spec: str, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"cannot import {spec!r}: syntax error at {exc.filename}:{exc.lineno}: {exc.msg}"
    where = user_frame(exc.__traceback__)
    text = f"cannot import {spec!r}: the module {_describe_exception(exc)} at import"
    if where:
        text += f" (at {where['file']}:{where['line']}: {where['code']})"
    return text


def _call(impl: Any, member: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    fn = getattr(impl, member, None)
    if not callable(fn):
        return {"ok": False, "kind": "structure", "text": "is not implemented (no callable "
                "member)", "exception": "", "where": None}  # fmt: skip
    np_state = np.geterr()
    exit_ = os._exit
    os._exit = _refuse_exit
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        reply = _failure(exc)
        reply["warnings"] = 0
        return reply
    finally:
        os._exit = exit_
        np.seterr(**np_state)
    return {"ok": True, "value": plain(raw), "after": plain(args),
            "after_keywords": plain(kwargs), "warnings": len(caught)}  # fmt: skip


def serve(conn: Connection) -> None:
    """The worker's life: load the implementation the first message names, then answer
    calls until told to stop or the connection closes."""
    config = conn.recv()
    dump = open(config["dump"], "w")
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    policy = _policy.Policy.from_dict(config["policy"])
    policy.enter()  # resource limits, then the audit hook: before the submission loads
    sys.path.insert(0, config["cwd"])  # as python -m does: a module there imports
    spec = config["spec"]
    np_state, filters, exit_ = np.geterr(), list(warnings.filters), os._exit
    os._exit = _refuse_exit
    try:
        impl = load_impl(spec, protect=False)
    except ImplementationError as exc:
        conn.send_bytes(dumps(("load failed", str(exc), policy.violations)))
        return
    except _ProcessExit as exc:
        conn.send_bytes(dumps(("load failed", _import_failure(spec, exc), policy.violations)))
        return
    except BaseException as exc:  # the module itself failed: say how, briefly
        conn.send_bytes(dumps(("load failed", _import_failure(spec, exc), policy.violations)))
        return
    finally:
        os._exit = exit_
        np.seterr(**np_state)  # what the module set at import is not carried into the calls
        warnings.filters[:] = filters
    ready = {
        "name": getattr(impl, "__name__", None) or type(impl).__name__,
        "members": [m for m in MEMBERS if callable(getattr(impl, m, None))],
        "supports": plain(getattr(impl, "SUPPORTS", None)),
        "locations": definitions(impl),
        "violations": list(policy.violations),
    }
    conn.send_bytes(dumps(("ready", ready)))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, member, args, kwargs, seq = request
        # "calls": one message for many calls of one member (the finite differences' losses),
        # each answered as soon as it is done, so that the harness times each on its own;
        # every answer carries its call's number, so none is taken for another's
        for k, one in enumerate(args if kind == "calls" else [args]):
            reply = _call(impl, member, one, kwargs)
            reply["violations"] = list(policy.violations)
            reply["seq"] = seq + k
            conn.send_bytes(dumps(reply))


def main(fd: int) -> None:
    """The entry point ``python -c`` calls with the inherited socket's descriptor."""
    conn = Connection(fd)
    try:
        serve(conn)
    finally:
        conn.close()
