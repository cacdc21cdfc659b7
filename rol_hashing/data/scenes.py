"""Rendering cluttered scenes: a real item, enlarged and tinted, on a crop of a real photo.

The ``fashion_scenes`` variant (``fashion_sets.py`` writes it) puts each Fashion-MNIST
item on a background cut from a photograph, with one or two smaller items of other
classes as distractors, as the generated set does with shapes. The label is the main
item's class; only the main item is the object of the ground-truth mask (distractors
are background, 0), so R should find it and ignore them.

Photographs: the three that the project's dependencies already ship, so nothing is
fetched: scikit-learn's ``china.jpg`` and ``flower.jpg`` (its sample images, 640x427)
and matplotlib's ``grace_hopper.jpg`` (512x600). They give buildings, foliage, petals,
a face and a uniform: textures and edges at every scale, unlike the generated set's
smooth noise. Each scene crops one of them at a random place and scale (a quarter to
two thirds of its short side), mirrors it at random, and shifts its colours.

Every draw of scene ``i`` comes from ``np.random.default_rng([seed, 41, i])``: the same
seed, sizes and items give byte-identical scenes.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from rol_hashing.constants import IGNORE_LABEL

# (package, file) of each photograph, shipped by a dependency.
PHOTOS: tuple[tuple[str, str], ...] = (
    ("sklearn.datasets.images", "china.jpg"),
    ("sklearn.datasets.images", "flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)
# The main item's side as a fraction of the scene's, and the distractors'.
MAIN_SCALE = (0.62, 0.82)
DISTRACTOR_SCALE = (0.34, 0.48)
DISTRACTORS = (1, 2)  # drawn uniformly from 1..2
# Item alpha: gray value / ALPHA_RAMP, clipped to 1 (items lie on black, 0 = background).
ALPHA_RAMP = 48.0
# Pixels where the placed main item's gray value exceeds this are its object mask.
MASK_THRESHOLD = 24


def photo_path(package: str, name: str) -> Path:
    """The file of a shipped photograph (``PHOTOS``)."""
    return Path(str(resources.files(package).joinpath(name)))


@lru_cache(maxsize=1)
def load_photos() -> tuple[np.ndarray, ...]:
    """The photographs as (H, W, 3) uint8 RGB arrays, read once per process."""
    out = []
    for package, name in PHOTOS:
        with Image.open(photo_path(package, name)) as photo:
            out.append(np.asarray(photo.convert("RGB")))
    return tuple(out)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a random photograph, (size, size, 3) float32 in 0..255."""
    photos = load_photos()
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.25, 0.67) * min(h, w))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    crop = crop.resize((size, size), Image.BILINEAR)
    if rng.integers(2):
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    background = np.asarray(crop, np.float32)
    gain = rng.uniform(0.75, 1.25, size=3)  # a colour shift, so no photo's palette is a cue
    return np.clip(background * gain + rng.uniform(-20, 20, size=3), 0, 255)


def distinct_colour(
    rng: np.random.Generator, background: np.ndarray, min_distance: float
) -> np.ndarray:
    """A random RGB colour at least ``min_distance`` from the background's mean (up to
    32 more draws; the last one otherwise)."""
    mean = background.reshape(-1, 3).mean(axis=0)
    colour = rng.uniform(0, 255, size=3)
    for _ in range(32):
        if np.linalg.norm(colour - mean) >= min_distance:
            break
        colour = rng.uniform(0, 255, size=3)
    return colour


# An item's tint differs from the scene's mean colour by at least this much.
TINT_DISTANCE = 100.0


def _place(
    rng: np.random.Generator, gray: np.ndarray, size: int, scale: tuple[float, float]
) -> tuple[np.ndarray, int, int]:
    """The item resized to a random side in ``scale`` x ``size``, and a random top-left
    corner that keeps it inside the scene: (gray (s, s) float32 0..255, top, left)."""
    side = max(8, int(round(rng.uniform(*scale) * size)))
    item = Image.fromarray(gray).resize((side, side), Image.BILINEAR)
    if rng.integers(2):
        item = item.transpose(Image.FLIP_LEFT_RIGHT)
    top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    return np.asarray(item, np.float32), top, left


def _paste(
    image: np.ndarray, gray: np.ndarray, top: int, left: int, colour: np.ndarray
) -> np.ndarray:
    """Blends a tinted item into ``image`` in place: its shading from its gray values."""
    s = gray.shape[0]
    alpha = np.clip(gray / ALPHA_RAMP, 0.0, 1.0)[:, :, None]
    fill = colour[None, None, :] * (0.35 + 0.65 * gray[:, :, None] / 255.0)
    window = image[top : top + s, left : left + s]
    window[:] = window * (1 - alpha) + fill * alpha
    return image


def object_mask(inside: np.ndarray) -> np.ndarray:
    """(S, S) bool object pixels -> (S, S) uint8: 1 inside, 255 on the object's 2-pixel
    border band (3x3 dilation minus 3x3 erosion), 0 elsewhere (``DatasetRecord.object_masks``)."""
    pil = Image.fromarray((inside * 255).astype(np.uint8), "L")
    grown = np.asarray(pil.filter(ImageFilter.MaxFilter(3))) > 0
    shrunk = np.asarray(pil.filter(ImageFilter.MinFilter(3))) > 0
    mask = np.zeros(inside.shape, np.uint8)
    mask[inside] = 1
    mask[grown & ~shrunk] = IGNORE_LABEL
    return mask


def render_scene(
    rng: np.random.Generator,
    item: np.ndarray,
    distractors: list[np.ndarray],
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One scene of ``item`` (28x28 uint8 gray on black).

    ``distractors``: the candidates' gray images (other classes); 1 or 2 of them are
    drawn, smaller, under the main item. Returns ``(image, mask)``: (size, size, 3)
    uint8 RGB and (size, size) uint8 as ``object_mask`` (the main item only).
    """
    image = _background(rng, size)
    count = int(rng.integers(DISTRACTORS[0], DISTRACTORS[1] + 1))
    for k in rng.choice(len(distractors), size=min(count, len(distractors)), replace=False):
        gray, top, left = _place(rng, distractors[int(k)], size, DISTRACTOR_SCALE)
        _paste(image, gray, top, left, distinct_colour(rng, image, TINT_DISTANCE))
    gray, top, left = _place(rng, item, size, MAIN_SCALE)
    _paste(image, gray, top, left, distinct_colour(rng, image, TINT_DISTANCE))
    image += rng.normal(0.0, 4.0, size=image.shape)
    inside = np.zeros((size, size), bool)
    inside[top : top + gray.shape[0], left : left + gray.shape[1]] = gray > MASK_THRESHOLD
    return np.clip(np.round(image), 0, 255).astype(np.uint8), object_mask(inside)
