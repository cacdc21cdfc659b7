"""One freshness rule for every derived file (mask and code caches, index, metrics,
reused runs and backbones).

A derived file is stored with a *key*: a JSON mapping of

- ``kind``: what the file is (``"masks"``, ``"codes"``, ...);
- ``code``: the version of the code that made it (``CODE_VERSION``);
- ``parts``: a digest or plain value of everything it was made from (the model file's
  bytes, the images and labels, the config values it depends on).

A reader builds the key it expects with the same ``make_key`` and compares with
``stale_parts``: an empty list means fresh; otherwise the names of the parts that differ
(a derived file is then made again; a user's input is refused, naming them).

Digests: a file's SHA-256 (memoised per path, size, mtime and inode, so one process
reads a model once); images by their ids, labels and, for in-memory data, their bytes,
for files on disk their sizes and modification times (regenerating or replacing an
image changes them; reading every byte of a large gallery at each ``evaluate`` would
cost as much as encoding it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rol_hashing.io import write_json

# Bump FORMAT when a derived file's content changes for the same inputs (a new
# encoding step, a new mask definition): every earlier file then reads as stale.
FORMAT = 2  # 2: image files decoded for the model (data.pipeline.decode_for_model)
CODE_VERSION = f"rol_hashing-derived-{FORMAT}"

_FILE_DIGESTS: dict[tuple, str] = {}


def bytes_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), read now (``file_digest`` memoises it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), memoised by (path, size, mtime, inode)."""
    path = Path(path)
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo not in _FILE_DIGESTS:
        _FILE_DIGESTS[memo] = bytes_digest(path)
    return _FILE_DIGESTS[memo]


def text_digest(items: Sequence[str]) -> str:
    """The SHA-256 of ``items`` joined by newlines (ids, in order)."""
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """The SHA-256 of an array's dtype, shape and bytes."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()


def images_digest(record: Any, indices: Sequence[int] | np.ndarray | None = None) -> str:
    """What ``record[indices]``'s pixels are, cheaply: for in-memory images their bytes,
    for files each file's size and modification time (a missing file: ``missing``).
    ``record`` is a ``DatasetRecord``; default: every image."""
    idx = np.arange(len(record.ids)) if indices is None else np.asarray(indices, np.int64)
    if record.images is not None:
        return array_digest(np.asarray(record.images)[idx])
    return paths_digest([record.paths[int(k)] for k in idx])


def paths_digest(paths: Sequence[str | Path | None]) -> str:
    """Each file's size and modification time, in order (a missing one: ``missing``)."""
    h = hashlib.sha256()
    for path in paths:
        try:
            st = os.stat(path) if path is not None else None
        except OSError:
            st = None
        h.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode() if st else b"missing\n")
    return h.hexdigest()


def records_parts(record: Any, indices: Sequence[int] | np.ndarray | None = None) -> dict:
    """The parts a file derived from ``record[indices]`` depends on: ids, labels, pixels."""
    idx = np.arange(len(record.ids)) if indices is None else np.asarray(indices, np.int64)
    return {
        "ids": text_digest([record.ids[int(k)] for k in idx]),
        "labels": array_digest(np.asarray(record.labels)[idx]),
        "images": images_digest(record, idx),
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON-plain data (tuples -> lists, numpy scalars -> Python, paths -> str)."""
    return json.loads(json.dumps(value, default=_default, sort_keys=True))


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not a key part: {type(value).__name__}")


def make_key(kind: str, **parts: Any) -> dict[str, Any]:
    """The key of a derived file of ``kind`` made from ``parts`` (digests or plain
    values: str, numbers, bools, None, lists and mappings of them)."""
    return {"kind": kind, "code": CODE_VERSION, "parts": _plain(parts)}


def stale_parts(stored: Any, expected: Mapping[str, Any]) -> list[str]:
    """Names of what differs between a stored key and the expected one: ``kind``,
    ``code`` and each part (sorted); [] when the file is fresh. A stored key that is not
    a key at all (missing, another layout) reads as ``["key"]``."""
    if not isinstance(stored, Mapping) or not isinstance(stored.get("parts"), Mapping):
        return ["key"]
    out = [name for name in ("kind", "code") if stored.get(name) != expected[name]]
    have, want = stored["parts"], expected["parts"]
    out += sorted(name for name in set(have) | set(want) if have.get(name) != want.get(name))
    return out


def is_fresh(stored: Any, expected: Mapping[str, Any]) -> bool:
    """Whether a stored key equals the expected one."""
    return not stale_parts(stored, expected)


def key_id(key: Mapping[str, Any]) -> str:
    """One short hex string for a key (for file names and log lines)."""
    return hashlib.sha256(json.dumps(_plain(dict(key)), sort_keys=True).encode()).hexdigest()[:16]


def write_sidecar(
    sidecar: str | Path, target: str | Path, key: Mapping[str, Any], **extra: Any
) -> None:
    """Records that ``target`` (written first) was made from ``key``: ``sidecar`` (a JSON
    file, written last) holds the key, ``target``'s SHA-256 and ``extra``. A kill between
    the two writes leaves an old sidecar whose digest is not the new file's, so
    ``read_sidecar`` never pairs one half new with one half old."""
    content = {"key": _plain(dict(key)), "sha256": file_digest(target), **_plain(extra)}
    write_json(sidecar, content)


def read_sidecar(sidecar: str | Path, target: str | Path, key: Mapping[str, Any]) -> dict | None:
    """The sidecar's content when ``target`` is the file it describes and was made from
    ``key``; None when either is missing, unreadable, of another key or another file."""
    sidecar, target = Path(sidecar), Path(target)
    try:
        stored = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not target.is_file():
        return None
    if stale_parts(stored.get("key"), key) or stored.get("sha256") != file_digest(target):
        return None
    return stored
