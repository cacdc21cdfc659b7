"""The two Fashion-MNIST variants' derived files: scenes, and the segmentation devkits.

- ``write_scenes``: the ``fashion_scenes`` variant of a split (``scenes.py`` renders each
  scene) as arrays a loader maps from disk::

    <out>/meta.json          what the scenes were made from (see SCENES_FORMAT)
    <out>/images.npy         (N, S, S, 3) uint8 RGB scenes, in the source record's order
    <out>/masks.npy          (N, S, S) uint8: 1 the main item, 255 its border band, 0 else
    <out>/labels.npy         (N,) int64, the main item's class
    <out>/ids.json           the N ids (those of the clean record)

  A distractor of a scene comes from the same part of the split as the scene (query
  scenes from queries, set-aside scenes from the set-aside images, every other scene
  from the rest), so no query item is seen in a training or gallery scene.
- ``write_devkit``: the segmentation stream's images (the split's ``set_aside``) in the
  VOC layout that ``train-seg`` reads, with the data set's class names.
- ``load_fashion_scenes``: the registry's loader for ``<out>``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from rol_hashing.data.fashion import CLASS_NAMES
from rol_hashing.data.fileio import read_json
from rol_hashing.data.images import voc_palette
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.scenes import render_scene
from rol_hashing.data.splits import Split
from rol_hashing.errors import InputError
from rol_hashing.io import atomic_path, atomic_write_text

SCENES_FORMAT = 1
SCENES_LAYOUT = """\
  <root>/meta.json, images.npy (N, S, S, 3) uint8, masks.npy (N, S, S) uint8,
  labels.npy (N,) int64, ids.json   (written by `rol-hashing fashion`)"""
DEVKIT_VAL_FRACTION = 0.25
JPEG_QUALITY = 95


def split_sha256(split: Split) -> str:
    """A digest of a split's parts (what a derived file of the split depends on)."""
    parts = [split.dataset, str(split.seed), *split.train, "|", *split.query, "|"]
    parts += [*split.gallery, "|", *split.set_aside]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _pools(record: DatasetRecord, split: Split) -> np.ndarray:
    """(N,) int: the part each image draws its distractors from (0 rest, 1 query, 2
    set aside)."""
    pool = np.zeros(len(record), np.int64)
    pool[record.index_of(split.query)] = 1
    if split.set_aside:
        pool[record.index_of(split.set_aside)] = 2
    return pool


def _distractors(
    rng: np.random.Generator, members: np.ndarray, labels: np.ndarray, label: int
) -> list[int]:
    """Two positions of ``members`` whose class is not ``label`` (seeded draws)."""
    chosen: list[int] = []
    for _ in range(64):
        k = int(members[int(rng.integers(len(members)))])
        if labels[k] != label and k not in chosen:
            chosen.append(k)
            if len(chosen) == 2:
                break
    return chosen


def _source_root(record: DatasetRecord) -> str:
    """The source's folder, resolved: one folder named by a relative or an absolute path
    is one source (else a second call rewrites the scenes or the devkit, and the stream's
    key goes stale)."""
    return str(Path(record.root).resolve())


def scenes_meta(record: DatasetRecord, split: Split, size: int, seed: int) -> dict:
    """What a scenes folder is made from: the source ids and labels, the split, the
    sizes and the seed (compared field by field before a folder is reused)."""
    labels = np.ascontiguousarray(record.labels, np.int64)
    return {
        "format": SCENES_FORMAT,
        "source": record.name,
        "source_root": _source_root(record),
        "ids_sha256": hashlib.sha256("\n".join(record.ids).encode()).hexdigest(),
        "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
        "pixels_sha256": hashlib.sha256(np.ascontiguousarray(record.images).tobytes()).hexdigest(),
        "split_sha256": split_sha256(split),
        "size": size,
        "seed": seed,
        "count": len(record),
    }


def scenes_current(
    record: DatasetRecord, split: Split, out: str | Path, size: int = 64, seed: int = 0
) -> bool:
    """Whether ``out`` holds the scenes ``write_scenes`` would make from these arguments."""
    return _up_to_date(Path(out), scenes_meta(record, split, size, seed))


def write_scenes(
    record: DatasetRecord, split: Split, out: str | Path, size: int = 64, seed: int = 0
) -> Path:
    """Renders one scene per image of the clean ``record`` into ``out`` (layout above).

    A folder made from the same record, split, size and seed is kept as it is. Files are
    written into ``<out>.partial`` and moved into place at the end.
    """
    out = Path(out)
    meta = scenes_meta(record, split, size, seed)
    if _up_to_date(out, meta):
        return out
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    n = len(record)
    images = np.lib.format.open_memmap(partial / "images.npy", "w+", np.uint8, (n, size, size, 3))
    masks = np.lib.format.open_memmap(partial / "masks.npy", "w+", np.uint8, (n, size, size))
    del images, masks  # the workers fill them
    labels = np.asarray(record.labels, np.int64)
    job = partial / "job.npz"
    np.savez(job, gray=np.asarray(record.images[..., 0]), labels=labels, pool=_pools(record, split))
    chunks = [(k, min(k + SCENE_CHUNK, n)) for k in range(0, n, SCENE_CHUNK)]
    workers = max(1, min(len(chunks), len(os.sched_getaffinity(0))))
    args = [(str(partial), start, stop, size, seed) for start, stop in chunks]
    if workers == 1:
        for a in args:
            _render_chunk(*a)
    else:  # spawned, not forked: the parent may hold TensorFlow's threads
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(_render_chunk, *zip(*args, strict=True)))
    job.unlink()
    np.save(partial / "labels.npy", labels)
    (partial / "ids.json").write_text(json.dumps(list(record.ids)), encoding="utf-8")
    (partial / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


SCENE_CHUNK = 2000


def _render_chunk(folder: str, start: int, stop: int, size: int, seed: int) -> None:
    """Renders scenes ``start .. stop - 1`` into ``<folder>/{images,masks}.npy`` (a worker)."""
    job = np.load(Path(folder) / "job.npz", allow_pickle=False)
    gray, labels, pool = job["gray"], job["labels"], job["pool"]
    members = [np.flatnonzero(pool == p) for p in range(3)]
    images = np.load(Path(folder) / "images.npy", mmap_mode="r+")
    masks = np.load(Path(folder) / "masks.npy", mmap_mode="r+")
    for i in range(start, stop):
        rng = np.random.default_rng([seed, 41, i])
        others = _distractors(rng, members[pool[i]], labels, int(labels[i]))
        images[i], masks[i] = render_scene(rng, gray[i], [gray[k] for k in others], size)
    images.flush()
    masks.flush()


def _up_to_date(out: Path, meta: dict) -> bool:
    try:
        stored = read_json(out / "meta.json", "scenes meta file")
    except (OSError, InputError):
        return False
    files = ("images.npy", "masks.npy", "labels.npy", "ids.json")
    return stored == meta and all((out / name).is_file() for name in files)


def load_fashion_scenes(root: str | Path, strict: bool = False) -> DatasetRecord:
    """The scenes written by ``write_scenes``: images and masks mapped from disk.

    Raises:
        FileNotFoundError: ``root`` holds no scenes (names the command that writes them).
        InputError: the arrays do not fit each other or ``meta.json``.
    """
    root = Path(root).expanduser()
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} not found: write the scenes with `rol-hashing fashion` (or "
            f"`make fashion`); expected this layout:\n{SCENES_LAYOUT}"
        )
    meta = read_json(meta_path, "scenes meta file")
    if not isinstance(meta, dict) or meta.get("format") != SCENES_FORMAT:
        raise InputError(f"{meta_path}: not a scenes meta file of format {SCENES_FORMAT}")
    ids = read_json(root / "ids.json", "scenes id list")
    images = np.load(root / "images.npy", mmap_mode="r", allow_pickle=False)
    masks = np.load(root / "masks.npy", mmap_mode="r", allow_pickle=False)
    labels = np.load(root / "labels.npy", allow_pickle=False)
    size, count = meta.get("size"), meta.get("count")
    expected = {
        "images.npy": ((count, size, size, 3), images.shape),
        "masks.npy": ((count, size, size), masks.shape),
        "labels.npy": ((count,), labels.shape),
    }
    for name, (want, got) in expected.items():
        if tuple(want) != tuple(got):
            raise InputError(f"{root / name}: shape {tuple(got)}, meta.json says {tuple(want)}")
    if not isinstance(ids, list) or len(ids) != count:
        raise InputError(f"{root / 'ids.json'}: expected a list of {count} ids")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise InputError(f"{root / 'labels.npy'}: labels outside 0..{len(CLASS_NAMES) - 1}")
    return DatasetRecord(
        name="fashion_scenes",
        class_names=list(CLASS_NAMES),
        labels=labels.astype(np.int64),
        ids=[str(i) for i in ids],
        root=root,
        images=images,
        object_masks=masks,
        info={"format": "scenes", "size": size, "seed": meta.get("seed")},
    )


# ----------------------------------------------------------------------------- devkit


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    from PIL import Image  # lazy: only the writers need PIL

    with atomic_path(path, suffix=".jpg") as tmp:
        Image.fromarray(np.ascontiguousarray(image), "RGB").save(
            tmp, format="JPEG", quality=JPEG_QUALITY
        )


def _save_mask(mask: np.ndarray, path: Path) -> None:
    from PIL import Image  # lazy: as above

    png = Image.fromarray(np.ascontiguousarray(mask), "P")
    png.putpalette(voc_palette().reshape(-1).tolist())
    with atomic_path(path, suffix=".png") as tmp:
        png.save(tmp, format="PNG")


def devkit_key(record: DatasetRecord, split: Split) -> dict:
    """What a devkit is made from (stored as ``<devkit>/made_from.json``)."""
    return {
        "source": record.name,
        "source_root": _source_root(record),
        "split_sha256": split_sha256(split),
        "count": len(split.set_aside),
    }


def write_devkit(record: DatasetRecord, split: Split, out: str | Path) -> Path:
    """The split's set-aside images and object masks as a VOC devkit; returns its
    ``VOC2012`` folder. Masks: 0 background, ``label + 1`` the item, 255 its border.
    A quarter (seeded) is the stream's val list. A devkit made from the same record
    and split is kept."""
    if record.object_masks is None:
        raise InputError(f"{record.name}: the record carries no object masks")
    if not split.set_aside:
        raise InputError(f"the split of {record.name!r} sets no images aside for the stream")
    devkit = Path(out) / "VOCdevkit" / "VOC2012"
    key = devkit_key(record, split)
    try:
        if read_json(devkit / "made_from.json", "devkit key") == key:
            return devkit
    except (OSError, InputError):
        pass
    if devkit.exists():
        shutil.rmtree(devkit)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (devkit / sub).mkdir(parents=True, exist_ok=True)
    positions = record.index_of(split.set_aside)
    names = []
    for i in positions:
        name = record.ids[i].replace("/", "_")
        image = np.asarray(record.images[i])
        mask = np.asarray(record.object_masks[i]).copy()
        mask[mask == 1] = int(record.labels[i]) + 1
        _save_jpeg(image, devkit / "JPEGImages" / f"{name}.jpg")
        _save_mask(mask, devkit / "SegmentationClass" / f"{name}.png")
        names.append(name)
    order = np.random.default_rng([split.seed, 43]).permutation(len(names))
    n_val = max(1, int(round(DEVKIT_VAL_FRACTION * len(names))))
    lists = devkit / "ImageSets" / "Segmentation"
    for part, chosen in (("val", order[:n_val]), ("train", order[n_val:])):
        atomic_write_text(lists / f"{part}.txt", "".join(f"{names[k]}\n" for k in sorted(chosen)))
    atomic_write_text(lists / "trainval.txt", "".join(f"{n}\n" for n in sorted(names)))
    atomic_write_text(devkit / "classes.txt", "".join(f"{n}\n" for n in record.class_names))
    atomic_write_text(devkit / "made_from.json", json.dumps(key, indent=1) + "\n")
    return devkit
