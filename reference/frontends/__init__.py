"""The front-ends: the ``backprop-check`` command and the pytest plugin."""
