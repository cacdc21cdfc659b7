"""The generated data set: shapes with pixel masks on cluttered backgrounds.

The embedded default data set (no real data set can be downloaded here). Each
image holds one object whose *shape* is its class (disk, square, triangle, ...),
with a random colour, size, position and small rotation, on a background of
smooth colour noise and stripes plus small distractor shapes of *other* classes.
Colour and global statistics carry no class signal, and the distractors carry a
misleading one, so a model gains from knowing where the object is: the situation
the Reliability Object Layer is built for. ``clutter`` (0..1) sets how strong
the background texture and how many distractors there are.

Everything is deterministic from ``seed``: image ``i`` of each stream depends
only on ``(seed, stream, i)`` and the size settings, and the same arguments
write byte-identical files. Layout (``LAYOUT``): a VOC-style devkit for the
segmentation stream and class folders with a split file for hashing; the real
loaders (``load_voc_segmentation``, ``load_voc2012``, ``load_class_folders``)
read both.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from rol_hashing import viz
from rol_hashing.data.fileio import read_json
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.images import voc_palette
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.shapes import SHAPES, render_sample
from rol_hashing.data.splits import draw_split
from rol_hashing.data.voc import load_voc_segmentation
from rol_hashing.errors import InputError
from rol_hashing.io import atomic_path, atomic_write_text

# 2: the hashing images also get their ground-truth object masks (masks/).
FORMAT = 2
JPEG_QUALITY = 90
LAYOUT = """\
  <root>/meta.json, <root>/classes.txt
  <root>/VOCdevkit/VOC2012/          (segmentation stream, VOC format)
    JPEGImages/{seg_NNNNN,img_NNNNN}.jpg
    SegmentationClass/seg_NNNNN.png  (palette PNG: 0 background, 1..N, 255 border)
    ImageSets/Segmentation/{train,val,trainval}.txt
    ImageSets/Main/<class>_trainval.txt, trainval.txt
    classes.txt
  <root>/classes/                    (hashing images, class-folder format)
    <class>/img_NNNNN.jpg, classes.txt, split.json
  <root>/masks/                      (each hashing image's object mask, as the VOC ones)
    <class>/img_NNNNN.png"""
_OUTPUTS = ("VOCdevkit", "classes", "masks", "classes.txt", "meta.json")
MASKS_DIR = "masks"


@dataclass(frozen=True)
class GeneratedConfig:
    """The generator's settings (stored in ``meta.json``)."""

    num_images: int = 2000
    num_seg_images: int = 400
    num_classes: int = 6
    image_size: int = 96
    clutter: float = 0.5
    seed: int = 0
    val_fraction: float = 0.25
    query_fraction: float = 0.1
    train_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(SHAPES):
            raise InputError(f"num_classes must be in 2..{len(SHAPES)}, got {self.num_classes}")
        if self.image_size < 24:
            raise InputError(f"image_size must be at least 24, got {self.image_size}")
        if not 0.0 <= self.clutter <= 1.0:
            raise InputError(f"clutter must be in 0..1, got {self.clutter}")
        if self.seed < 0:
            raise InputError(f"seed must be 0 or more, got {self.seed}")
        if self.num_images < 2 * self.num_classes or self.num_seg_images < 2:
            raise InputError(
                f"need at least {2 * self.num_classes} hashing images (2 per class) and 2 "
                f"segmentation images, got {self.num_images} and {self.num_seg_images}"
            )

    @property
    def class_names(self) -> list[str]:
        return sorted(SHAPES[: self.num_classes])


# ----------------------------------------------------------------------------- drawing


# ----------------------------------------------------------------------------- writing


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image, "RGB").save(path, format="JPEG", quality=JPEG_QUALITY)


def _save_mask(mask: np.ndarray, path: Path) -> None:
    png = Image.fromarray(mask, "P")
    png.putpalette(voc_palette().reshape(-1).tolist())
    png.save(path, format="PNG")


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _progress(label: str, done: int, total: int, verbose: bool) -> None:
    if verbose and (done == total or done % 200 == 0):
        print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)


def _write_all(config: GeneratedConfig, out: Path, verbose: bool) -> None:
    classes = config.class_names
    devkit = out / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "ImageSets/Main"):
        (devkit / sub).mkdir(parents=True, exist_ok=True)
    seg_ids, hash_ids, labels = [], [], {}
    for i in range(config.num_seg_images):
        label = i % config.num_classes
        rng = np.random.default_rng([config.seed, 1, i])
        image, mask = render_sample(rng, label, classes, config.image_size, config.clutter)
        key = f"seg_{i:05d}"
        _save_jpeg(image, devkit / "JPEGImages" / f"{key}.jpg")
        _save_mask(mask, devkit / "SegmentationClass" / f"{key}.png")
        seg_ids.append(key)
        labels[key] = label
        _progress("segmentation images", i + 1, config.num_seg_images, verbose)
    class_root = out / "classes"
    for i in range(config.num_images):
        label = i % config.num_classes
        rng = np.random.default_rng([config.seed, 2, i])
        image, mask = render_sample(rng, label, classes, config.image_size, config.clutter)
        key = f"img_{i:05d}"
        folder = class_root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        _save_jpeg(image, folder / f"{key}.jpg")
        (out / MASKS_DIR / classes[label]).mkdir(parents=True, exist_ok=True)
        _save_mask(mask, out / MASKS_DIR / classes[label] / f"{key}.png")
        shutil.copyfile(folder / f"{key}.jpg", devkit / "JPEGImages" / f"{key}.jpg")
        hash_ids.append(key)
        labels[key] = label
        _progress("hashing images", i + 1, config.num_images, verbose)

    n_val = max(1, int(round(config.val_fraction * len(seg_ids))))
    order = np.random.default_rng([config.seed, 3]).permutation(len(seg_ids))
    val = sorted(seg_ids[k] for k in order[:n_val])
    train = sorted(seg_ids[k] for k in order[n_val:])
    seg_lists = devkit / "ImageSets" / "Segmentation"
    _write_lines(seg_lists / "train.txt", train)
    _write_lines(seg_lists / "val.txt", val)
    _write_lines(seg_lists / "trainval.txt", sorted(seg_ids))
    all_ids = sorted(seg_ids + hash_ids)
    main = devkit / "ImageSets" / "Main"
    _write_lines(main / "trainval.txt", all_ids)
    for c, name in enumerate(classes):
        flags = [f"{key} {1 if labels[key] == c else -1:2d}" for key in all_ids]
        _write_lines(main / f"{name}_trainval.txt", flags)
    _write_lines(devkit / "classes.txt", classes)
    _write_lines(class_root / "classes.txt", classes)
    _write_lines(out / "classes.txt", classes)

    record = load_class_folders(class_root, name="generated")
    split = draw_split(
        record, config.train_fraction, config.query_fraction, per_class=True, seed=config.seed
    )
    split.save(class_root / "split.json")
    meta = {
        "format": FORMAT,
        "generator": "rol_hashing.data.generated",
        "config": asdict(config),
        "classes": classes,
        "counts": {
            "segmentation": {"train": len(train), "val": len(val), "trainval": len(seg_ids)},
            "hashing": split.counts(),
        },
    }
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1) + "\n")


def make_generated_dataset(
    out: str | Path = "data/generated",
    num_images: int = 2000,
    num_classes: int = 6,
    image_size: int = 96,
    clutter: float = 0.5,
    seed: int = 0,
    num_seg_images: int = 400,
    force: bool = False,
    verbose: bool = False,
) -> Path:
    """Writes the generated data set under ``out`` (layout: ``LAYOUT``); returns ``out``.

    Args:
        out: destination folder.
        num_images: hashing images (class folders), spread evenly over the classes.
        num_classes: 2..8 shape classes.
        image_size: side of the square images, in pixels.
        clutter: 0..1, background texture strength and distractor count.
        seed: everything is drawn from it.
        num_seg_images: segmentation images (VOC devkit, with masks).
        force: replace an existing data set made with other settings.
        verbose: print progress to stderr.

    An existing data set with the same settings is left as is. Files are written
    to ``<out>.partial`` first and moved into place at the end.
    """
    config = GeneratedConfig(
        num_images=num_images,
        num_seg_images=num_seg_images,
        num_classes=num_classes,
        image_size=image_size,
        clutter=float(clutter),
        seed=seed,
    )
    out = Path(out)
    meta_path = out / "meta.json"
    if meta_path.is_file():
        try:
            content = read_json(meta_path, "meta file")
            existing, existing_format = content.get("config"), content.get("format")
        except (OSError, InputError, AttributeError):
            existing, existing_format = None, None
        if existing == asdict(config) and existing_format == FORMAT:
            if verbose:
                print(f"{out} is up to date", file=sys.stderr)
            return out
    if out.exists() and any((out / name).exists() for name in _OUTPUTS) and not force:
        raise InputError(f"{out} already holds a data set made with other settings; use --force")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    _write_all(config, partial, verbose)
    out.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        (partial / name).rename(target)
    partial.rmdir()
    return out


def class_folder(root: str | Path) -> Path:
    """The folder of the generated set's hashing images: ``<root>/classes``, or ``root``
    itself when it is that folder (it holds the set's ``split.json``)."""
    root = Path(root).expanduser()
    return root / "classes" if (root / "classes").is_dir() else root


def load_generated(root: str | Path, strict: bool = False) -> DatasetRecord:
    """The generated set's hashing images (``class_folder``), with their split file."""
    root = Path(root).expanduser()
    folder = class_folder(root)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{root} does not exist; create it with `rol-hashing make-data --out {root}`. "
            f"Expected layout:\n{LAYOUT}"
        )
    return load_class_folders(folder, strict=strict, name="generated")


def object_mask_paths(record: DatasetRecord) -> list[Path]:
    """The ground-truth object mask of each image of a generated record, in record order:
    ``<root>/masks/<class>/<name>.png`` beside ``<root>/classes/<class>/<name>.jpg``.

    Raises:
        FileNotFoundError: the record is not a generated set with masks (made before
            format 2, or another data set), naming the first missing file.
    """
    if record.paths is None:
        raise FileNotFoundError(f"{record.name}: in-memory images have no object masks")
    out = []
    for path in record.paths:
        path = Path(path)
        mask = path.parents[2] / MASKS_DIR / path.parent.name / f"{path.stem}.png"
        if not mask.is_file():
            raise FileNotFoundError(
                f"object mask {mask} not found: the oracle mask source needs the generated "
                f"data set's masks/ (format {FORMAT}); remake it with `rol-hashing make-data "
                "--force`"
            )
        out.append(mask)
    return out


def write_examples_png(
    root: str | Path, out_png: str | Path, count: int = 6, per_row: int = 3, scale: int = 2
) -> Path:
    """Tiles ``count`` segmentation images beside their coloured masks into one PNG."""
    record = load_voc_segmentation(Path(root), split="trainval")
    palette = voc_palette()
    tiles = []
    for k in range(min(count, len(record))):
        with Image.open(record.paths[k]) as image:
            rgb = np.asarray(image.convert("RGB"))
        with Image.open(record.mask_paths[k]) as mask_image:
            mask = np.asarray(mask_image)
        tiles.append(np.concatenate([rgb, palette[mask]], axis=1))
    if not tiles:
        raise InputError(f"{root} has no segmentation images")
    sheet = viz.image_sheet(tiles, per_row, scale=scale)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_png) as tmp:
        Image.fromarray(sheet, "RGB").save(tmp, format="PNG")
    return out_png
