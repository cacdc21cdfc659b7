"""The package's one error type for bad input.

``InputError`` (a ``ValueError``) means the input is wrong: a file, an argument, a config
value. The CLI prints it as one line with exit code 2. A plain ``ValueError`` from
anywhere else is a bug and keeps its traceback.

``printable`` escapes control characters in names read from disk before they are
printed in a table or a message.
"""

from __future__ import annotations

import numbers


class InputError(ValueError):
    """Bad input: the message names the file or value and what was expected."""


def check_int(value: object, name: str, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an ``int`` when it is a whole number (Python or numpy, not a bool) of
    at least ``minimum`` (1 or 0); else InputError: "<name> must be a positive integer
    <hint>, got <value>" (or "a non-negative integer" for ``minimum=0``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if minimum == 0:
            what = "a non-negative integer"
        raise InputError(f"{name} must be {what}{' ' + hint if hint else ''}, got {value!r}")
    return int(value)


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
