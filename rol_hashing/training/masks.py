"""Cached reliability masks: R computed once per training image.

The segmentation stream is frozen and the input pipeline deterministic, so the
mask R of an image is the same in every epoch. We compute it once at the ROL's
feature grid ((h, w, 1) per image, e.g. 14x14 at 224) and feed it to the
``mask_input`` form of the hashing model, instead of running the stream at
every step. The cache lives in ``<run>/masks/`` (float32 ``.npy``) with a JSON key
(``rol_hashing.freshness``): the segmentation model file's bytes, the images (ids and
pixels), the sizes and the background channel, plus the array's own SHA-256. Any
mismatch (another model, split, size, new image bytes, or a changed array) recomputes;
a computed R that is not finite or leaves [0, 1] is an error.

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
from rol_hashing.data.fileio import read_json
from rol_hashing.data.generated import object_mask_paths
from rol_hashing.data.pipeline import make_segmentation_dataset, resize_and_crop_masks
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError
from rol_hashing.freshness import file_digest, images_digest, make_key, stale_parts, text_digest
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


def _cache_key(
    segmentation_path: Path,
    ids: list[str],
    pixels: str,
    input_size: int,
    size: int,
    background_index: int,
) -> dict:
    """What the cached R depends on: the segmentation model's bytes, the images (ids in
    order, and ``pixels``: ``freshness.images_digest``), the sizes and the background
    channel. The array's own SHA-256 is stored beside it."""
    return make_key(
        "masks",
        segmentation_model=file_digest(segmentation_path),
        ids=text_digest(ids),
        images=pixels,
        count=len(ids),
        input_size=input_size,
        mask_size=size,
        background_index=background_index,
    )


def _array_sha256(masks: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(masks).tobytes()).hexdigest()


def _read_key(path: Path) -> dict | None:
    """The stored key, or None when it is missing or unreadable (the cache is recomputed)."""
    try:
        key = read_json(path, "mask cache key")
    except (OSError, InputError):
        return None
    return key if isinstance(key, dict) else None


def check_masks(masks: np.ndarray, source: str) -> np.ndarray:
    """``InputError`` naming ``source`` unless every R is finite, in [0, 1] and not all 0."""
    finite = np.isfinite(masks)
    if not finite.all():
        raise InputError(
            f"{source}: {masks.size - int(finite.sum())} NaN or infinite mask value(s); "
            "a segmentation model with damaged weights? (train it again)"
        )
    if masks.size and masks.max() == 0:
        raise InputError(
            f"{source}: R is 0 at every pixel of every image (the segmentation model finds no "
            "object anywhere); the ROL would zero every feature"
        )
    if masks.size and (masks.min() < 0 or masks.max() > 1):
        raise InputError(
            f"{source}: mask values in [{masks.min():.3g}, {masks.max():.3g}], expected [0, 1]"
        )
    return masks


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
    pixels: str = "",
) -> np.ndarray:
    """Loads ``<cache_dir>/<name>.npy`` when its key matches, else computes and stores it.

    ``images`` is what ``compute_masks`` takes (array or batches), in ``ids`` order;
    ``pixels`` their ``freshness.images_digest`` (new image bytes recompute the cache).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    array_path = cache_dir / f"{name}.npy"
    key_path = cache_dir / f"{name}.json"
    key = _cache_key(segmentation_path, ids, pixels, input_size, size, background_index)
    stored = _read_key(key_path) if array_path.is_file() else None
    changed = stale_parts(stored.get("key") if stored else None, key)
    if stored is not None and not changed:
        masks = _load_cached(array_path, stored.get("array_sha256"), (len(ids), size, size, 1))
        if masks is not None:
            print(f"mask cache: reusing {array_path}")
            return masks
    elif stored is not None:
        print(f"mask cache: {array_path} was made for another {', '.join(changed)}; recomputing")
    print(f"mask cache: computing R for {len(ids)} images -> {array_path}")
    masks = compute_masks(segmentation_model, images, size, background_index)
    check_masks(masks, f"{segmentation_path} (R for {array_path.name})")
    with atomic_open(array_path) as f:
        np.save(f, masks, allow_pickle=False)
    # the array first, its key last: a reader never pairs a new key with an old array
    atomic_write_text(key_path, json.dumps({"key": key, "array_sha256": _array_sha256(masks)}))
    return masks


def _load_cached(path: Path, sha256: object, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached R if it loads, has ``shape`` and the SHA-256 its key recorded; else None
    (the cache is recomputed: it is derived data)."""
    try:
        masks = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        print(f"mask cache: {path} does not load ({err}); recomputing")
        return None
    if masks.shape != shape or masks.dtype != np.float32:
        print(
            f"mask cache: {path} holds {masks.dtype} {masks.shape}, expected {shape}; recomputing"
        )
        return None
    if _array_sha256(masks) != sha256:
        print(f"mask cache: {path} is not the array its key recorded (changed); recomputing")
        return None
    return masks


def oracle_masks(
    record: DatasetRecord, indices: np.ndarray, input_size: int, size: int, batch_size: int = 64
) -> np.ndarray:
    """Ground-truth R of ``record[indices]``: (N, size, size, 1) float32.

    Each object mask (``record.object_masks`` where the record carries them, else the
    generated set's ``masks/`` files) goes through the images' resize and centre crop
    (nearest neighbour), becomes 1 on the object, ``ORACLE_BORDER`` on its border band
    and 0 elsewhere, and is area-averaged to the ``size`` grid (as the ROL brings R there).
    """
    indices = np.asarray(indices, np.int64)
    if record.object_masks is not None:
        batches = (
            resize_and_crop_masks(record.object_masks[indices[k : k + batch_size]], input_size)
            for k in range(0, len(indices), batch_size)
        )
    else:
        subset = record.subset(indices)
        subset.mask_paths = list(object_mask_paths(subset))
        batches = (
            masks.numpy()
            for _, masks in make_segmentation_dataset(subset, None, input_size, batch_size)
        )
    parts = []
    for m in batches:
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
        pixels=images_digest(record, indices),
    )
    return masks[derange(n, seed)] if source == "shuffled" else masks
