"""Small file helpers shared by the loaders: root resolution, list files, safe names,
odd paths, and text and JSON that may be anything.

Names read from inside a data set (list-file ids, class names, split-file ids) are
paths relative to its root and must stay inside it: ``check_relative`` refuses an
absolute path, a drive, a ``..`` part, an empty name or a NUL byte. The roots
themselves (``data_root``, ``split_file``, ... in a config or on the command line)
are the user's own choice and are taken as given.

A path that should be a file may be a folder, a named pipe, a symbolic link loop or a
dangling link: ``path_problem`` says which from ``stat`` alone (opening a named pipe
would block), and ``read_text`` / ``read_json`` refuse it naming the file, as they
refuse bytes that are not UTF-8, JSON nested too deeply and numbers too large.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from rol_hashing.errors import InputError

NOT_FOUND = "not found"
# A JSON integer with more digits than this is refused (Python's own limit is 4300,
# with an error that advises raising it); no number in the package's files comes close.
MAX_JSON_DIGITS = 100

_KINDS = (
    (stat.S_ISDIR, "is a folder"),
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISSOCK, "is a socket"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
)


def resolve_root(root: str | Path, inner: str, marker: str, layout: str) -> Path:
    """Finds the data set folder whether ``root`` is that folder or one of its parents.

    Args:
        root: what the user passed.
        inner: the data set folder's path below a parent (e.g. ``"VOCdevkit/VOC2012"``).
        marker: a file or folder that the data set folder must contain.
        layout: the expected layout, quoted in the error.

    Raises:
        FileNotFoundError: naming ``root`` and the expected layout.
    """
    root = Path(root).expanduser()
    parts = Path(inner).parts
    candidates = [root] + [root.joinpath(*parts[i:]) for i in range(len(parts))]
    for candidate in candidates:
        if (candidate / marker).exists():
            return candidate
    state = "does not exist" if not root.exists() else f"has no {inner}/{marker}"
    raise FileNotFoundError(f"{root} {state}; expected this layout:\n{layout}")


class PathEscapeError(InputError):
    """A name read from a data file would point outside its data root."""


def check_relative(name: str, source: str) -> str:
    """Returns ``name`` if it is a plain relative path that stays inside its root.

    Raises:
        PathEscapeError: naming ``source`` for an absolute path, a Windows drive, a
            ``..`` part, an empty name or a NUL byte.
    """
    if not isinstance(name, str):
        raise PathEscapeError(f"{source}: expected a relative path string, got {name!r}")
    parts = name.replace("\\", "/").split("/")
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\", "~"))
        or re.match(r"^[A-Za-z]:", name)
        or ".." in parts
    ):
        raise PathEscapeError(
            f"{source}: refused {name!r}: names in data files must be relative paths inside "
            "the data root (no absolute path, drive, '~' or '..')"
        )
    return name


def read_id_list(path: Path, layout: str) -> list[str]:
    """Reads a list file with one id per line (first whitespace field); blank lines skipped.

    Raises:
        FileNotFoundError: no file at ``path``.
        InputError: not a regular UTF-8 file (``read_text``).
        PathEscapeError: an id that is not a relative path inside the data root.
    """
    require_file(path, "list file", f"; expected this layout:\n{layout}")
    ids = []
    for line in read_text(path).splitlines():
        fields = line.split()
        if fields:
            ids.append(check_relative(fields[0], str(path)))
    return ids


def check_unique_classes(rows: list[tuple[int, str]], path: Path) -> list[str]:
    """The names of ``(line number, class name)`` rows, in order, if none repeats.

    Raises:
        InputError: "<path>:<line>: class 'x' is listed twice (first on line N)".
    """
    first: dict[str, int] = {}
    for number, name in rows:
        if name in first:
            raise InputError(
                f"{path}:{number}: class {name!r} is listed twice (first on line {first[name]})"
            )
        first[name] = number
    return [name for _, name in rows]


def list_entries(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Everything directly in ``folder`` whose name ends in one of ``suffixes``
    (case-insensitive), sorted by name: the regular files, and also what only looks like
    one (a named pipe, a symbolic link loop, a dangling link, a folder), which
    ``check_files`` then counts as skipped with its ``path_problem`` instead of losing it."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in suffixes), key=lambda p: p.name
    )


def path_problem(
    path: str | Path, expected: str = "a file", missing: str = NOT_FOUND
) -> str | None:
    """Why ``path`` cannot be read as a regular file, as a phrase that follows its name;
    None when it can. Only ``stat`` is used: nothing is opened.

    Phrases: ``missing`` (default "not found"), "is a dangling symbolic link (to 'x')",
    "is a symbolic link loop", "is a folder, not <expected>", "is a named pipe (FIFO),
    not <expected>" (a socket, a device likewise), "cannot be read (permission denied)".
    A symbolic link to a file is a file.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            if path.is_symlink():
                return f"is a dangling symbolic link (to {os.readlink(path)!r})"
            return missing
        if err.errno in (errno.EACCES, errno.EPERM):
            return "cannot be read (permission denied)"
        return f"cannot be read ({err.strerror})"
    if stat.S_ISREG(info.st_mode):
        return None if os.access(path, os.R_OK) else "cannot be read (permission denied)"
    kind = next((text for test, text in _KINDS if test(info.st_mode)), "is not a regular file")
    return f"{kind}, not {expected}"


def require_file(
    path: str | Path, what: str = "", hint: str = "", expected: str = "a file"
) -> Path:
    """Returns ``path`` if it is a readable regular file.

    Raises:
        FileNotFoundError: "<what> <path> not found<hint>".
        InputError: "<what> <path> is a named pipe (FIFO), not <expected><hint>" and the
            like (``path_problem``).
    """
    path = Path(path)
    problem = path_problem(path, expected)
    if problem is None:
        return path
    message = f"{what} {path} {problem}{hint}".lstrip()
    if problem == NOT_FOUND:
        raise FileNotFoundError(message)
    raise InputError(message)


def optional_file(path: str | Path) -> bool:
    """True for a readable regular file, False when nothing is at ``path``; anything else
    there (a folder, a named pipe, a dangling link, ...) is an ``InputError`` naming it."""
    if os.path.lexists(path):  # a dangling link too
        require_file(path)
        return True
    return False


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file (``require_file``); opened non-blocking and checked
    again with ``fstat``, so a named pipe swapped in after the check never blocks."""
    require_file(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path} is not a regular file")
        return handle.read()


def _not_utf8(err: UnicodeDecodeError) -> str:
    return f"not UTF-8 text ({err.reason} at byte {err.start})"


def read_text(path: str | Path) -> str:
    """A regular file's UTF-8 text (a leading byte order mark dropped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError: ``path`` is not a regular file (``require_file``), or
            "<path>:<line>: not UTF-8 text (<reason> at byte N)".
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(f"{path}:{line}: {_not_utf8(err)}") from None


class _NumberError(ValueError):
    """A JSON number that ``read_json`` refuses."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_DIGITS:
        raise _NumberError(f"a number of {digits} digits, more than the {MAX_JSON_DIGITS} allowed")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise _NumberError(f"number {shown} is out of range")
    return value


def _parse_constant(text: str) -> float:
    raise _NumberError(f"{text} is not a JSON number")


def read_json(path: str | Path, what: str, hint: str = "") -> Any:
    """A regular file's JSON content.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError: ``path`` is not a regular file (``require_file``), or
            "<path>: not a readable <what> (<detail>)<hint>" for text that is not UTF-8,
            not JSON, nested too deeply for Python, or holds an integer of more than
            ``MAX_JSON_DIGITS`` digits, an infinite float (``1e999``), ``NaN`` or
            ``Infinity``.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        return json.loads(
            data.decode("utf-8-sig"),
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except UnicodeDecodeError as err:
        detail = _not_utf8(err)
    except RecursionError:
        detail = "nested too deeply"
    except _NumberError as err:
        detail = str(err)
    except json.JSONDecodeError as err:
        detail = f"not valid JSON: {err}"
    raise InputError(f"{path}: not a readable {what} ({detail}){hint}")
