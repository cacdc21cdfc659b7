"""Fashion-MNIST loader on tiny IDX files written here in the real format, and on the
real data when ``dataset-fashion-mnist`` is installed."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from rol_hashing.data import fashion
from rol_hashing.data.fashion import (
    CLASS_NAMES,
    find_file,
    load_fashion_mnist,
    object_masks,
    read_idx,
)
from rol_hashing.errors import InputError

IMAGES, LABELS = 2051, 2049


def idx_bytes(magic: int, dims: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file: ``>i`` magic, ``>i`` per dimension, then the bytes."""
    return struct.pack(f">{1 + len(dims)}i", magic, *dims) + body


def write(path: Path, data: bytes) -> Path:
    """Writes ``data``, gzipped when ``path`` ends in ``.gz``."""
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def part_arrays(part: str) -> tuple[np.ndarray, np.ndarray]:
    """Gray images (N, 28, 28) and labels (N,): 6 train, 4 t10k."""
    count, seed = (6, 1) if part == "train" else (4, 2)
    rng = np.random.default_rng(seed)
    gray = np.zeros((count, 28, 28), dtype=np.uint8)
    gray[:, 6:22, 8:20] = rng.integers(40, 256, size=(count, 16, 12), dtype=np.uint8)
    labels = rng.permutation(10)[:count].astype(np.uint8)
    return gray, labels


def write_set(root: Path, suffix: str = ".gz") -> Path:
    """The four files of a tiny valid set under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for part in fashion.PARTS:
        gray, labels = part_arrays(part)
        write(
            root / f"{part}-images-idx3-ubyte{suffix}",
            idx_bytes(IMAGES, gray.shape, gray.tobytes()),
        )
        write(
            root / f"{part}-labels-idx1-ubyte{suffix}",
            idx_bytes(LABELS, labels.shape, labels.tobytes()),
        )
    return root


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_tiny_set_loads(tmp_path, suffix):
    record = load_fashion_mnist(write_set(tmp_path, suffix))
    train_gray, train_labels = part_arrays("train")
    test_gray, test_labels = part_arrays("t10k")
    gray = np.concatenate([train_gray, test_gray])
    assert record.name == "fashion_mnist"
    assert record.class_names == list(CLASS_NAMES) and record.class_names[0] == "T-shirt/top"
    assert record.ids[:2] == ["train/00000", "train/00001"]
    assert record.ids[5:7] == ["train/00005", "t10k/00000"] and record.ids[-1] == "t10k/00003"
    assert record.labels.dtype == np.int64
    np.testing.assert_array_equal(record.labels, np.concatenate([train_labels, test_labels]))
    assert record.images.shape == (10, 28, 28, 3) and record.images.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(record.images[..., channel], gray)
    assert record.object_masks.shape == (10, 28, 28)
    np.testing.assert_array_equal(record.object_masks, object_masks(gray))
    assert set(np.unique(record.object_masks)) == {0, 1, 255}
    assert record.root == tmp_path
    assert record.info["format"] == "IDX"
    assert record.info["files"][0] == f"train-images-idx3-ubyte{suffix}"
    assert "fashion_mnist" in record.summary()


def test_gz_is_preferred_and_plain_and_gz_mix(tmp_path):
    write_set(tmp_path, ".gz")
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    (tmp_path / "t10k-labels-idx1-ubyte.gz").rename(plain.with_suffix(".moved"))
    write(plain, gzip.decompress(plain.with_suffix(".moved").read_bytes()))
    assert find_file(tmp_path, "t10k-labels-idx1-ubyte") == plain
    assert find_file(tmp_path, "train-labels-idx1-ubyte").name == "train-labels-idx1-ubyte.gz"
    assert len(load_fashion_mnist(tmp_path, strict=True)) == 10


def _bad_images(path: Path, body: bytes, magic: int = IMAGES, dims=(2, 28, 28)) -> Path:
    return write(path, idx_bytes(magic, dims, body))


PIXELS = bytes(2 * 28 * 28)
BAD_FILES = {
    "wrong magic": (lambda p: _bad_images(p, PIXELS, magic=2052), "magic number 2052"),
    "labels as images": (
        lambda p: write(p, idx_bytes(LABELS, (3,), bytes(3))),
        "an IDX labels file",
    ),
    "27x28": (lambda p: _bad_images(p, bytes(2 * 27 * 28), dims=(2, 27, 28)), "27x28"),
    "truncated": (lambda p: _bad_images(p, PIXELS[:-1]), "truncated"),
    "truncated header": (lambda p: write(p, struct.pack(">ii", IMAGES, 2)), "truncated"),
    "empty": (lambda p: write(p, b""), "truncated"),
    "trailing bytes": (lambda p: _bad_images(p, PIXELS + b"\0"), "trailing bytes"),
    "count over the cap": (lambda p: _bad_images(p, b"", dims=(2_000_000, 28, 28)), "2000000"),
}


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_image_file_is_refused_naming_it(tmp_path, case, suffix):
    make, expected = BAD_FILES[case]
    path = make(tmp_path / f"train-images-idx3-ubyte{suffix}")
    with pytest.raises(InputError) as err:
        read_idx(path, "images")
    assert str(path) in str(err.value) and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_images_swapped_with_labels_in_a_set(tmp_path):
    write_set(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    swap = tmp_path / "swap"
    images.rename(swap)
    labels.rename(images)
    swap.rename(labels)
    with pytest.raises(InputError, match="expected 2051") as err:
        load_fashion_mnist(tmp_path)
    assert str(images) in str(err.value)
    with pytest.raises(InputError, match=r"an IDX images file\), expected 2049"):
        read_idx(labels, "labels")


def test_label_ten_is_refused(tmp_path):
    path = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(LABELS, (3,), bytes([0, 9, 10])))
    with pytest.raises(InputError, match="label 10 at row 2, expected 0..9") as err:
        read_idx(path, "labels")
    assert str(path) in str(err.value)


def test_count_mismatch_names_both_files(tmp_path):
    write_set(tmp_path)
    labels = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(LABELS, (3,), bytes(3)))
    with pytest.raises(InputError, match="4 images but .* 3 labels") as err:
        load_fashion_mnist(tmp_path)
    assert str(labels) in str(err.value)
    assert str(tmp_path / "t10k-images-idx3-ubyte.gz") in str(err.value)


def _truncated_gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(idx_bytes(LABELS, (4,), bytes(4)))[:-10])


def _bad_crc(path: Path) -> None:
    data = bytearray(gzip.compress(idx_bytes(LABELS, (4,), bytes(4))))
    data[-8] ^= 0xFF  # the CRC32 of the trailer
    path.write_bytes(bytes(data))


def _bad_deflate(path: Path) -> None:
    data = bytearray(gzip.compress(idx_bytes(LABELS, (4,), bytes(4))))
    data[10] = 0xFF  # the first deflate block header: an invalid block type
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda p: p.write_bytes(b"this is not gzip at all"),
        _truncated_gzip,
        _bad_crc,
        _bad_deflate,
    ],
    ids=["not gzip", "truncated stream", "bad crc", "bad deflate"],
)
def test_corrupt_gzip_is_an_input_error(tmp_path, corrupt):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    corrupt(path)
    with pytest.raises(InputError, match="corrupt gzip stream") as err:
        read_idx(path, "labels")
    assert str(path) in str(err.value)


def test_gzip_data_without_gz_suffix_gets_a_hint(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(LABELS, (4,), bytes(4))))
    with pytest.raises(InputError, match="name the file .gz"):
        read_idx(path, "labels")


def test_missing_file_names_both_names_and_the_layout(tmp_path):
    write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_fashion_mnist(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in message
    assert str(tmp_path / "t10k-labels-idx1-ubyte") + " found" in message
    assert "expected this layout" in message and "<root>/train-images-idx3-ubyte[.gz]" in message
    with pytest.raises(FileNotFoundError, match="expected this layout") as err:
        read_idx(tmp_path / "nothing.gz", "labels")
    assert str(tmp_path / "nothing.gz") in str(err.value)
    with pytest.raises(FileNotFoundError, match="neither"):
        load_fashion_mnist(tmp_path / "no-such-folder")


def test_a_folder_in_place_of_a_file_is_an_input_error(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        find_file(tmp_path, "train-images-idx3-ubyte")


BOMB_MB = 200


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory) -> Path:
    """A .gz of ~200 KB: a header declaring 10 images, their bytes, then 200 MB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "train-images-idx3-ubyte.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    zeros = bytes(1 << 20)
    with open(path, "wb") as handle:
        handle.write(packer.compress(idx_bytes(IMAGES, (10, 28, 28), bytes(10 * 28 * 28))))
        for _ in range(BOMB_MB):
            handle.write(packer.compress(zeros))
        handle.write(packer.flush())
    return path


def test_gzip_bomb_is_refused_without_inflating_it(gzip_bomb):
    assert gzip_bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError, match="trailing bytes") as err:
            read_idx(gzip_bomb, "images")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(gzip_bomb) in str(err.value)
    assert peak < 4 << 20, f"peak {peak} bytes: the stream was inflated"
    assert time.perf_counter() - start < 1.0


def test_read_idx_reads_no_more_than_declared_plus_one(gzip_bomb, monkeypatch):
    inflated = []
    real_open = gzip.open

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def read(self, size=-1):
            assert size >= 0, "an unbounded read"
            data = self.handle.read(size)
            inflated.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(fashion.gzip, "open", lambda *a, **k: Counting(real_open(*a, **k)))
    with pytest.raises(InputError):
        read_idx(gzip_bomb, "images")
    assert sum(inflated) == 16 + 10 * 28 * 28 + 1


def test_object_masks_on_a_hand_made_image():
    gray = np.zeros((3, 8, 8), dtype=np.uint8)
    gray[0, 2:6, 2:6] = 200  # a 4x4 object
    gray[0, 7, 0] = fashion.FOREGROUND_THRESHOLD  # not above the threshold: background
    gray[0, 0, 7] = 255  # one object pixel on the image edge
    gray[2] = 255  # all object
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 255, 1],
            [0, 255, 255, 255, 255, 255, 255, 255],
            [0, 255, 1, 1, 1, 1, 255, 0],
            [0, 255, 1, 1, 1, 1, 255, 0],
            [0, 255, 1, 1, 1, 1, 255, 0],
            [0, 255, 1, 1, 1, 1, 255, 0],
            [0, 255, 255, 255, 255, 255, 255, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
        ],
        dtype=np.uint8,
    )
    full = np.ones((8, 8), dtype=np.uint8)  # all object: no band, edge pixels kept
    masks = object_masks(gray)
    assert masks.dtype == np.uint8 and masks.shape == (3, 8, 8)
    np.testing.assert_array_equal(masks[0], expected)
    np.testing.assert_array_equal(masks[1], np.zeros((8, 8), dtype=np.uint8))
    np.testing.assert_array_equal(masks[2], full)
    assert object_masks(gray, threshold=250)[0, 3, 3] == 0
    with pytest.raises(InputError, match=r"\(N, H, W\)"):
        object_masks(gray[0])


@pytest.mark.skipif(
    not Path(fashion.DEFAULT_ROOT).is_dir(),
    reason=f"{fashion.DEFAULT_ROOT} not found (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist():
    record = load_fashion_mnist()
    assert len(record) == 70_000 and record.images.shape == (70_000, 28, 28, 3)
    assert record.class_counts().tolist() == [7_000] * 10
    assert record.ids[0] == "train/00000" and record.ids[59_999] == "train/59999"
    assert record.ids[60_000] == "t10k/00000" and record.ids[-1] == "t10k/09999"
    assert set(np.unique(record.object_masks)) == {0, 1, 255}
    assert 0.3 < (record.object_masks == 1).mean() < 0.5
