"""Cached reliability masks: R computed once per training image.

The segmentation stream is frozen and the input pipeline deterministic, so the
mask R of an image is the same in every epoch. We compute it once at the ROL's
feature grid ((h, w, 1) per image, e.g. 14x14 at 224) and feed it to the
``mask_input`` form of the hashing model, instead of running the stream at
every step. The cache lives in ``<run>/masks/`` (float32 ``.npy``) with a small
JSON key; a key mismatch (other segmentation model, size or images) recomputes.

``run_masks`` gives R from any of the ablation's sources (``model.rol_mask``):
``predicted`` (the stream, cached as above), ``oracle`` (each image's ground-truth object
mask through the same resize and crop as the image, then the same area average),
``ones`` and ``shuffled`` (the predictions of the same images, each moved to another
image by a seeded derangement). The form (soft, binary, normalized) is applied by the
model's ROL layer, not here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import keras
import numpy as np

from rol_hashing.constants import IGNORE_LABEL
from rol_hashing.data.generated import object_mask_paths
from rol_hashing.data.pipeline import make_segmentation_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError
from rol_hashing.io import atomic_open, atomic_write_text
from rol_hashing.models import ReliabilityMask

# R on the 2-pixel border band of a ground-truth object (VOC's "void"): it straddles the
# object's edge, so half.
ORACLE_BORDER = 0.5


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
    if verbose == "auto":  # a step bar on a terminal only, nothing in a redirected log
        verbose = 1 if sys.stdout.isatty() else 0
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


def oracle_masks(
    record: DatasetRecord, indices: np.ndarray, input_size: int, size: int, batch_size: int = 64
) -> np.ndarray:
    """Ground-truth R of ``record[indices]``: (N, size, size, 1) float32.

    Each object mask goes through the images' resize and centre crop (nearest
    neighbour), becomes 1 on the object, ``ORACLE_BORDER`` on its border band and 0
    elsewhere, and is area-averaged to the ``size`` grid (as the ROL brings R there).
    """
    subset = record.subset(indices)
    subset.mask_paths = list(object_mask_paths(subset))
    parts = []
    for _, masks in make_segmentation_dataset(subset, None, input_size, batch_size):
        m = masks.numpy()
        r = np.where(m == IGNORE_LABEL, ORACLE_BORDER, (m > 0).astype(np.float32))
        parts.append(area_average(r.astype(np.float32), size))
    if not parts:
        return np.zeros((0, size, size, 1), np.float32)
    return np.concatenate(parts)[..., None]


def area_average(r: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S) -> (N, size, size): the mean over each (S/size)^2 block (S % size == 0)."""
    n, side = r.shape[0], r.shape[1]
    if side % size:
        raise InputError(f"the mask side {side} is not a multiple of the grid {size}")
    f = side // size
    return r.reshape(n, size, f, size, f).mean(axis=(2, 4))


def derange(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` without fixed points (for n > 1): image i gets
    the mask of image ``result[i]``."""
    order = np.random.default_rng([seed, 29]).permutation(n)
    out = np.empty(n, np.int64)
    out[order] = np.roll(order, -1)
    return out


def run_masks(
    source: str,
    cache_dir: Path,
    name: str,
    record: DatasetRecord,
    indices: np.ndarray,
    input_size: int,
    size: int,
    seed: int = 0,
    segmentation_model: keras.Model | None = None,
    segmentation_path: Path | None = None,
    images=None,
    background_index: int = 0,
) -> np.ndarray:
    """R (N, size, size, 1) of ``record[indices]`` from ``source`` (``model.rol_mask``).

    ``predicted`` and ``shuffled`` need the segmentation model and its path (the cache
    key) and ``images`` as ``cached_masks`` takes them; the predictions are cached in
    ``<cache_dir>/<name>.npy``.
    """
    n = len(indices)
    if source == "ones":
        return np.ones((n, size, size, 1), np.float32)
    if source == "oracle":
        return oracle_masks(record, indices, input_size, size)
    if source not in ("predicted", "shuffled"):
        raise InputError(f"unknown mask source {source!r}")
    if segmentation_model is None or segmentation_path is None:
        raise InputError(f"mask source {source!r} needs the segmentation model")
    ids = [record.ids[i] for i in indices]
    masks = cached_masks(
        cache_dir,
        name,
        segmentation_model,
        segmentation_path,
        ids,
        images,
        input_size,
        size,
        background_index,
    )
    return masks[derange(n, seed)] if source == "shuffled" else masks
