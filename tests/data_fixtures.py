"""Writers of small data sets in the real on-disk formats, for tests.

Each function writes under a folder it is given (a pytest ``tmp_path``) and
returns what a loader should find there. Other test modules may reuse them.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from rol_hashing.data.images import voc_palette
from rol_hashing.data.voc import VOC_CLASSES

# ----------------------------------------------------------------------------- images


def random_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="JPEG", quality=quality)
    return path


def write_png(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def write_cmyk_jpeg(path: Path, size: tuple[int, int] = (20, 16)) -> Path:
    """A CMYK JPEG (Adobe), pure cyan: RGB (0, 255, 255) once converted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("CMYK", size, (255, 0, 0, 0)).save(path, format="JPEG", quality=95)
    return path


def write_rgba_png(path: Path, size: tuple[int, int] = (20, 16)) -> Path:
    """Left half opaque red, right half fully transparent (hidden colour: black)."""
    rgba = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    rgba[:, : size[0] // 2] = (255, 0, 0, 255)
    rgba[:, size[0] // 2 :] = (0, 0, 0, 0)
    return write_png(path, Image.fromarray(rgba, "RGBA"))


def write_gray_png(path: Path, size: tuple[int, int] = (20, 16), value: int = 77) -> Path:
    return write_png(path, Image.new("L", size, value))


def write_palette_png(path: Path, size: tuple[int, int] = (20, 16)) -> Path:
    """A palette image whose pixels are all index 2 = VOC colour (0, 128, 0)."""
    image = Image.new("P", size, 2)
    image.putpalette(voc_palette().reshape(-1).tolist())
    return write_png(path, image)


def write_corrupt_jpeg(path: Path) -> Path:
    """Bytes that start like a JPEG and then are garbage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    return path


def write_truncated_jpeg(path: Path, rng: np.random.Generator | None = None) -> Path:
    """A real JPEG cut in half."""
    rng = rng or np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(rng, 48, 64), "RGB").save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_bomb_png(path: Path, side: int = 100_000) -> Path:
    """A tiny PNG whose header declares ``side x side`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- CIFAR-10


class Py2StylePickler(pickle._Pickler):
    """Pickles as Python 2 did for the CIFAR-10 files: protocol 2, every ``str``
    and ``bytes`` as a BINSTRING, numpy globals under ``numpy.core.multiarray``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=2)

    def _save_string(self, obj: bytes | str) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_string
    dispatch[str] = _save_string

    def save_global(self, obj: object, name: str | None = None) -> None:
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[type] = save_global


def py2_pickle_dumps(obj: object) -> bytes:
    buffer = io.BytesIO()
    Py2StylePickler(buffer).dump(obj)
    return buffer.getvalue()


CIFAR_BATCHES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
)
CIFAR_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def cifar_arrays(per_batch: int = 4, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{batch: (data (n, 3072) uint8 in CIFAR's R,G,B plane order, labels (n,))}``."""
    rng = np.random.default_rng(seed)
    batches = {}
    for b, name in enumerate(CIFAR_BATCHES):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = (np.arange(per_batch) + b * per_batch) % 10
        batches[name] = (data, labels.astype(np.int64))
    return batches


def write_cifar_py(root: Path, per_batch: int = 4, seed: int = 0) -> Path:
    """Writes ``root/cifar-10-batches-py`` exactly as the Python 2 originals are pickled."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in cifar_arrays(per_batch, seed).items():
        content = {
            b"batch_label": f"{name} of 6".encode(),
            b"labels": [int(v) for v in labels],
            b"data": data,
            b"filenames": [f"{name}_{i:04d}.png".encode() for i in range(len(data))],
        }
        (folder / name).write_bytes(py2_pickle_dumps(content))
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [n.encode() for n in CIFAR_NAMES],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(py2_pickle_dumps(meta))
    return folder


def write_cifar_bin(root: Path, per_batch: int = 4, seed: int = 0) -> Path:
    """Writes ``root/cifar-10-batches-bin``: records of 1 label byte + 3072 pixel bytes."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in cifar_arrays(per_batch, seed).items():
        rows = np.concatenate([labels.astype(np.uint8)[:, None], data], axis=1)
        (folder / f"{name}.bin").write_bytes(rows.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES) + "\n\n")
    return folder


class _CallsExec:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.sentinel)!r}, 'w').close()",))


def write_malicious_cifar_batch(folder: Path, sentinel: Path, name: str = "data_batch_1") -> Path:
    """A "batch" whose unpickling would call ``exec`` (creating ``sentinel``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(py2_pickle_dumps({b"data": _CallsExec(sentinel)}))
    return path


# ----------------------------------------------------------------------------- VOC


def write_voc_mask(path: Path, mask: np.ndarray) -> Path:
    image = Image.fromarray(mask.astype(np.uint8), "P")
    image.putpalette(voc_palette().reshape(-1).tolist())
    return write_png(path, image)


def object_mask(height: int, width: int, label: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Background 0, a rectangle ``box = (top, left, bottom, right)`` of ``label``, 255 border."""
    mask = np.zeros((height, width), dtype=np.uint8)
    top, left, bottom, right = box
    mask[top - 1 : bottom + 1, left - 1 : right + 1] = 255
    mask[top:bottom, left:right] = label
    return mask


VOC_SEG_TRAIN = ["2007_000032", "2008_000001"]
VOC_SEG_VAL = ["2008_000003"]
# Main trainval: id -> positive classes; 2008_000008 has only a difficult (0) cat.
VOC_MAIN = {
    "2008_000001": ["aeroplane"],
    "2008_000002": ["person", "dog"],
    "2008_000003": ["cat"],
    "2008_000004": ["car"],
    "2008_000005": ["person"],
    "2008_000006": ["bird", "tvmonitor"],
    "2008_000007": ["dog"],
    "2008_000008": [],
}
VOC_DIFFICULT = {"2008_000008": ["cat"]}
VOC_HASHING = ["2008_000002", "2008_000004", "2008_000005", "2008_000006", "2008_000007"]


def write_voc_devkit(root: Path, height: int = 30, width: int = 40, seed: int = 0) -> Path:
    """A mini ``root/VOCdevkit/VOC2012`` with JPEGs, palette masks (255 borders), lists.

    Segmentation: ``VOC_SEG_TRAIN`` + ``VOC_SEG_VAL``; Main trainval: ``VOC_MAIN`` for
    all 20 classes. The hashing rule gives ``VOC_HASHING``.
    """
    rng = np.random.default_rng(seed)
    devkit = root / "VOCdevkit" / "VOC2012"
    ids = sorted(set(VOC_SEG_TRAIN + VOC_SEG_VAL) | set(VOC_MAIN))
    for key in ids:
        write_jpeg(devkit / "JPEGImages" / f"{key}.jpg", random_rgb(rng, height, width))
    for n, key in enumerate(VOC_SEG_TRAIN + VOC_SEG_VAL):
        label = 1 + VOC_CLASSES.index(VOC_MAIN.get(key, ["bus"])[0])
        mask = object_mask(height, width, label, (5 + n, 6, 20, 25 + n))
        write_voc_mask(devkit / "SegmentationClass" / f"{key}.png", mask)
    seg = devkit / "ImageSets" / "Segmentation"
    seg.mkdir(parents=True)
    (seg / "train.txt").write_text("\n".join(VOC_SEG_TRAIN) + "\n")
    (seg / "val.txt").write_text("\n".join(VOC_SEG_VAL) + "\n")
    (seg / "trainval.txt").write_text("\n".join(VOC_SEG_TRAIN + VOC_SEG_VAL) + "\n")
    main = devkit / "ImageSets" / "Main"
    main.mkdir(parents=True)
    for name in VOC_CLASSES:
        lines = []
        for key, positives in VOC_MAIN.items():
            flag = 1 if name in positives else 0 if name in VOC_DIFFICULT.get(key, []) else -1
            lines.append(f"{key} {flag:2d}")  # VOC writes e.g. "2008_000002 -1" / "... 1"
        (main / f"{name}_trainval.txt").write_text("\n".join(lines) + "\n")
    (main / "trainval.txt").write_text("\n".join(VOC_MAIN) + "\n")
    return devkit


# ----------------------------------------------------------------------------- AWA2, folders

AWA2_CLASSES = ["antelope", "grizzly+bear", "killer+whale"]


def write_awa2(root: Path, per_class: int = 3, seed: int = 0) -> Path:
    """A mini ``root/Animals_with_Attributes2`` (classes.txt + JPEGImages/<class>/*.jpg)."""
    rng = np.random.default_rng(seed)
    folder = root / "Animals_with_Attributes2"
    folder.mkdir(parents=True)
    lines = [f"{k + 1}\t{name}" for k, name in enumerate(AWA2_CLASSES)]
    (folder / "classes.txt").write_text("\n".join(lines) + "\n")
    for name in AWA2_CLASSES:
        for i in range(per_class):
            write_jpeg(
                folder / "JPEGImages" / name / f"{name}_{10001 + i}.jpg", random_rgb(rng, 24, 32)
            )
    return folder


def write_class_folders(
    root: Path,
    classes: tuple[str, ...] = ("cat", "dog"),
    per_class: int = 4,
    split: dict[str, list[str]] | None = None,
    seed: int = 0,
) -> Path:
    """``root/<class>/*.jpg`` (every other one a PNG) and an optional ``split.json``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in classes:
        for i in range(per_class):
            rgb = random_rgb(rng, 20, 24)
            if i % 2:
                write_png(root / name / f"{i:03d}.png", Image.fromarray(rgb, "RGB"))
            else:
                write_jpeg(root / name / f"{i:03d}.jpg", rgb)
    if split is not None:
        (root / "split.json").write_text(json.dumps(split))
    return root


def write_fashion_idx(root: Path, per_class: int = 8, test_share: int = 2, seed: int = 0) -> Path:
    """A tiny Fashion-MNIST in the real IDX format (the four gzipped files): per class
    ``per_class`` 28x28 items, a bright blob whose shape follows the class on black;
    ``test_share`` of each class go to the t10k part."""
    import gzip
    import struct

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "t10k": ([], [])}
    for c in range(10):
        for k in range(per_class):
            h, w = 6 + c, 16 - c  # the class sets the blob's proportions
            cy, cx = 14 + rng.integers(-2, 3), 14 + rng.integers(-2, 3)
            inside = (np.abs(yy - cy) <= h) & (np.abs(xx - cx) <= w // 2 + 1)
            gray = np.where(inside, rng.integers(90, 256, (28, 28)), 0).astype(np.uint8)
            part = "t10k" if k < test_share else "train"
            parts[part][0].append(gray)
            parts[part][1].append(c)
    root.mkdir(parents=True, exist_ok=True)
    for part, (images, labels) in parts.items():
        gray = np.stack(images)
        head = struct.pack(">4i", 2051, len(gray), 28, 28)
        (root / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + gray.tobytes()))
        body = np.asarray(labels, np.uint8).tobytes()
        head = struct.pack(">2i", 2049, len(labels))
        (root / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + body))
    return root
