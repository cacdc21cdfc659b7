"""Robust image and mask reading with PIL: every odd mode becomes RGB, bad files are named.

One decoder (PIL) serves the loaders' validation and the tf.data pipeline, so an
image that passed validation decodes the same way during training.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from rol_hashing.data.fileio import path_problem
from rol_hashing.errors import InputError

# Refuse images declaring more pixels than this (PIL's own default bomb limit).
MAX_PIXELS = 89_478_485

# Images shown through transparency are composited on this colour (what a viewer shows).
ALPHA_BACKGROUND = (255, 255, 255)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Formats PIL may decode, whatever a file's suffix says: the common raster formats a
# folder from the web holds (a ".jpg" is often a PNG or WebP). Others are refused,
# notably EPS (PIL would run Ghostscript on it) and rarely used, little-fuzzed plugins.
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")  # JPEG includes MPO


class ImageError(InputError):
    """An image or mask file that cannot be used; the message names the file."""


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map, ``(num_colors, 3)`` uint8 (index 255 is (224, 224, 192))."""
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for index in range(num_colors):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def _open_checked(path: Path, max_pixels: int) -> Image.Image:
    """Opens ``path`` lazily, refusing unreadable files and decompression bombs."""
    try:
        image = Image.open(path, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path}: refused, too many pixels (decompression bomb?): {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(
            f"{path}: not a readable image ({err}; accepted formats: {', '.join(ACCEPTED_FORMATS)})"
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageError(
            f"{path}: refused, declares {width}x{height} pixels, above the limit of "
            f"{max_pixels} (decompression bomb?)"
        )
    if width == 0 or height == 0:
        image.close()
        raise ImageError(f"{path}: empty image ({width}x{height})")
    return image


def to_rgb(image: Image.Image) -> np.ndarray:
    """Converts a PIL image of any mode to ``(H, W, 3)`` uint8 RGB.

    Grayscale is replicated, CMYK and palette images are converted, 16-bit and
    float images are scaled to 0..255, and transparency is composited on
    ``ALPHA_BACKGROUND``.
    """
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode == "1":
        image = image.convert("L")
    return np.asarray(image.convert("RGB"))


def decode_image(
    path: str | Path, max_pixels: int = MAX_PIXELS, min_size: int | None = None
) -> np.ndarray:
    """Reads an image file as ``(H, W, 3)`` uint8 RGB; ImageError names a bad file.

    ``min_size``: each side of at least ``2 * min_size`` pixels is shrunk by a whole
    factor to between ``min_size`` and ``2 * min_size`` (JPEG while decoding, via
    ``draft``; others by ``Image.reduce``, a box filter), before any conversion, so
    what follows PIL's decode takes memory of the order of ``min_size`` squared.
    """
    path = Path(path)
    image = _open_checked(path, max_pixels)
    try:
        with image:
            if min_size is not None:
                return to_rgb(_reduced(image, min_size))
            image.load()
            return to_rgb(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt or truncated image ({err})") from None


# Modes Image.reduce takes; others are made RGB first.
_REDUCE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F")


def _reduced(image: Image.Image, min_size: int) -> Image.Image:
    """``image`` loaded and shrunk by a whole factor per side, each side kept at least
    ``min_size`` (JPEG: the DCT scaling of ``draft`` first)."""
    width, height = image.size
    image.draft(image.mode, (min(width, min_size), min(height, min_size)))  # JPEG only
    image.load()
    factors = (max(1, image.width // min_size), max(1, image.height // min_size))
    if factors == (1, 1):
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")  # 4 bytes a pixel, as to_rgb reads it
    elif image.mode not in _REDUCE_MODES:
        image = Image.fromarray(to_rgb(image))
    return image.reduce(factors)


def not_a_file(path: Path) -> str:
    """ "<path>: file not found", or what is there instead ("is a named pipe (FIFO), not
    an image file", "is a symbolic link loop", ...): for a path that is no regular file."""
    return f"{path}: {path_problem(path, 'an image file', 'file not found') or 'file not found'}"


def image_size(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    path = Path(path)
    with _open_checked(path, max_pixels) as image:
        return image.size


def validate_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Fully decodes ``path`` (JPEGs at reduced scale, which still reads every byte).

    Returns ``(width, height)``; raises ImageError naming the file for a corrupt,
    truncated, empty or oversized image.
    """
    path = Path(path)
    image = _open_checked(path, max_pixels)
    try:
        with image:
            size = image.size
            if image.format == "JPEG":
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
            return size
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt or truncated image ({err})") from None


def read_mask(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Reads a segmentation mask as ``(H, W)`` uint8 class indices (255 = ignore).

    Palette (``P``) and grayscale (``L``) PNGs hold the indices directly; an RGB
    mask is mapped back through the VOC colour map (an unknown colour is an error).
    """
    path = Path(path)
    image = _open_checked(path, max_pixels)
    try:
        with image:
            image.load()
            if image.mode in ("P", "L"):
                return np.array(image, dtype=np.uint8)
            if image.mode in ("RGB", "RGBA"):
                return _rgb_mask_to_indices(np.asarray(image.convert("RGB")), path)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt or truncated mask ({err})") from None
    raise ImageError(f"{path}: mask mode {image.mode!r} is not a palette, gray or RGB PNG")


def _rgb_mask_to_indices(rgb: np.ndarray, path: Path) -> np.ndarray:
    palette = voc_palette().astype(np.int64)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(code): index for index, code in enumerate(codes)}
    pixels = rgb.astype(np.int64)
    flat = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    unique, inverse = np.unique(flat, return_inverse=True)
    indices = []
    for code in unique:
        if int(code) not in lookup:
            colour = (int(code) >> 16, (int(code) >> 8) & 255, int(code) & 255)
            raise ImageError(f"{path}: RGB mask colour {colour} is not in the VOC colour map")
        indices.append(lookup[int(code)])
    return np.asarray(indices, dtype=np.uint8)[inverse].reshape(flat.shape)


def check_files(
    paths: Sequence[Path],
    check: Callable[[Path], object] = validate_image,
    strict: bool = False,
    workers: int | None = None,
    progress_label: str | None = None,
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Runs ``check`` on every path in a thread pool.

    Returns ``(ok, skipped)``: ``ok`` is an ``(N,)`` bool array and ``skipped``
    lists ``(path, reason)`` for the failures. With ``strict`` the first failure
    (in path order) is raised instead. A missing file counts as a failure.
    """

    def run(path: Path) -> str | None:
        if not path.is_file():  # a named pipe, a link loop, ... is named and never opened
            return not_a_file(path)
        try:
            check(path)
        except ImageError as err:
            return str(err)
        return None

    ok = np.ones(len(paths), dtype=bool)
    skipped: list[tuple[str, str]] = []
    workers = workers or min(8, len(paths) or 1)
    report_every = max(1000, len(paths) // 10)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, error in enumerate(pool.map(run, paths, chunksize=16)):
            if progress_label and (i + 1) % report_every == 0:
                print(f"{progress_label}: {i + 1}/{len(paths)}", file=sys.stderr, flush=True)
            if error is None:
                continue
            if strict:
                raise ImageError(error)
            ok[i] = False
            reason = error.split(": ", 1)[1] if error.startswith(f"{paths[i]}: ") else error
            skipped.append((str(paths[i]), reason))
    if skipped:
        listed = "; ".join(f"{p} ({r})" for p, r in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(
            f"skipped {len(skipped)} unreadable file(s): {listed}{more}", UserWarning, stacklevel=3
        )
    return ok, skipped


def list_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in ``folder`` (by suffix, case-insensitive), sorted by name."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes),
        key=lambda p: p.name,
    )
