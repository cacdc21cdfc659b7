"""Fashion-MNIST from its original IDX files (gzipped or not).

The four files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` lie in one folder
(``apt-get install dataset-fashion-mnist`` puts them in ``/usr/share/datasets/
fashion-mnist``; the GitHub repository's ``data/fashion`` folder holds the same names).
The record holds ``images (N, 28, 28, 3)`` uint8 in file order, train first, ids
``"<part>/<row>"``, and ground-truth object masks computed from the pixels: the items
lie on a black background.

An IDX file is a big-endian header (``>i`` magic, then ``>i`` per dimension) followed by
the uint8 values. Its declared size must match the bytes present exactly, and no more
than the declared size plus one byte is ever inflated, so a small ``.gz`` that inflates
to gigabytes is refused after a few kilobytes.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from rol_hashing.constants import IGNORE_LABEL
from rol_hashing.data.fileio import optional_file, require_file
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError, one_line

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
PARTS = ("train", "t10k")
LAYOUT = """\
  <root>/train-images-idx3-ubyte[.gz]
  <root>/train-labels-idx1-ubyte[.gz]
  <root>/t10k-images-idx3-ubyte[.gz]
  <root>/t10k-labels-idx1-ubyte[.gz]
each gzipped (.gz) or uncompressed (`apt-get install dataset-fashion-mnist` puts them
in /usr/share/datasets/fashion-mnist)"""
# Pixels above this gray value (0..255) are the object. In the real data 50.2% of the
# pixels are exactly 0 and a fading halo follows (1: 1.0%, 2: 0.6%, 5: 0.2% of pixels);
# from 10 on every value holds a flat ~0.1%, the item's own shading. 10 cuts off the
# halo's tail (values 1..10 are 3.1% of the pixels); the void band absorbs the rest.
FOREGROUND_THRESHOLD = 10
# A declared count above this is refused before anything is read (a part holds 60,000).
MAX_ITEMS = 1_000_000
SIDE = 28

_MAGIC = {"images": 2051, "labels": 2049}
_STEMS = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}
_CHUNK = 1 << 22  # bytes inflated per read
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def _read_header(handle: IO[bytes], path: Path, count: int, start: int) -> tuple[int, ...]:
    """The next ``count`` big-endian int32 of the header, ``start`` bytes already read."""
    data = handle.read(4 * count)
    if len(data) < 4 * count:
        raise InputError(
            f"{path}: truncated: {start + len(data)} bytes, shorter than its IDX header"
        )
    return struct.unpack(f">{count}i", data)


def _read_exactly(handle: IO[bytes], path: Path, size: int, what: str) -> bytearray:
    """Reads ``size`` bytes of ``what``, never more than ``size + 1``; a different count
    is an InputError ("truncated" or "trailing bytes")."""
    data = bytearray()
    while len(data) <= size:
        chunk = handle.read(min(_CHUNK, size + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) < size:
        raise InputError(f"{path}: truncated: {what} take {size} bytes, found {len(data)}")
    if len(data) > size:
        raise InputError(f"{path}: trailing bytes after {what} ({size} bytes)")
    return data


def _read_idx(handle: IO[bytes], path: Path, kind: str) -> np.ndarray:
    expected = _MAGIC[kind]
    (magic,) = _read_header(handle, path, 1, 0)
    if magic != expected:
        other = next((k for k, m in _MAGIC.items() if m == magic), None)
        hint = f" (an IDX {other} file)" if other else ""
        if magic >> 16 == 0x1F8B:
            hint = " (gzip data: name the file .gz)"
        raise InputError(f"{path}: magic number {magic}{hint}, expected {expected} (IDX {kind})")
    ndim = 3 if kind == "images" else 1
    dims = _read_header(handle, path, ndim, 4)
    count = dims[0]
    if kind == "images" and dims[1:] != (SIDE, SIDE):
        raise InputError(
            f"{path}: images are {dims[1]}x{dims[2]}, expected {SIDE}x{SIDE} (Fashion-MNIST)"
        )
    if not 0 <= count <= MAX_ITEMS:
        raise InputError(f"{path}: header declares {count} {kind}, expected 0..{MAX_ITEMS}")
    size = count * (SIDE * SIDE if kind == "images" else 1)
    data = _read_exactly(handle, path, size, f"the {count} {kind} the header declares")
    values = np.frombuffer(data, dtype=np.uint8)
    if kind == "images":
        return values.reshape(count, SIDE, SIDE)
    if count and values.max() >= len(CLASS_NAMES):
        row = int(np.argmax(values >= len(CLASS_NAMES)))
        raise InputError(
            f"{path}: label {values[row]} at row {row}, expected 0..{len(CLASS_NAMES) - 1}"
        )
    return values.astype(np.int64)


def read_idx(path: str | Path, kind: str) -> np.ndarray:
    """Reads one IDX file, gzipped (``.gz``) or not.

    Args:
        path: the file.
        kind: ``"images"`` (magic 2051, returns ``(N, 28, 28)`` uint8) or ``"labels"``
            (magic 2049, returns ``(N,)`` int64, each in 0..9).

    Raises:
        FileNotFoundError: no file at ``path`` (the message gives the layout).
        InputError: naming the file: wrong magic number, images not 28x28, a declared
            count above ``MAX_ITEMS``, fewer ("truncated") or more ("trailing bytes")
            bytes than declared, a label above 9, a corrupt gzip stream.
    """
    if kind not in _MAGIC:
        raise ValueError(f"kind must be 'images' or 'labels', got {kind!r}")
    path = require_file(path, f"IDX {kind} file", f"; expected this layout:\n{LAYOUT}")
    if path.suffix != ".gz":
        try:
            with open(path, "rb") as handle:
                return _read_idx(handle, path, kind)
        except OSError as err:
            raise InputError(f"{path}: cannot be read ({one_line(err)})") from None
    try:
        with gzip.open(path, "rb") as handle:
            return _read_idx(handle, path, kind)
    except _GZIP_ERRORS as err:
        raise InputError(f"{path}: corrupt gzip stream ({one_line(err)})") from None


def find_file(root: str | Path, stem: str) -> Path:
    """``<root>/<stem>.gz`` if present, else ``<root>/<stem>``.

    Raises:
        FileNotFoundError: neither exists (both names and the layout are given).
        InputError: what is there is not a regular file (a folder, a dangling link).
    """
    root = Path(root)
    tried = (root / f"{stem}.gz", root / stem)
    for path in tried:
        if optional_file(path):
            return path
    raise FileNotFoundError(
        f"neither {tried[0]} nor {tried[1]} found; expected this layout:\n{LAYOUT}"
    )


def object_masks(gray: np.ndarray, threshold: int = FOREGROUND_THRESHOLD) -> np.ndarray:
    """Ground-truth object masks of ``(N, H, W)`` uint8 gray images on a black background.

    Returns ``(N, H, W)`` uint8: 1 where ``gray > threshold``, 0 elsewhere, and
    ``IGNORE_LABEL`` (255, VOC's "void") on the 1-pixel band just outside the item: the
    pixels of its 3x3 dilation that are not foreground (where the item's faint, blurred
    halo lies). At 28x28 a band on both sides of the edge (dilation minus erosion) would
    void 27% of all pixels; this one voids about 12% and keeps every item pixel.
    """
    gray = np.asarray(gray)
    if gray.ndim != 3:
        raise InputError(f"object_masks takes (N, H, W) gray images, got shape {gray.shape}")
    foreground = gray > threshold
    height, width = foreground.shape[1:]
    padded = np.pad(foreground, ((0, 0), (1, 1), (1, 1)))
    dilated = np.zeros_like(foreground)
    for dy in range(3):
        for dx in range(3):
            dilated |= padded[:, dy : dy + height, dx : dx + width]
    masks = foreground.astype(np.uint8)
    masks[dilated & ~foreground] = IGNORE_LABEL
    return masks


def load_fashion_mnist(root: str | Path = DEFAULT_ROOT, strict: bool = False) -> DatasetRecord:
    """Loads Fashion-MNIST: both parts, train (60,000) then t10k (10,000).

    ``root`` is the folder holding the four files (``LAYOUT``). The gray pixels are
    repeated into three equal channels, ``images (N, 28, 28, 3)`` uint8, as the model
    takes RGB; ``object_masks (N, 28, 28)`` come from ``object_masks(gray)``. Ids are
    ``"train/00000" .. "t10k/09999"`` (the row within its part). ``strict`` is accepted
    for the registry's signature: every file is required anyway.

    Raises:
        FileNotFoundError: a missing file (with the layout).
        InputError: a bad file (``read_idx``), or a part whose image and label counts
            differ (naming both files).
    """
    root = Path(root).expanduser()
    grays, labels, ids, files = [], [], [], []
    for part in PARTS:
        image_path = find_file(root, f"{part}-{_STEMS['images']}")
        label_path = find_file(root, f"{part}-{_STEMS['labels']}")
        gray = read_idx(image_path, "images")
        part_labels = read_idx(label_path, "labels")
        if len(gray) != len(part_labels):
            raise InputError(
                f"{image_path} holds {len(gray)} images but {label_path} holds "
                f"{len(part_labels)} labels; expected one label per image"
            )
        grays.append(gray)
        labels.append(part_labels)
        ids.extend(f"{part}/{row:05d}" for row in range(len(gray)))
        files.extend([image_path.name, label_path.name])
    gray = np.concatenate(grays)
    return DatasetRecord(
        name="fashion_mnist",
        class_names=list(CLASS_NAMES),
        labels=np.concatenate(labels),
        ids=ids,
        root=root,
        images=np.repeat(gray[..., None], 3, axis=-1),
        object_masks=object_masks(gray),
        info={"format": "IDX", "files": files},
    )
