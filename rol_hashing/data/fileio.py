"""Small file helpers shared by the loaders: root resolution, list files, atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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


def read_id_list(path: Path, layout: str) -> list[str]:
    """Reads a list file with one id per line (first whitespace field); blank lines skipped."""
    if not path.is_file():
        raise FileNotFoundError(f"list file {path} not found; expected this layout:\n{layout}")
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            ids.append(fields[0])
    return ids


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes ``text`` to ``path`` via a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
