"""Drawing one generated sample: a shape whose kind is its class, with its pixel mask,
on smooth colour noise and stripes with distractor shapes of other classes.

``render_sample`` is deterministic from its generator; ``generated.py`` writes the
samples as a data set.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from rol_hashing.constants import IGNORE_LABEL
from rol_hashing.data.scenes import distinct_colour
from rol_hashing.errors import InputError

# In preference order; a set of N classes uses the first N, sorted by name.
SHAPES = ("disk", "square", "triangle", "cross", "ring", "star", "hexagon", "crescent")
SUPERSAMPLE = 4


def _polygon(center: tuple[float, float], radii: list[float], angles: list[float]) -> list:
    cx, cy = center
    return [
        (cx + r * math.cos(a), cy + r * math.sin(a)) for r, a in zip(radii, angles, strict=True)
    ]


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, theta: float
) -> None:
    """Fills ``shape`` of outer radius ``r`` centred at ``(cx, cy)``, rotated by ``theta``."""

    def box(radius: float, dx: float = 0.0) -> list[float]:
        return [cx + dx - radius, cy - radius, cx + dx + radius, cy + radius]

    if shape == "disk":
        draw.ellipse(box(r), fill=255)
    elif shape == "ring":
        draw.ellipse(box(r), fill=255)
        draw.ellipse(box(0.55 * r), fill=0)
    elif shape == "crescent":
        draw.ellipse(box(r), fill=255)
        offset = 0.5 * r
        draw.ellipse(
            [
                cx + offset * math.cos(theta) - 0.85 * r,
                cy + offset * math.sin(theta) - 0.85 * r,
                cx + offset * math.cos(theta) + 0.85 * r,
                cy + offset * math.sin(theta) + 0.85 * r,
            ],
            fill=0,
        )
    elif shape in ("square", "hexagon", "triangle"):
        sides = {"square": 4, "hexagon": 6, "triangle": 3}[shape]
        start = theta - math.pi / 2 + (math.pi / 4 if sides == 4 else 0.0)
        angles = [start + 2 * math.pi * k / sides for k in range(sides)]
        draw.polygon(_polygon((cx, cy), [r] * sides, angles), fill=255)
    elif shape == "star":
        angles = [theta - math.pi / 2 + math.pi * k / 5 for k in range(10)]
        radii = [r if k % 2 == 0 else 0.42 * r for k in range(10)]
        draw.polygon(_polygon((cx, cy), radii, angles), fill=255)
    elif shape == "cross":
        w = 0.34 * r
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r)]
        pts += [(-x, -y) for x, y in pts]
        c, s = math.cos(theta), math.sin(theta)
        draw.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts], fill=255)
    else:
        raise InputError(f"unknown shape {shape!r}")


def _coverage(shape: str, size: int, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    """Anti-aliased coverage of one shape, ``(size, size)`` float in 0..1."""
    ss = SUPERSAMPLE
    canvas = Image.new("L", (size * ss, size * ss), 0)
    _draw_shape(ImageDraw.Draw(canvas), shape, cx * ss, cy * ss, r * ss, theta)
    return np.asarray(canvas.reduce(ss), dtype=np.float32) / 255.0


def _background(rng: np.random.Generator, size: int, clutter: float) -> np.ndarray:
    """Smooth colour noise plus stripes, ``(size, size, 3)`` float in 0..255."""
    base = rng.uniform(50, 205, size=3)
    grid = rng.integers(3, 7)
    coarse = rng.normal(0.0, 1.0, size=(grid, grid, 3))
    coarse_img = Image.fromarray(np.clip(coarse * 40 + 128, 0, 255).astype(np.uint8), "RGB")
    smooth = (np.asarray(coarse_img.resize((size, size), Image.BICUBIC), np.float32) - 128) / 40
    background = base + smooth * (10 + 30 * clutter)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(0.08, 0.25) * size
    phase = rng.uniform(0, 2 * math.pi)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period + phase)
    background += (stripes * 25 * clutter)[:, :, None] * rng.uniform(-1, 1, size=3)
    return background


# An object's colour differs from the background's mean colour by at least this much.
OBJECT_DISTANCE = 110.0


def render_sample(
    rng: np.random.Generator, label: int, classes: list[str], size: int, clutter: float
) -> tuple[np.ndarray, np.ndarray]:
    """Draws one image of class ``label``.

    Returns ``(image, mask)``: ``(size, size, 3)`` uint8 RGB and ``(size, size)``
    uint8 with 0 background, ``label + 1`` on the object and 255 on its 2-pixel
    border. Distractors are part of the background (0).
    """
    image = _background(rng, size, clutter)
    others = [c for c in range(len(classes)) if c != label]
    for _ in range(int(rng.poisson(8 * clutter)) if clutter > 0 else 0):
        r = rng.uniform(0.06, 0.12) * size
        cx, cy = rng.uniform(r, size - r, size=2)
        shape = classes[int(rng.choice(others))]
        alpha = _coverage(shape, size, cx, cy, r, rng.uniform(-0.4, 0.4))[:, :, None]
        image = image * (1 - alpha) + distinct_colour(rng, image, OBJECT_DISTANCE) * alpha
    r = rng.uniform(0.26, 0.38) * size
    cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
    alpha = _coverage(classes[label], size, cx, cy, r, rng.uniform(-0.35, 0.35))
    colour = distinct_colour(rng, image, OBJECT_DISTANCE)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    shading = ((xx - cx) * rng.uniform(-1, 1) + (yy - cy) * rng.uniform(-1, 1)) / r * 12
    fill = colour[None, None, :] + shading[:, :, None]
    image = image * (1 - alpha[:, :, None]) + fill * alpha[:, :, None]
    image += rng.normal(0, 4 + 8 * clutter, size=image.shape)
    inside = Image.fromarray(((alpha >= 0.5) * 255).astype(np.uint8), "L")
    grown = np.asarray(inside.filter(ImageFilter.MaxFilter(3))) > 0
    shrunk = np.asarray(inside.filter(ImageFilter.MinFilter(3))) > 0
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[np.asarray(inside) > 0] = label + 1
    mask[grown & ~shrunk] = IGNORE_LABEL
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask
