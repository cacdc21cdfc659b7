"""One query image: decoded exactly as the same file is in the gallery, encoded with a
run's model, and its label (for relevance) when it is known."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rol_hashing.data.pipeline import decode_for_model, preprocess_image
from rol_hashing.errors import InputError
from rol_hashing.retrieval.encode import (
    encode,
)
from rol_hashing.retrieval.relevance import Relevance

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord


def decode_query(image_path: str | Path, input_size: int) -> np.ndarray:
    """A query image file as uint8 RGB (H, W, 3), decoded exactly as the same file is in
    the gallery (``decode_for_model``); ImageError names a bad file."""
    return decode_for_model(image_path, input_size)


def encode_image(model, image_path: str | Path, input_size: int, bits: int) -> np.ndarray:
    """One image file -> its code, bool (bits,); ImageError names an unreadable file."""
    return encode_pixels(model, decode_query(image_path, input_size), input_size, bits)


def encode_pixels(model, pixels: np.ndarray, input_size: int, bits: int) -> np.ndarray:
    """One decoded image, uint8 RGB (H, W, 3) -> its code, bool (bits,)."""
    x = np.asarray(preprocess_image(pixels, input_size))[None]
    batch = (x, np.zeros(1, np.int64), np.zeros(1, np.int64))
    return encode(model, [batch], bits=bits, verbose=0).codes[0]


def query_label(
    record: DatasetRecord, image_path: str | Path, label: str | None
) -> np.ndarray | None:
    """The query's label in the record's form ((,) class id or (C,) multi-hot), or None.

    ``label`` (a class name) wins; else the label of the record image at the same
    resolved path; else None (relevance unknown).
    """
    if label is not None:
        if label not in record.class_names:
            raise InputError(
                f"unknown class {label!r} for data set {record.name!r}; classes: "
                + ", ".join(record.class_names)
            )
        c = record.class_names.index(label)
        if not record.multilabel:
            return np.asarray(c)
        hot = np.zeros(record.num_classes, np.uint8)
        hot[c] = 1
        return hot
    if record.paths is None:
        return None
    target = Path(image_path).resolve()
    for i, path in enumerate(record.paths):
        if Path(path).resolve() == target:
            return np.asarray(record.labels[i])
    return None


def relevance_of(query: np.ndarray | None, labels: np.ndarray) -> list[bool | None]:
    """Relevance of result ``labels`` (k,) or (k, C) to the query's label (None: unknown)."""
    if query is None:
        return [None] * len(labels)
    relevance = Relevance(query[None], labels, 1, len(labels))
    return [bool(v) for v in relevance(slice(None), np.arange(len(labels))[None])[0]]
