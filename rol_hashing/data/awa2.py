"""Animals with Attributes 2: ``Animals_with_Attributes2/JPEGImages/<class>/*.jpg``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rol_hashing.data.fileio import check_relative, resolve_root
from rol_hashing.data.images import check_files, list_images, validate_image
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError

LAYOUT = """\
  <root>/Animals_with_Attributes2/
    classes.txt                  (lines "<number>\\t<class>", numbered from 1)
    JPEGImages/<class>/*.jpg"""


def read_classes(path: Path) -> list[str]:
    """Class names in label order from AWA2's ``classes.txt`` (``"1\\tantelope"`` lines)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected this layout:\n{LAYOUT}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit():
            raise InputError(f"{path}:{number}: expected '<number> <class>', got {line!r}")
        rows.append((int(fields[0]), check_relative(fields[1], f"{path}:{number}")))
    return [name for _, name in sorted(rows)]


def load_awa2(root: str | Path, strict: bool = False) -> DatasetRecord:
    """Loads AWA2 as a single-label record; ids are ``"<class>/<file>"``.

    A class in ``classes.txt`` without a folder is a warning (an error with
    ``strict``); unreadable images are skipped and counted.
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
        files = list_images(class_dir, (".jpg", ".jpeg"))
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
