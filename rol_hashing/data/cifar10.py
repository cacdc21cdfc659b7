"""CIFAR-10 from ``cifar-10-batches-py`` (pickled batches) or ``cifar-10-batches-bin``.

Both formats give the same record: images ``(N, 32, 32, 3)`` uint8 in batch order
``data_batch_1 .. data_batch_5, test_batch`` and ids ``"<batch>/<row>"``, so a
split file written from one format is reused with the other.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray, numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]

from rol_hashing.data.fileio import read_text
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError

BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_BATCH = "test_batch"
CLASS_NAMES = (
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
)
LAYOUT = """\
  <root>/cifar-10-batches-py/{data_batch_1..data_batch_5, test_batch, batches.meta}
or
  <root>/cifar-10-batches-bin/{data_batch_1.bin..data_batch_5.bin, test_batch.bin,
                               batches.meta.txt}"""
_PIXELS = 32 * 32 * 3


class UnsafePickleError(pickle.UnpicklingError, InputError):
    """A pickle asked for a global that a CIFAR batch never needs."""


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {}
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{module}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches only: numpy arrays, dicts, lists, strings and numbers.

    Every global other than numpy's array reconstructors is refused, so a file
    that tries to call a function raises UnsafePickleError naming the file and
    the global instead of running it.
    """

    def __init__(self, file: io.BufferedIOBase, source: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to unpickle global {module}.{name}; a CIFAR-10 "
                "batch only holds numpy arrays, lists and strings"
            ) from None


def load_pickle_batch(path: Path) -> dict[str, object]:
    """Reads one python batch with the restricted unpickler; keys become ``str``."""
    with open(path, "rb") as handle:
        try:
            content = RestrictedUnpickler(handle, path).load()
        except UnsafePickleError:
            raise
        except Exception as err:  # truncated or not a pickle at all
            raise InputError(f"{path}: not a readable CIFAR-10 python batch ({err})") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: a CIFAR-10 batch is a dict, got {type(content).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in content.items()}


def _py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = load_pickle_batch(path)
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: missing or malformed 'data'/'labels' ({err})") from None
    if data.ndim != 2 or data.shape[1] != _PIXELS or len(labels) != len(data):
        raise InputError(
            f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}"
        )
    return data, labels


def _bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = 1 + _PIXELS
    if raw.size == 0 or raw.size % record:
        raise InputError(
            f"{path}: {raw.size} bytes is not a whole number of {record}-byte records "
            "(label byte + 3072 pixels); the file is truncated or not a CIFAR-10 binary batch"
        )
    rows = raw.reshape(-1, record)
    return rows[:, 1:], rows[:, 0].astype(np.int64)


def _class_names_py(folder: Path) -> list[str]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return list(CLASS_NAMES)
    names = load_pickle_batch(meta).get("label_names")
    if not names:
        return list(CLASS_NAMES)
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _class_names_bin(folder: Path) -> list[str]:
    meta = folder / "batches.meta.txt"
    if not meta.is_file():
        return list(CLASS_NAMES)
    names = [line.strip() for line in read_text(meta).splitlines()]
    return [n for n in names if n] or list(CLASS_NAMES)


def load_cifar10(root: str | Path, strict: bool = False) -> DatasetRecord:
    """Loads CIFAR-10 (python batches preferred, else binary batches).

    ``root`` may be the batches folder or its parent. Missing batches are a
    warning (an error with ``strict``); no batch at all is FileNotFoundError.
    Returns a single-label record with ``images (N, 32, 32, 3)`` uint8.
    """
    root = Path(root).expanduser()
    candidates = [
        (root, ""),
        (root / "cifar-10-batches-py", ""),
        (root, ".bin"),
        (root / "cifar-10-batches-bin", ".bin"),
    ]
    found = [
        (folder, suffix)
        for folder, suffix in candidates
        if any((folder / f"{b}{suffix}").is_file() for b in (*BATCHES, TEST_BATCH))
    ]
    if not found:
        raise FileNotFoundError(
            f"no CIFAR-10 batches under {root}; expected this layout:\n{LAYOUT}"
        )
    folder, suffix = found[0]
    binary = suffix == ".bin"
    read = _bin_batch if binary else _py_batch

    datas, labels, ids, missing = [], [], [], []
    for batch in (*BATCHES, TEST_BATCH):
        path = folder / f"{batch}{suffix}"
        if not path.is_file():
            missing.append(path.name)
            continue
        data, batch_labels = read(path)
        datas.append(data)
        labels.append(batch_labels)
        ids.extend(f"{batch}/{row}" for row in range(len(data)))
    if missing:
        message = f"{folder}: missing CIFAR-10 batches {missing}; loaded the others"
        if strict:
            raise FileNotFoundError(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    class_names = _class_names_bin(folder) if binary else _class_names_py(folder)
    all_labels = np.concatenate(labels)
    if all_labels.min() < 0 or all_labels.max() >= len(class_names):
        raise InputError(f"{folder}: labels outside 0..{len(class_names) - 1}")
    images = np.concatenate(datas).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return DatasetRecord(
        name="cifar10",
        class_names=class_names,
        labels=all_labels,
        ids=ids,
        root=folder,
        images=np.ascontiguousarray(images),
        info={"format": "binary batches" if binary else "python batches", "missing": missing},
    )
