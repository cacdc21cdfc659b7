"""Custom class folders ``<root>/<class>/*.{jpg,png}``: the paper's private set or a user's own.

An optional ``<root>/split.json`` fixes the parts: ``{"train": [...], "query": [...],
"gallery": [...]}`` with ids ``"<class>/<file>"`` (``gallery`` may be left out: then
it is every non-query image). An optional ``<root>/classes.txt`` fixes the label
order (one class a line); otherwise the folders are sorted by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rol_hashing.data.fileio import (
    check_relative,
    check_unique_classes,
    list_entries,
    optional_file,
    read_json,
    read_text,
)
from rol_hashing.data.images import IMAGE_SUFFIXES, check_files, list_images, validate_image
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError

SPLIT_FILE = "split.json"
LAYOUT = """\
  <root>/<class>/*.jpg|*.jpeg|*.png   (one folder per class)
  <root>/classes.txt                  (optional: class names in label order)
  <root>/split.json                   (optional: {"train": [ids], "query": [ids],
                                       "gallery": [ids]}, ids "<class>/<file>")"""


def _read_split_file(path: Path) -> dict[str, list[str]]:
    content = read_json(path, "split file", f"; expected:\n{LAYOUT}")
    if not isinstance(content, dict) or not all(k in content for k in ("train", "query")):
        raise InputError(
            f"{path}: a split file needs 'train' and 'query' id lists; expected:\n{LAYOUT}"
        )
    parts = {}
    for part in ("train", "query", "gallery"):
        if part in content:
            ids = content[part]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise InputError(f"{path}: '{part}' must be a list of id strings")
            parts[part] = [check_relative(i, f"{path} '{part}'") for i in ids]
    return parts


def load_class_folders(
    root: str | Path, strict: bool = False, name: str = "folders"
) -> DatasetRecord:
    """Loads ``<root>/<class>/*`` as a single-label record named ``name``.

    Returns a record with ids ``"<class>/<file>"`` and, when ``split.json``
    exists, ``predefined_split``. Unreadable images, and image names that are no
    regular file (a named pipe, a link loop, a dangling link), are skipped and counted.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist; expected this layout:\n{LAYOUT}")
    listed = root / "classes.txt"
    hidden: list[tuple[str, str]] = []
    if optional_file(listed):
        lines = enumerate(read_text(listed).splitlines(), start=1)
        rows = [(k, check_relative(n.strip(), f"{listed}:{k}")) for k, n in lines if n.strip()]
        names = check_unique_classes(rows, listed)
        missing = [n for n in names if not (root / n).is_dir()]
        if missing:
            raise FileNotFoundError(f"{listed} names classes without a folder: {missing}")
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        # .ipynb_checkpoints, .git, .hidden: never classes, counted as skipped
        hidden = [(str(p), "hidden folder, not a class") for p in folders if p.name.startswith(".")]
        names = [p.name for p in folders if not p.name.startswith(".") and list_images(p)]
    if not names:
        raise FileNotFoundError(f"{root} has no class folder with images; expected:\n{LAYOUT}")
    paths, labels = [], []
    for label, class_name in enumerate(names):
        files = list_entries(root / class_name, IMAGE_SUFFIXES)
        paths.extend(files)
        labels.extend([label] * len(files))
    ok, skipped = check_files(paths, validate_image, strict, progress_label="checking images")
    kept = np.flatnonzero(ok)
    split_path = root / SPLIT_FILE
    predefined = _read_split_file(split_path) if optional_file(split_path) else None
    return DatasetRecord(
        name=name,
        class_names=names,
        labels=np.asarray(labels, dtype=np.int64)[kept],
        ids=[f"{paths[k].parent.name}/{paths[k].name}" for k in kept],
        root=root,
        paths=[paths[k] for k in kept],
        skipped=hidden + skipped,
        info={"split file": str(split_path) if predefined else "none"},
        predefined_split=predefined,
    )
