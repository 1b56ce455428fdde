"""Where the shell's lines come from: a terminal or a pipe.

At a terminal the prompt (`@ada> `) is shown before reading, through `input()` with `readline`
loaded, so the line can be edited and earlier lines come back with the arrow keys; Ctrl-C
raises `KeyboardInterrupt` (the shell drops the line) and Ctrl-D gives `None` (the shell
leaves). From a pipe or a file nothing waits for a person, so nothing is shown before a
line is read; the shell prints each line after its prompt instead, and the output reads as a
transcript of the session (`@ada> /invite`).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TextIO


class Lines:
    def __init__(self, source: TextIO) -> None:
        self.source = source
        self.terminal = source is sys.stdin and _isatty(source)
        if self.terminal:
            # Loading readline gives input() line editing and history; where it is missing
            # (Windows) input() still works, without them.
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401

    def read(self, prompt: str) -> str | None:
        """The next line without its line break, or None at the end (Ctrl-D, end of input)."""
        if self.terminal:
            try:
                return input(prompt)
            except EOFError:
                print(flush=True)  # Ctrl-D leaves the cursor after the prompt
                return None
        raw = self.source.readline()
        return raw.rstrip("\r\n") if raw else None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
