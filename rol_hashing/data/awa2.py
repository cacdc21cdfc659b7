"""Animals with Attributes 2: ``Animals_with_Attributes2/JPEGImages/<class>/*.jpg``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from rol_hashing.data.fileio import (
    check_relative,
    check_unique_classes,
    list_entries,
    read_text,
    require_file,
    resolve_root,
)
from rol_hashing.data.images import check_files, validate_image
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError

LAYOUT = """\
  <root>/Animals_with_Attributes2/
    classes.txt                  (lines "<number>\\t<class>", numbered from 1)
    JPEGImages/<class>/*.jpg"""


def read_classes(path: Path) -> list[str]:
    """Class names in label order from AWA2's ``classes.txt`` (``"1\\tantelope"`` lines).

    Raises:
        InputError: a line that is not ``<number> <class>`` (the number plain ASCII
            digits, at most 9), a class listed twice, or not a regular UTF-8 file.
    """
    require_file(path, hint=f"; expected this layout:\n{LAYOUT}")
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not re.fullmatch("[0-9]{1,9}", fields[0]):
            shown = line if len(line) <= 80 else line[:80] + "..."
            raise InputError(f"{path}:{number}: expected '<number> <class>', got {shown!r}")
        rows.append((int(fields[0]), number, check_relative(fields[1], f"{path}:{number}")))
    check_unique_classes([(number, name) for _, number, name in rows], path)
    return [name for _, _, name in sorted(rows)]


def load_awa2(root: str | Path, strict: bool = False) -> DatasetRecord:
    """Loads AWA2 as a single-label record; ids are ``"<class>/<file>"``.

    A class in ``classes.txt`` without a folder is a warning (an error with
    ``strict``); unreadable images, and ``.jpg`` names that are no regular file (a
    named pipe, a link loop, a dangling link), are skipped and counted.
    """
    folder = resolve_root(root, "Animals_with_Attributes2", "classes.txt", LAYOUT)
    names = read_classes(folder / "classes.txt")
    images_dir = folder / "JPEGImages"
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir} not found; expected this layout:\n{LAYOUT}")
    paths, labels, missing = [], [], []
    for label, name in enumerate(names):
        class_dir = images_dir / name
        if not class_dir.is_dir():
            missing.append(name)
            continue
        files = list_entries(class_dir, (".jpg", ".jpeg"))
        paths.extend(files)
        labels.extend([label] * len(files))
    if missing:
        message = f"{images_dir}: no folder for classes {missing}"
        if strict:
            raise FileNotFoundError(f"{message}; expected this layout:\n{LAYOUT}")
        warnings.warn(message, UserWarning, stacklevel=2)
    ok, skipped = check_files(paths, validate_image, strict, progress_label="checking AWA2 images")
    kept = np.flatnonzero(ok)
    return DatasetRecord(
        name="awa2",
        class_names=names,
        labels=np.asarray(labels, dtype=np.int64)[kept],
        ids=[f"{paths[k].parent.name}/{paths[k].name}" for k in kept],
        root=folder,
        paths=[paths[k] for k in kept],
        skipped=skipped,
        info={"classes without a folder": missing, "paper reports": 37322},
    )
