"""The one record every loader returns, whatever the data set's on-disk format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rol_hashing.errors import InputError, printable


@dataclass
class DatasetRecord:
    """An indexed data set: where each image is, what it shows, and what was skipped.

    Exactly one of ``paths`` and ``images`` holds the pixels' source.

    Attributes:
        name: registry name (``"cifar10"``, ``"voc2012"``, ...).
        class_names: label names; index ``c`` names label ``c``. For segmentation
            records index 0 is ``"background"`` (mask value 0).
        labels: ``(N,)`` int64 class indices, or ``(N, C)`` uint8 multi-hot when
            ``multilabel``.
        ids: ``N`` unique, stable strings (a split file stores these).
        paths: ``N`` image files, or None for in-memory data.
        images: ``(N, H, W, 3)`` uint8 RGB, or None for file data.
        mask_paths: ``N`` segmentation masks (palette PNGs, or None per image).
        root: the folder the data set was read from.
        multilabel: True when ``labels`` is multi-hot.
        skipped: ``(file, reason)`` for every unreadable image left out.
        info: counts and notes that ``summary()`` prints (e.g. VOC's rule).
        predefined_split: ``{"train": ids, "query": ids, "gallery": ids}`` when the
            data set ships its own split file, else None.
        object_masks: ``(N, H, W)`` uint8 ground-truth object masks aligned with
            ``images`` (0 background, 1 the object, 255 its void border band), for data
            sets whose masks come with the pixels (Fashion-MNIST); else None.
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    ids: list[str]
    root: Path
    paths: list[Path] | None = None
    images: np.ndarray | None = None
    mask_paths: list[Path | None] | None = None
    multilabel: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, object] = field(default_factory=dict)
    predefined_split: dict[str, list[str]] | None = None
    object_masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if (self.paths is None) == (self.images is None):
            raise InputError("a DatasetRecord needs exactly one of `paths` and `images`")
        if self.paths is not None and len(self.paths) != n:
            raise InputError(f"{len(self.paths)} paths for {n} ids")
        if self.images is not None and (self.images.ndim != 4 or len(self.images) != n):
            raise InputError(f"images must be (N, H, W, 3) with N={n}, got {self.images.shape}")
        if self.object_masks is not None and (
            self.object_masks.ndim != 3 or len(self.object_masks) != n
        ):
            raise InputError(
                f"object_masks must be (N, H, W) with N={n}, got {self.object_masks.shape}"
            )
        if self.mask_paths is not None and len(self.mask_paths) != n:
            raise InputError(f"{len(self.mask_paths)} mask paths for {n} ids")
        if len(self.labels) != n:
            raise InputError(f"{len(self.labels)} labels for {n} ids")
        if len(set(self.ids)) != n:
            raise InputError("record ids must be unique")
        expected_ndim = 2 if self.multilabel else 1
        if self.labels.ndim != expected_ndim:
            raise InputError(
                f"labels must be {'(N, C) multi-hot' if self.multilabel else '(N,) int'}, "
                f"got shape {self.labels.shape}"
            )
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def index_of(self, ids: list[str] | tuple[str, ...]) -> np.ndarray:
        """Returns the ``(len(ids),)`` int64 positions of ``ids``; KeyError names a missing id."""
        if self._positions is None:
            self._positions = {key: i for i, key in enumerate(self.ids)}
        try:
            return np.asarray([self._positions[key] for key in ids], dtype=np.int64)
        except KeyError as err:
            raise KeyError(f"id {err.args[0]!r} is not in data set {self.name!r}") from None

    def class_counts(self) -> np.ndarray:
        """Images per class, ``(C,)`` int64 (multi-label: images carrying each label)."""
        if self.multilabel:
            return self.labels.astype(np.int64).sum(axis=0)
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def subset(self, indices: np.ndarray | list[int]) -> DatasetRecord:
        """A record holding only ``indices`` (in that order); skipped and info are kept."""
        idx = np.asarray(indices, dtype=np.int64)
        return DatasetRecord(
            name=self.name,
            class_names=list(self.class_names),
            labels=self.labels[idx],
            ids=[self.ids[i] for i in idx],
            root=self.root,
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            images=None if self.images is None else self.images[idx],
            mask_paths=None if self.mask_paths is None else [self.mask_paths[i] for i in idx],
            object_masks=None if self.object_masks is None else self.object_masks[idx],
            multilabel=self.multilabel,
            skipped=list(self.skipped),
            info=dict(self.info),
        )

    def summary(self, max_classes: int = 25, max_skipped: int = 10) -> str:
        """A human-readable multi-line summary: counts per class, notes, skipped files;
        control characters in names (a folder, a class, a file) are escaped."""
        kind = "multi-label" if self.multilabel else "single-label"
        source = "in-memory arrays" if self.images is not None else "image files"
        lines = [
            f"data set {self.name!r} from {self.root}",
            f"  {len(self)} images ({source}), {self.num_classes} classes, {kind}",
        ]
        if self.mask_paths is not None:
            with_mask = sum(p is not None for p in self.mask_paths)
            lines.append(f"  {with_mask} segmentation masks")
        for key, value in self.info.items():
            lines.append(f"  {key}: {value}")
        counts = self.class_counts()
        lines.append("  images per class:")
        shown = list(zip(self.class_names, counts, strict=True))[:max_classes]
        for name, count in shown:
            lines.append(f"    {name:<24s} {int(count)}")
        if self.num_classes > max_classes:
            lines.append(f"    ... and {self.num_classes - max_classes} more classes")
        lines.append(f"  skipped files: {len(self.skipped)}")
        for path, reason in self.skipped[:max_skipped]:
            lines.append(f"    {path}: {reason}")
        if len(self.skipped) > max_skipped:
            lines.append(f"    ... and {len(self.skipped) - max_skipped} more")
        return "\n".join(printable(line) for line in lines)
