"""Every file the package writes goes through here: a temporary file in the target's
folder, fsync, then rename.

A process killed mid-write leaves the previous version of the target intact (and at
worst a hidden ``.<name>.*.tmp`` file beside it). Written files get the usual
permissions (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.

Writers: ``atomic_write_text``, ``write_json``, ``atomic_savez`` (``.npz``),
``save_figure`` (PNG of a matplotlib figure), ``atomic_save_model`` (``.keras``), and
the building blocks ``atomic_open`` / ``atomic_path``. This is the bottom layer: it
imports nothing of the package (and neither Keras nor matplotlib; figures and models
are passed in).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from rol_hashing.errors import InputError
from rol_hashing.faults import fault_point

# The errors of a full disk or quota (NoSpaceError); the CLI also treats EFBIG alike.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class NoSpaceError(OSError):
    """An output folder's disk has too little free space for what is about to be written."""


class ReadOnlyError(OSError):
    """An output folder is on a read-only file system."""


def _write_error(err: OSError, path: Path) -> OSError:
    """A full disk or read-only file system met while writing ``path``, as a one-line
    error (the CLI prints it); other errors unchanged."""
    if err.errno in NO_SPACE_ERRNOS:
        return NoSpaceError(
            err.errno,
            f"cannot write {path}: no space left on the disk; "
            "the previous version (if any) is kept - free space and run again",
        )
    if err.errno == errno.EROFS:
        return ReadOnlyError(
            err.errno,
            f"cannot write {path}: the file system is read-only; "
            "nothing was changed - write to another folder",
        )
    return err


def _process_umask() -> int:
    """The umask, read from ``/proc/self/status`` where Linux has it.

    Elsewhere it is set and restored (``os.umask`` is the only other way to read it),
    which briefly gives 0 to files other threads create meanwhile.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def default_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open(path, "w")`` would give."""
    return 0o666 & ~_process_umask()


def check_file_target(*paths: str | os.PathLike) -> None:
    """``IsADirectoryError`` naming the first of ``paths`` that is a folder: a file is to be
    written there (call it before long work, so nothing is computed for nothing)."""
    for path in paths:
        if Path(path).is_dir():
            raise IsADirectoryError(
                errno.EISDIR, "is a folder; a file is to be written there", str(path)
            )


def check_folder_target(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or ``NotADirectoryError`` naming it when it exists and is not a
    folder (results are to be written into it: check before long work)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            "exists and is not a folder; results are written into a folder",
            str(path),
        )
    return path


@contextmanager
def atomic_path(
    path: str | os.PathLike, suffix: str = ".tmp", make_parents: bool = True
) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on success fsyncs it and renames it to ``path``.

    For writers that want a file name (``model.save``). ``suffix`` is the temporary
    file's ending (Keras insists on ``.keras``). On any error the temporary file is removed.
    ``make_parents=False``: a missing folder is a ``FileNotFoundError`` and nothing is made.
    """
    path = Path(path)
    check_file_target(path)
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as err:
        raise _write_error(err, path) from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        fault_point("atomic_write", name=path.name, phase="after_create")
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, default_file_mode())
        fault_point("atomic_write", name=path.name, phase="before_rename")
        os.replace(tmp, path)
        fault_point("atomic_write", name=path.name, phase="after_rename")
    except OSError as err:
        new = _write_error(err, path)
        if new is err:
            raise
        raise new from err
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(
    path: str | os.PathLike,
    mode: str = "wb",
    encoding: str | None = None,
    make_parents: bool = True,
) -> Iterator[IO]:
    """``open(path, mode)`` through a temporary file, renamed to ``path`` on success.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaults to UTF-8);
    ``make_parents`` as in ``atomic_path``.
    """
    if mode not in ("wb", "w"):
        raise InputError(f"atomic_open writes whole files: mode 'w' or 'wb', got {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with (
        atomic_path(path, make_parents=make_parents) as tmp,
        open(tmp, mode, encoding=encoding) as handle,
    ):
        yield handle
        handle.flush()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` via a temporary file in the same folder."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, content: dict) -> None:
    """Atomic, indented JSON with sorted keys."""
    atomic_write_text(path, json.dumps(content, indent=1, sort_keys=True) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez`` to exactly ``path`` via a temporary file in the same folder + os.replace.

    The folder must exist (``FileNotFoundError`` otherwise, and nothing is made).
    """
    with atomic_open(path, "wb", make_parents=False) as f:
        np.savez(f, **arrays)


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copies ``source`` to ``target`` through a temporary file and a rename."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def save_figure(fig: Any, out_png: str | os.PathLike, dpi: int = 100) -> Path:
    """``fig.savefig`` (a matplotlib ``Figure``) as PNG via a temporary file, then rename."""
    out_png = Path(out_png)
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return out_png


def atomic_save_model(model: Any, path: str | os.PathLike) -> None:
    """``model.save`` (a Keras model) to a temporary ``.keras`` beside ``path``, then rename."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
