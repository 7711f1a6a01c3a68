"""Float64 for the harness's own JAX computations, and for nothing else in the process.

JAX computes in float32 unless ``jax_enable_x64`` is on. The JAX oracle is only worth
its ~1e-12 agreement in double precision, but switching the flag for the whole process
would change every other JAX computation in it (another project's tests, a user's
notebook). :func:`enable_x64` switches it on for a ``with`` block, or for each call of a
function it decorates, and restores the caller's setting afterwards::

    with enable_x64():
        g = jax.grad(f)(np.ones(3))      # float64 inside the block

A function compiled with ``jax.jit`` is traced again for each setting, so a jitted
function called inside the block computes in float64 whatever it was built under.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def enable_x64() -> Iterator[None]:
    """Turn ``jax_enable_x64`` on inside the block; the previous setting returns on exit.

    Uses ``jax.enable_x64`` where it exists, else ``jax.experimental.enable_x64``
    (JAX 0.4.20 and later, before the former was public).
    """
    import jax

    switch = getattr(jax, "enable_x64", None)
    if switch is None:
        from jax.experimental import enable_x64 as switch
    with switch(True):
        yield
