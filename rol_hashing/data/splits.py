"""Train / query / gallery splits (readings §3): drawn once from a seed, saved, reused.

Rules: query and train never overlap; the gallery is every non-query image (so it
contains the training images, as in SSDH and the paper's counts: CIFAR-10 59000,
VOC 8267, AWA2 36322). A data set whose segmentation stream trains on its own images
(Fashion-MNIST) first sets ``set_aside`` images apart, as the paper leaves VOC's PSP
training images out of the hashing set: they are in no part, the gallery included.
Single-label data sets with ``per_class`` sizes draw each class separately (CIFAR-10:
500 train + 100 query per class); the others draw uniformly from the whole set (VOC:
5000 + 1000; AWA2: 10000 + 1000).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rol_hashing.data.fileio import check_relative, read_json
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError
from rol_hashing.io import atomic_write_text

SPLIT_FORMAT = 1
PARTS = ("train", "query", "gallery")


@dataclass(frozen=True)
class SplitIndices:
    """Positions into a record: ``(n,)`` int64 arrays per part."""

    train: np.ndarray
    query: np.ndarray
    gallery: np.ndarray


@dataclass(frozen=True)
class Split:
    """Ids per part of a data set, as stored in a split file; ``set_aside``: the images
    kept out of every part for the segmentation stream (empty for most data sets)."""

    dataset: str
    seed: int
    train: tuple[str, ...]
    query: tuple[str, ...]
    gallery: tuple[str, ...]
    set_aside: tuple[str, ...] = ()

    def indices(self, record: DatasetRecord) -> SplitIndices:
        """The parts as positions into ``record`` (sorted as stored)."""
        return SplitIndices(
            train=record.index_of(self.train),
            query=record.index_of(self.query),
            gallery=record.index_of(self.gallery),
        )

    def counts(self) -> dict[str, int]:
        return {part: len(getattr(self, part)) for part in PARTS}

    def to_json(self) -> str:
        content = {
            "format": SPLIT_FORMAT,
            "dataset": self.dataset,
            "seed": self.seed,
            **{part: list(getattr(self, part)) for part in PARTS},
        }
        if self.set_aside:
            content["set_aside"] = list(self.set_aside)
        return json.dumps(content, indent=1) + "\n"

    def save(self, path: str | Path) -> None:
        """Writes the split file atomically (temporary file, fsync, rename)."""
        atomic_write_text(path, self.to_json())


def _count(size: int | float, total: int) -> int:
    """An absolute count from an int, or from a fraction of ``total``."""
    if isinstance(size, float):
        return int(round(size * total))
    return int(size)


def draw_split(
    record: DatasetRecord,
    train_size: int | float,
    query_size: int | float,
    per_class: bool,
    seed: int = 0,
    set_aside: int | float = 0,
) -> Split:
    """Draws a fresh split from ``seed``.

    Args:
        record: the data set.
        train_size, query_size: counts (int) or fractions (float); per class when
            ``per_class`` (single-label only), else of the whole set.
        per_class: draw each class separately.
        seed: the random seed; the same record and seed give the same split.
        set_aside: drawn first (same units), kept out of every part (``Split.set_aside``).

    Raises:
        ValueError: when a class (or the set) has fewer images than train + query.
    """
    if per_class and record.multilabel:
        raise InputError(f"{record.name}: per-class sizes need single-label data")
    rng = np.random.default_rng(seed)
    if per_class:
        groups = [np.flatnonzero(record.labels == c) for c in range(record.num_classes)]
        names = list(record.class_names)
    else:
        groups = [np.arange(len(record))]
        names = [record.name]
    train_parts, query_parts, aside_parts = [], [], []
    for name, members in zip(names, groups, strict=True):
        n_train, n_query = _count(train_size, len(members)), _count(query_size, len(members))
        n_aside = _count(set_aside, len(members))
        if min(n_train, n_query, n_aside) < 0 or n_aside + n_train + n_query > len(members):
            scope = f"class {name!r}" if per_class else f"data set {name!r}"
            aside = f" + {n_aside} set aside" if n_aside else ""
            raise InputError(
                f"{scope} has {len(members)} images, fewer than the {n_train} train + "
                f"{n_query} query{aside} the split asks for"
            )
        if n_aside:  # a stream of its own per class: the other parts' draw is unchanged
            shuffled = members[
                np.random.default_rng([seed, 31, len(aside_parts)]).permutation(len(members))
            ]
            aside_parts.append(shuffled[:n_aside])
            members = np.sort(shuffled[n_aside:])
        order = rng.permutation(members)
        query_parts.append(order[:n_query])
        train_parts.append(order[n_query : n_query + n_train])

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    query, train, aside = joined(query_parts), joined(train_parts), joined(aside_parts)
    gallery = np.setdiff1d(np.arange(len(record)), np.concatenate([query, aside]))
    ids = record.ids
    return Split(
        dataset=record.name,
        seed=seed,
        train=tuple(ids[i] for i in train),
        query=tuple(ids[i] for i in query),
        gallery=tuple(ids[i] for i in gallery),
        set_aside=tuple(ids[i] for i in aside),
    )


# How much of an id an error message quotes (a split file may hold a 100,000-char id).
MAX_QUOTED_ID = 120


def _short(value: str) -> str:
    """``repr(value)``, cut to ``MAX_QUOTED_ID`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_ID else f"{text[:MAX_QUOTED_ID]}... ({len(value)} chars)"


def check_split(split: Split, record: DatasetRecord, source: str) -> None:
    """Raises ValueError naming ``source`` unless the split fits ``record`` and the rules."""
    known = set(record.ids)
    for part in PARTS:
        ids = getattr(split, part)
        if not ids:
            raise InputError(
                f"{source}: '{part}' is empty; a split needs at least one training, one "
                "query and one gallery image"
            )
        if len(set(ids)) != len(ids):
            raise InputError(f"{source}: '{part}' lists an id twice")
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise InputError(
                f"{source}: {len(unknown)} '{part}' ids are not in data set {record.name!r} "
                f"loaded from {record.root} (first: {_short(unknown[0])}); delete the file to draw "
                "a new split, or load the data it was made for"
            )
    query = set(split.query)
    for part in ("train", "gallery"):
        overlap = query.intersection(getattr(split, part))
        if overlap:
            raise InputError(
                f"{source}: {len(overlap)} query ids are also in '{part}' "
                f"(first: {_short(sorted(overlap)[0])})"
            )
    aside = set(split.set_aside)
    if len(aside) != len(split.set_aside):
        raise InputError(f"{source}: 'set_aside' lists an id twice")
    unknown = sorted(aside - known)
    if unknown:
        raise InputError(
            f"{source}: {len(unknown)} 'set_aside' ids are not in data set {record.name!r} "
            f"(first: {_short(unknown[0])})"
        )
    for part in PARTS:
        overlap = aside.intersection(getattr(split, part))
        if overlap:
            raise InputError(
                f"{source}: {len(overlap)} ids set aside for the segmentation stream are also "
                f"in '{part}' (first: {_short(sorted(overlap)[0])})"
            )


def load_split(path: str | Path, record: DatasetRecord | None = None) -> Split:
    """Reads a split file; with ``record``, checks that it belongs to that data.

    Raises:
        InputError: naming ``path``: missing, not a regular file, not UTF-8, not JSON,
            nested too deeply, numbers too large, or a split of another form or data.
    """
    path = Path(path)
    try:
        content = read_json(path, "split file")
    except FileNotFoundError:
        raise InputError(f"{path}: not a readable split file (not found)") from None
    if not isinstance(content, dict) or content.get("format") != SPLIT_FORMAT:
        raise InputError(f"{path}: not a split file of format {SPLIT_FORMAT}")
    missing = [k for k in ("dataset", "seed", *PARTS) if k not in content]
    if missing:
        raise InputError(f"{path}: split file lacks {missing}")
    for part in (*PARTS, "set_aside"):
        if part == "set_aside" and part not in content:
            continue
        if not isinstance(content[part], list):
            raise InputError(f"{path}: '{part}' must be a list of ids")
        for i in content[part]:
            check_relative(i, f"{path} '{part}'")
    if isinstance(content["seed"], bool) or not isinstance(content["seed"], int):
        raise InputError(f"{path}: 'seed' must be an integer")
    split = Split(
        dataset=str(content["dataset"]),
        seed=content["seed"],
        **{part: tuple(content[part]) for part in PARTS},
        set_aside=tuple(content.get("set_aside", ())),
    )
    if record is not None:
        if split.dataset != record.name:
            raise InputError(
                f"{path}: split file is for data set {split.dataset!r}, not {record.name!r}"
            )
        check_split(split, record, str(path))
    return split


def _from_predefined(record: DatasetRecord, seed: int) -> Split:
    parts = record.predefined_split or {}
    query = tuple(parts["query"])
    if "gallery" in parts:
        gallery = tuple(parts["gallery"])
    else:
        excluded = set(query)
        gallery = tuple(i for i in record.ids if i not in excluded)
    split = Split(record.name, seed, tuple(parts["train"]), query, gallery)
    check_split(split, record, f"the split file in {record.root}")
    return split


class SplitSizes(Protocol):
    """What a split is drawn with: a ``registry.DatasetSpec`` has these (kept a protocol
    so that this module does not import the registry, which imports every loader)."""

    train_size: int | float
    query_size: int | float
    per_class: bool
    set_aside: int | float


def make_or_load_split(
    record: DatasetRecord, spec: SplitSizes, path: str | Path, seed: int = 0
) -> Split:
    """Returns the split saved at ``path``, or makes one and saves it there.

    A new split comes from the data set's own split file when it ships one
    (custom folders, the generated set), else it is drawn from ``seed`` with the
    spec's sizes. A saved split is reused as is (a different ``seed`` only warns).

    Raises:
        InputError: naming ``path`` when the saved split does not fit ``record``.
    """
    path = Path(path)
    if path.is_file():
        split = load_split(path, record)
        if split.seed != seed:
            warnings.warn(
                f"reusing {path} drawn with seed {split.seed} (asked for seed {seed})",
                UserWarning,
                stacklevel=2,
            )
        return split
    if record.predefined_split is not None:
        split = _from_predefined(record, seed)
    else:
        split = draw_split(
            record, spec.train_size, spec.query_size, spec.per_class, seed, spec.set_aside
        )
    split.save(path)
    return split
