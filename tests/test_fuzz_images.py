"""Decoders under fuzz: a few hundred mutated JPEG/PNG files and masks.

Every mutant goes through ``decode_image``, ``validate_image``, ``image_size`` and
``read_mask``: each either works or raises ``ImageError`` naming the file. A class
folder full of them loads with the bad ones skipped and counted (``strict`` raises
naming one), and the images that passed validation go through the tf.data pipeline.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import data_fixtures as fx
import numpy as np
import pytest
from PIL import Image

from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.images import (
    ImageError,
    decode_image,
    image_size,
    read_mask,
    validate_image,
    voc_palette,
)
from rol_hashing.data.pipeline import make_image_dataset


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def seed_files(rng: np.random.Generator) -> dict[str, bytes]:
    """Valid files to mutate: JPEGs, an RGB PNG, palette / 16-bit / gray PNG masks."""
    rgb = Image.fromarray(fx.random_rgb(rng, 24, 32), "RGB")
    mask = np.zeros((24, 32), np.uint8)
    mask[4:20, 6:26] = 3
    mask[0, :] = 255
    palette = Image.fromarray(mask, "P")
    palette.putpalette(voc_palette().flatten().tolist())
    deep = Image.fromarray(mask.astype(np.uint16) * 257)
    return {
        "base.jpg": _encode(rgb, "JPEG", quality=90),
        "progressive.jpg": _encode(rgb, "JPEG", quality=80, progressive=True),
        "base.png": _encode(rgb, "PNG"),
        "palette_mask.png": _encode(palette, "PNG"),
        "deep_mask.png": _encode(deep, "PNG"),
        "gray.png": _encode(Image.fromarray(mask, "L"), "PNG"),
    }


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_jpeg(data: bytes) -> bytes:
    """Rewrites the first SOF marker to declare 65000 x 65000 pixels."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            return data[: at + 5] + struct.pack(">HH", 65000, 65000) + data[at + 9 :]
    raise AssertionError("no SOF marker")


def mutants(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """~300 damaged files: truncations, bit flips, overwritten spans, random bytes, bombs."""
    out: list[tuple[str, bytes]] = []
    for name, data in seed_files(rng).items():
        stem, suffix = name.rsplit(".", 1)
        for n, cut in enumerate(sorted(set(rng.integers(1, len(data), 10).tolist()))):
            out.append((f"{stem}_cut{n}.{suffix}", data[:cut]))
        for n in range(20):
            raw = bytearray(data)
            for position in rng.integers(0, len(raw), int(rng.integers(1, 9))):
                raw[position] ^= 1 << int(rng.integers(0, 8))
            out.append((f"{stem}_flip{n}.{suffix}", bytes(raw)))
        for n in range(10):
            raw = bytearray(data)
            start = int(rng.integers(0, len(raw)))
            span = rng.integers(0, 256, min(len(raw) - start, int(rng.integers(1, 64))))
            raw[start : start + len(span)] = bytes(span.astype(np.uint8))
            out.append((f"{stem}_span{n}.{suffix}", bytes(raw)))
        # a valid header followed by noise
        out.append((f"{stem}_noise.{suffix}", data[:40] + rng.bytes(len(data))))
    for n in range(8):
        out.append((f"random{n}.jpg", rng.bytes(int(rng.integers(1, 4000)))))
        out.append((f"random{n}.png", rng.bytes(int(rng.integers(1, 4000)))))
    out.append(("zero.jpg", b""))
    out.append(("zero.png", b""))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    bomb += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
    out.append(("bomb.png", bomb))
    out.append(("bomb.jpg", _huge_jpeg(seed_files(rng)["base.jpg"])))
    out.append(("bomb_progressive.jpg", _huge_jpeg(seed_files(rng)["progressive.jpg"])))
    out.append(("png_named.jpg", seed_files(rng)["base.png"]))  # right bytes, wrong suffix
    return out


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory) -> tuple[Path, list[Path]]:
    """``<root>/bad/*`` holds the mutants, ``<root>/good/*`` two valid images."""
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(2024)
    files = []
    for name, data in mutants(rng):
        path = root / "bad" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files.append(path)
    for name, data in list(seed_files(rng).items())[:3]:
        (root / "good").mkdir(exist_ok=True)
        (root / "good" / name).write_bytes(data)
    return root, files


def _outcome(function, path: Path):
    try:
        return function(path)
    except ImageError as err:
        assert path.name in str(err), f"error does not name the file: {err}"
        return None


def test_a_few_hundred_mutants_give_results_or_image_errors(fuzz_folder):
    _, files = fuzz_folder
    assert len(files) >= 250
    refused = 0
    for path in files:
        rgb = _outcome(decode_image, path)
        if rgb is not None:
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        size = _outcome(validate_image, path)
        header = _outcome(image_size, path)
        if size is not None:
            assert header == size
        mask = _outcome(read_mask, path)
        if mask is not None:
            assert mask.dtype == np.uint8 and mask.ndim == 2
        refused += rgb is None
    # the zero-byte, random and bomb files at least are refused
    assert refused >= 25
    for name in ("zero.jpg", "zero.png", "bomb.png", "bomb.jpg", "random0.png"):
        with pytest.raises(ImageError, match=name):
            decode_image(fuzz_folder[0] / "bad" / name)
    with pytest.raises(ImageError, match="bomb"):
        validate_image(fuzz_folder[0] / "bad" / "bomb.png")


def test_sixteen_bit_mask_is_refused_palette_mask_is_read(tmp_path):
    rng = np.random.default_rng(0)
    seeds = seed_files(rng)
    (tmp_path / "deep.png").write_bytes(seeds["deep_mask.png"])
    (tmp_path / "palette.png").write_bytes(seeds["palette_mask.png"])
    with pytest.raises(ImageError, match="deep.png: mask mode"):
        read_mask(tmp_path / "deep.png")
    mask = read_mask(tmp_path / "palette.png")
    assert mask.shape == (24, 32) and set(np.unique(mask).tolist()) == {0, 3, 255}


def test_folder_of_mutants_is_skipped_and_counted_then_trains(fuzz_folder):
    root, files = fuzz_folder
    with pytest.warns(UserWarning, match="skipped"):
        record = load_class_folders(root)
    assert len(record) + len(record.skipped) == len(files) + 3
    assert {Path(p).name for p, _ in record.skipped} >= {"zero.jpg", "bomb.png", "random0.png"}
    assert all(reason for _, reason in record.skipped)
    with pytest.raises(ImageError, match=r"bad[/\\]"):
        load_class_folders(root, strict=True)
    # what passed validation also decodes in the tf.data pipeline
    batches = list(make_image_dataset(record, input_size=16, batch_size=64))
    assert sum(int(x.shape[0]) for x, _ in batches) == len(record)
    assert all(np.isfinite(x.numpy()).all() for x, _ in batches)


@pytest.mark.parametrize("fmt", ["EPS", "TIFF", "ICO", "TGA"])
def test_other_formats_are_refused_whatever_the_suffix(tmp_path, fmt):
    path = tmp_path / f"from_elsewhere_{fmt}.jpg"
    if fmt == "EPS":  # PIL would hand this to Ghostscript
        path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    else:
        Image.new("RGB", (8, 8), (10, 20, 30)).save(path, fmt)
    with pytest.raises(ImageError, match="accepted formats: JPEG"):
        decode_image(path)
    for fmt_ok in ("BMP", "GIF", "WEBP"):
        ok = tmp_path / f"mislabelled_{fmt_ok}.jpg"
        Image.new("RGB", (8, 8), (10, 20, 30)).save(ok, fmt_ok)
        assert decode_image(ok).shape == (8, 8, 3)
