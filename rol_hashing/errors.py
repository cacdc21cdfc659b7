"""The package's one error type for bad input.

``InputError`` (a ``ValueError``) means the input is wrong: a file, an argument, a config
value. The CLI prints it as one line with exit code 2. A plain ``ValueError`` from
anywhere else is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file or value and what was expected."""
