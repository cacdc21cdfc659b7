"""Entry point of the ``rol-hashing`` command.

Each command lives in its own module under ``rol_hashing/cli/`` and exposes
``register(subparsers)``, which adds an ``argparse`` sub-parser whose ``func``
default receives the parsed arguments and returns an exit code. Heavy imports
(Keras, TensorFlow) happen inside those functions (each marked ``# lazy:``), so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from rol_hashing import __version__
from rol_hashing.errors import InputError, printable
from rol_hashing.io import NO_SPACE_ERRNOS, NoSpaceError, ReadOnlyError
from rol_hashing.quiet import quiet_tensorflow

# Quiet TensorFlow's C++ start-up logging unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Commands that never import TensorFlow (the others import it quietly first).
TENSORFLOW_FREE = frozenset({"make-data", "data-summary"})

# Modules under rol_hashing.cli that provide commands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "describe",
    "data",
    "pretrain",
    "train",
    "retrieval",
    "notebooks",
    "demo",
    "ablate",
    "fashion",
    "serve",
)


# Errors that mean bad input or a bad environment, not a bug: one line, exit 2. A plain
# ValueError is not among them: it comes from a bug and keeps its traceback.
USER_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    NoSpaceError,
    ReadOnlyError,
    InputError,
)


class _Parser(argparse.ArgumentParser):
    """Every command's parser: ``--help`` shows each option's default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Returns the top-level parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="rol-hashing",
        description="Deep hashing with a Reliability Object Layer (ROL) and the SSDH baseline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"rol_hashing.cli.{module_name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parses ``argv`` and runs the chosen command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if args.command not in TENSORFLOW_FREE:
        quiet_tensorflow()
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        return _refuse(args.command, str(err))
    except OSError as err:
        if err.errno not in FULL_ERRNOS:
            raise
        # a write deep inside Keras or TensorFlow (CSVLogger, a checkpoint) met a full
        # disk or the file size limit: the environment, not a bug
        where = f" writing {err.filename}" if err.filename else ""
        return _refuse(
            args.command,
            f"{err.strerror or os.strerror(err.errno)}{where} (errno {err.errno}): the disk "
            "is full or the file size limit (ulimit -f) was reached; free space or raise the "
            "limit and run again (training continues with --resume from its last checkpoint)",
        )


# A full disk, a full quota, a file over the size limit.
FULL_ERRNOS = (*NO_SPACE_ERRNOS, errno.EFBIG)


def _refuse(command: str, text: str) -> int:
    """Prints one error (control characters from file names escaped; the message's own
    lines kept) and returns exit code 2."""
    message = "\n".join(printable(line) for line in text.split("\n"))
    print(f"rol-hashing {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
