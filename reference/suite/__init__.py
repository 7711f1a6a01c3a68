"""The protocol-level property suite, shipped with the package.

Run it against any importable implementation, from any directory::

    python -m pytest --pyargs reference.suite --backprop-impl mymodule
"""
