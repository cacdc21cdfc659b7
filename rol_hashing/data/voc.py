"""PASCAL-VOC2012 devkit: the segmentation set (for PSP) and the hashing set (readings §3).

Hashing images are those with at least one positive label in
``ImageSets/Main/<class>_trainval.txt``, minus every image of
``ImageSets/Segmentation/trainval.txt`` (used to train PSP); labels are multi-hot.
The generated data set writes the same layout, with its own class names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rol_hashing.constants import IGNORE_LABEL
from rol_hashing.data.fileio import (
    check_relative,
    check_unique_classes,
    optional_file,
    read_id_list,
    read_text,
    require_file,
    resolve_root,
)
from rol_hashing.data.images import (
    ImageError,
    check_files,
    image_size,
    not_a_file,
    read_mask,
    validate_image,
)
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
LAYOUT = """\
  <root>/VOCdevkit/VOC2012/
    JPEGImages/<id>.jpg
    SegmentationClass/<id>.png            (palette PNG: 0 background, 1..20, 255 void)
    ImageSets/Segmentation/{train,val,trainval}.txt
    ImageSets/Main/<class>_trainval.txt   (lines "<id> 1|0|-1")
    classes.txt                           (optional: class names, one a line, in label order)"""
_SPLITS = ("train", "val", "trainval")


def find_devkit(root: str | Path) -> Path:
    """The ``VOC2012`` folder, given it, ``VOCdevkit`` or their parent."""
    return resolve_root(root, "VOCdevkit/VOC2012", "ImageSets", LAYOUT)


def class_names(devkit: Path) -> list[str]:
    """Object class names in label order (background excluded).

    ``<devkit>/classes.txt`` if present (the generated set writes one), else the
    classes that have a ``Main/<class>_trainval.txt``: VOC's order is alphabetical.
    """
    listed = devkit / "classes.txt"
    if optional_file(listed):
        lines = enumerate(read_text(listed).splitlines(), start=1)
        rows = [(k, n.strip()) for k, n in lines if n.strip() not in ("", "background")]
        rows = [(k, check_relative(n, f"{listed}:{k}")) for k, n in rows]
        return check_unique_classes(rows, listed)
    main = devkit / "ImageSets" / "Main"
    found = sorted(p.name[: -len("_trainval.txt")] for p in main.glob("*_trainval.txt"))
    if not found:
        raise FileNotFoundError(
            f"no <class>_trainval.txt in {main}; expected this layout:\n{LAYOUT}"
        )
    return found


def segmentation_class_names(devkit: Path, ids: list[str]) -> list[str]:
    """Object class names for the segmentation stream: ``class_names`` where the devkit
    names them (``classes.txt`` or ``Main`` lists); else, since segmentation training
    needs no ``Main`` lists, ``class_1 .. class_K`` with K the largest label found in
    the masks of ``ids`` (255 aside)."""
    main = devkit / "ImageSets" / "Main"
    if optional_file(devkit / "classes.txt") or any(main.glob("*_trainval.txt")):
        return class_names(devkit)
    largest = 0
    for i in ids:
        path = devkit / "SegmentationClass" / f"{i}.png"
        if path.is_file():
            try:
                values = np.unique(read_mask(path))
            except ImageError:
                continue  # reported when the pairs are checked
            values = values[values != IGNORE_LABEL]
            largest = max(largest, int(values.max(initial=0)))
    if largest == 0:
        raise FileNotFoundError(
            f"{devkit} names no classes (no classes.txt, no ImageSets/Main/<class>_trainval.txt) "
            f"and its masks hold no object label; expected this layout:\n{LAYOUT}"
        )
    return [f"class_{k}" for k in range(1, largest + 1)]


def devkit_name(root: str | Path) -> str:
    """A name for the data a devkit holds, from the path as given (a symbolic link keeps
    its own name): the folder above ``VOCdevkit/VOC2012`` (``data/digits`` or
    ``data/digits/VOCdevkit/VOC2012`` -> ``digits``), else the devkit folder's name."""
    find_devkit(root)  # checks the layout
    given = Path(os.path.abspath(Path(root).expanduser()))  # no resolve(): links keep names
    if given.name == "VOC2012" and given.parent.name == "VOCdevkit":
        return given.parent.parent.name or "voc2012"
    if given.name == "VOCdevkit":
        return given.parent.name or "voc2012"
    return given.name or "voc2012"


def segmentation_ids(devkit: Path, split: str = "trainval") -> list[str]:
    """Ids of ``ImageSets/Segmentation/<split>.txt``; trainval falls back to train + val."""
    if split not in _SPLITS:
        raise InputError(f"segmentation split must be one of {_SPLITS}, got {split!r}")
    folder = devkit / "ImageSets" / "Segmentation"
    path = folder / f"{split}.txt"
    if split == "trainval" and not optional_file(path) and (folder / "train.txt").is_file():
        ids = read_id_list(folder / "train.txt", LAYOUT) + read_id_list(folder / "val.txt", LAYOUT)
        return list(dict.fromkeys(ids))
    return list(dict.fromkeys(read_id_list(path, LAYOUT)))


def _read_main_list(path: Path) -> dict[str, int]:
    """``{id: flag}`` from a ``<class>_trainval.txt`` (1 present, 0 difficult, -1 absent)."""
    require_file(path, "list file", f"; expected this layout:\n{LAYOUT}")
    flags = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("1", "0", "-1"):
            raise InputError(f"{path}:{number}: expected '<id> 1|0|-1', got {line!r}")
        flags[check_relative(fields[0], f"{path}:{number}")] = int(fields[1])
    return flags


def load_voc2012(
    root: str | Path, strict: bool = False, include_difficult: bool = False
) -> DatasetRecord:
    """The VOC hashing set: Main trainval images minus the segmentation images.

    Args:
        root: ``VOCdevkit/VOC2012``, ``VOCdevkit`` or their parent.
        strict: raise on a missing or unreadable image instead of skipping it.
        include_difficult: count flag 0 ("only difficult instances") as positive.
            By default only flag 1 is a label, as in the classification task.

    Returns:
        A multi-label record: ``labels (N, C)`` uint8 multi-hot, ids = VOC image ids.
        ``info`` holds the counts the rule gives.
    """
    devkit = find_devkit(root)
    names = class_names(devkit)
    main = devkit / "ImageSets" / "Main"
    lists = [_read_main_list(main / f"{name}_trainval.txt") for name in names]
    all_ids = sorted(set().union(*lists))
    positive = {1, 0} if include_difficult else {1}
    labels = np.array(
        [[flags.get(i, -1) in positive for flags in lists] for i in all_ids], dtype=np.uint8
    ).reshape(len(all_ids), len(names))
    labelled = labels.any(axis=1)
    seg_ids = set(segmentation_ids(devkit, "trainval"))
    keep = np.array([i not in seg_ids for i in all_ids], dtype=bool) & labelled
    ids = [i for i, k in zip(all_ids, keep, strict=True) if k]
    paths = [devkit / "JPEGImages" / f"{i}.jpg" for i in ids]
    ok, skipped = check_files(paths, validate_image, strict, progress_label="checking VOC images")
    info = {
        "Main trainval images": len(all_ids),
        "with a positive label": int(labelled.sum()),
        "segmentation trainval images": len(seg_ids),
        "segmentation images removed": int((labelled & ~keep).sum()),
        "hashing images (rule)": len(ids),
        "hashing images readable": int(ok.sum()),
        "paper reports": 9267,
    }
    return DatasetRecord(
        name="voc2012",
        class_names=names,
        labels=labels[keep][ok],
        ids=[i for i, k in zip(ids, ok, strict=True) if k],
        root=devkit,
        paths=[p for p, k in zip(paths, ok, strict=True) if k],
        multilabel=True,
        skipped=skipped,
        info=info,
    )


def load_voc_segmentation(
    devkit_root: str | Path, split: str = "trainval", strict: bool = False
) -> DatasetRecord:
    """The segmentation images with their masks (for training the PSP stream).

    Every mask is read: its values must be class indices or 255, and its size
    must equal its image's (a mismatch is a ValueError naming both files).
    Returns a multi-label record whose ``class_names`` start with ``"background"``,
    ``labels (N, 1 + C)`` uint8 marking the classes present in each mask, and
    ``mask_paths``.
    """
    devkit = find_devkit(devkit_root)
    ids = segmentation_ids(devkit, split)
    names = ["background", *segmentation_class_names(devkit, ids)]
    images = [devkit / "JPEGImages" / f"{i}.jpg" for i in ids]
    masks = [devkit / "SegmentationClass" / f"{i}.png" for i in ids]
    present: dict[Path, np.ndarray] = {}

    def check_pair(mask_path: Path) -> None:
        image_path = images[mask_index[mask_path]]
        if not image_path.is_file():
            raise ImageError(not_a_file(image_path))
        validate_image(image_path)
        mask = read_mask(mask_path)
        width, height = image_size(image_path)
        if mask.shape != (height, width):
            raise InputError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image_path} is {width}x{height}"
            )
        values = np.unique(mask)
        bad = values[(values >= len(names)) & (values != IGNORE_LABEL)]
        if bad.size:
            raise ImageError(
                f"{mask_path}: mask values {bad.tolist()} are neither a class index "
                f"(0..{len(names) - 1}) nor {IGNORE_LABEL}"
            )
        row = np.zeros(len(names), dtype=np.uint8)
        row[values[values < len(names)]] = 1
        present[mask_path] = row

    mask_index = {m: k for k, m in enumerate(masks)}
    ok, skipped = check_files(masks, check_pair, strict, progress_label="checking VOC masks")
    kept = np.flatnonzero(ok)
    labels = np.stack([present[masks[k]] for k in kept]) if kept.size else None
    return DatasetRecord(
        name="voc2012-segmentation",
        class_names=names,
        labels=labels if labels is not None else np.zeros((0, len(names)), dtype=np.uint8),
        ids=[ids[k] for k in kept],
        root=devkit,
        paths=[images[k] for k in kept],
        mask_paths=[masks[k] for k in kept],
        multilabel=True,
        skipped=skipped,
        info={"split": split, "listed images": len(ids)},
    )
