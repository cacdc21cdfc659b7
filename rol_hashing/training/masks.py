"""Cached reliability masks: R computed once per training image.

The segmentation stream is frozen and the input pipeline deterministic, so the
mask R of an image is the same in every epoch. We compute it once at the ROL's
feature grid ((h, w, 1) per image, e.g. 14x14 at 224) and feed it to the
``mask_input`` form of the hashing model, instead of running the stream at
every step. The cache lives in ``<run>/masks/`` (float32 ``.npy``) with a small
JSON key; a key mismatch (other segmentation model, size or images) recomputes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import keras
import numpy as np

from rol_hashing.io import atomic_open, atomic_write_text
from rol_hashing.models import ReliabilityMask


def mask_model(segmentation_model: keras.Model, size: int, background_index: int = 0):
    """Model: preprocessed images (B, S, S, 3) -> R (B, size, size, 1)."""
    r = ReliabilityMask(size=(size, size), background_index=background_index, name="reliability")(
        segmentation_model.output
    )
    return keras.Model(segmentation_model.input, r, name="reliability_mask")


def compute_masks(
    segmentation_model: keras.Model,
    batches,
    size: int,
    background_index: int = 0,
    verbose: int | str = "auto",
) -> np.ndarray:
    """R for every image of ``batches`` (an iterable of image batches or of
    ``(images, ...)`` tuples, or one (N, S, S, 3) array): (N, size, size, 1) float32."""
    model = mask_model(segmentation_model, size, background_index)
    return model.predict(batches, verbose=verbose).astype("float32")


def _cache_key(segmentation_path: Path, ids: list[str], input_size: int, size: int) -> str:
    stat = segmentation_path.stat()
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    return json.dumps(
        {
            "segmentation_model": str(segmentation_path.resolve()),
            "model_mtime_ns": stat.st_mtime_ns,
            "model_bytes": stat.st_size,
            "ids_sha256": digest,
            "count": len(ids),
            "input_size": input_size,
            "mask_size": size,
        },
        sort_keys=True,
    )


def cached_masks(
    cache_dir: Path,
    name: str,
    segmentation_model: keras.Model,
    segmentation_path: Path,
    ids: list[str],
    images,
    input_size: int,
    size: int,
    background_index: int = 0,
) -> np.ndarray:
    """Loads ``<cache_dir>/<name>.npy`` when its key matches, else computes and stores it.

    ``images`` is what ``compute_masks`` takes (array or batches), in ``ids`` order.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    array_path = cache_dir / f"{name}.npy"
    key_path = cache_dir / f"{name}.json"
    key = _cache_key(segmentation_path, ids, input_size, size)
    if array_path.is_file() and key_path.is_file() and key_path.read_text() == key:
        try:
            masks = np.load(array_path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:  # a damaged cache is recomputed
            print(f"mask cache: {array_path} does not load ({err}); recomputing")
            masks = np.zeros(0)
        if masks.shape == (len(ids), size, size, 1):
            print(f"mask cache: reusing {array_path}")
            return masks
    print(f"mask cache: computing R for {len(ids)} images -> {array_path}")
    masks = compute_masks(segmentation_model, images, size, background_index)
    with atomic_open(array_path) as f:
        np.save(f, masks, allow_pickle=False)
    atomic_write_text(key_path, key)
    return masks
