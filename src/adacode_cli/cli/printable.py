"""Text for people, safe to print whatever file names it holds (no rich, no torch: the entry
point uses it for its one-line errors)."""

from __future__ import annotations

# C0 and C1 control characters and DEL -> a visible escape.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`): a file name holding a newline
    or a terminal escape sequence can neither split a report line in two nor drive the
    terminal."""
    return text.translate(_CONTROL)


def printable_lines(text: str) -> str:
    """`printable`, line by line: a message of several lines (a list of problems, a traceback)
    keeps its line breaks."""
    return "\n".join(printable(line) for line in text.split("\n"))
