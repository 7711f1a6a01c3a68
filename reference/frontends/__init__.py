"""The front-ends: the ``backprop-check`` command (subcommands) and the pytest plugin."""
