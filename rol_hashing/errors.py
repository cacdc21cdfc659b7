"""The package's one error type for bad input.

``InputError`` (a ``ValueError``) means the input is wrong: a file, an argument, a config
value. The CLI prints it as one line with exit code 2. A plain ``ValueError`` from
anywhere else is a bug and keeps its traceback.

``printable`` escapes control characters in names read from disk before they are
printed in a table or a message.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file or value and what was expected."""


def one_line(text: object, limit: int = 200) -> str:
    """``str(text)`` on one line (whitespace runs made one space), cut to ``limit``
    characters: an error from a library quoted inside ours."""
    return " ".join(str(text).split())[:limit]


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (``\\n``,
    ``\\x1b``, a lone surrogate from an undecodable file name), so a file name cannot
    move the cursor or break a table."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
