"""Small file helpers shared by the loaders: root resolution, list files, safe names.

Names read from inside a data set (list-file ids, class names, split-file ids) are
paths relative to its root and must stay inside it: ``check_relative`` refuses an
absolute path, a drive, a ``..`` part, an empty name or a NUL byte. The roots
themselves (``data_root``, ``split_file``, ... in a config or on the command line)
are the user's own choice and are taken as given.
"""

from __future__ import annotations

import re
from pathlib import Path

from rol_hashing.errors import InputError


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
        PathEscapeError: an id that is not a relative path inside the data root.
    """
    if not path.is_file():
        raise FileNotFoundError(f"list file {path} not found; expected this layout:\n{layout}")
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            ids.append(check_relative(fields[0], str(path)))
    return ids
