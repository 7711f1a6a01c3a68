"""``python -m backprop``: the ``backprop-train`` demo (XOR on the seed's 2-3-2-1 network)."""

from .cli import main

raise SystemExit(main())
