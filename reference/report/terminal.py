"""Text bound for a terminal (or a CI log), made safe the way the JUnit writer's is.

Whatever ``backprop-check`` prints can hold text the implementation made: an exception's
message, a name, what it printed. Such text may hold a lone surrogate (``"\\udcff"``, which
no UTF-8 stream can encode: printing it ends the run in a ``UnicodeEncodeError``), control
characters, or terminal escape sequences (which could recolour, move the cursor, or hide a
line). :func:`terminal_text` drops escape sequences and replaces every other control
character but tab and line feed, and every lone surrogate, with U+FFFD, as
:func:`~reference.report.junit.xml_text` does for XML; :class:`SafeWriter` applies it to
everything written to a stream, and what the stream's encoding still cannot hold is
replaced too.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
"""CSI sequences (colours, cursor moves) and OSC sequences (titles, hyperlinks)."""

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls but tab and line feed, DEL, C1 controls, and lone surrogates (a pair that
makes one character is never two ``str`` code points in Python)."""


def terminal_text(text: str) -> str:
    """``text`` fit for a terminal: escape sequences dropped, other control characters
    (carriage return included: it would let a line overwrite another) and lone
    surrogates replaced with U+FFFD; tab and line feed kept."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _UNSAFE.sub("\ufffd", _ESCAPE.sub("", text))


class SafeWriter:
    """A text stream whose ``write`` passes :func:`terminal_text` of what it is given to
    ``stream`` and replaces what the stream's encoding cannot hold (an ASCII locale, say);
    every other attribute is the stream's."""

    def __init__(self, stream: TextIO) -> None:
        if not callable(getattr(stream, "write", None)):
            raise TypeError(f"stream must have a write method, got {type(stream).__name__}")
        self.stream = stream

    def write(self, text: str) -> int:
        safe = terminal_text(text)
        encoding = getattr(self.stream, "encoding", None)
        if encoding:
            safe = safe.encode(encoding, "replace").decode(encoding)
        self.stream.write(safe)
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, getvalue, ...
        return getattr(self.stream, name)
