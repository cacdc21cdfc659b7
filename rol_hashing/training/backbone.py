"""Which VGG16 weights a run starts from: ``auto`` (weights/), ``none`` or a path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from rol_hashing.errors import InputError
from rol_hashing.models import (
    WeightLoadReport,
    default_weights_path,
    load_vgg16_imagenet_weights,
)
from rol_hashing.models.weights import read_provenance

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord

# The files `rol-hashing pretrain` writes by default: weights/pretrained_<dataset>_<profile>.h5
PRETRAINED_PREFIX = "pretrained_"
# The checkout's own folder: the profiles name shipped files as weights/<file>, which must
# also be found when the command runs from another folder (a user's image folder).
CHECKOUT = Path(__file__).resolve().parents[2]


def _in_checkout(path: Path) -> Path:
    """``path`` itself when it exists or is absolute; else the same relative path in the
    checkout the package runs from, when that file exists there."""
    if path.is_file() or path.is_absolute():
        return path
    fallback = CHECKOUT / path
    return fallback if fallback.is_file() else path


def resolve_backbone_weights(
    setting: str, needs_top: bool, weights_dir: str | Path = "weights"
) -> Path | None:
    """The weights file a run loads, or None to train from scratch.

    Args:
        setting: "auto" (the Keras ImageNet file in ``weights_dir``), "none", or a path.
            A relative path missing from the current folder is looked up in the checkout
            the package runs from (the profiles' ``weights/...`` files).
        needs_top: the model has fc1/fc2 and ImageNet fc weights fit it (input 224,
            width 1); "auto" then asks for the file with the top.

    Raises:
        FileNotFoundError: the file is missing; the message names it and the folder.
    """
    if setting.lower() == "none":
        return None
    path = default_weights_path(needs_top, weights_dir) if setting == "auto" else Path(setting)
    path = _in_checkout(path)
    if not path.is_file():
        if path.name.startswith(PRETRAINED_PREFIX):
            raise FileNotFoundError(
                f"backbone weights not found: {path}{_also(path)}. Make them with `rol-hashing "
                "pretrain --config <experiment> --profile <profile>` (make pretrain DATASET=... "
                "PROFILE=cpu), or pass --backbone-weights none to train from scratch."
            )
        raise FileNotFoundError(
            f"backbone weights not found: {path}{_also(path)}. Put the Keras VGG16 ImageNet file "
            f"'{path.name}' into {Path(weights_dir)}/ (see weights/README.md; nothing is "
            "downloaded), or pass --backbone-weights none to train from scratch."
        )
    return path


def _also(path: Path) -> str:
    """Where else a missing relative file was looked for, for the error message."""
    return "" if path.is_absolute() else f" (nor {CHECKOUT / path})"


def load_backbone(model: keras.Model, path: Path | None) -> WeightLoadReport | None:
    """Loads ``path`` into ``model``'s VGG16 layers (no-op for None) and prints what it did."""
    if path is None:
        print("backbone: trained from scratch (--backbone-weights none)")
        return None
    report = load_vgg16_imagenet_weights(model, path)
    print(f"backbone: {report}")
    return report


def check_backbone_split(
    path: Path | None, record: DatasetRecord, query_ids: Sequence[str]
) -> None:
    """Refuses a pre-trained backbone that saw any of a run's query images.

    A backbone made by ``pretrain`` records the data set folder and the ids it was trained
    on (``read_provenance``); when that folder is the run's, none of ``query_ids`` may be
    among them. Files without the record (the Keras ImageNet files) pass.

    Raises:
        InputError: naming the file, how many queries it saw and the first one.
    """
    if path is None:
        return
    try:
        provenance = read_provenance(path)
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 weights file ({err})") from None
    if provenance is None or record.root is None:
        return
    if provenance.get("root") != str(Path(record.root).resolve()):
        return
    seen = set(provenance["ids"])
    overlap = [i for i in query_ids if i in seen]
    if overlap:
        raise InputError(
            f"{path} was pre-trained on {len(overlap)} of this run's {len(query_ids)} query "
            f"images (first: {overlap[0]!r}) of {record.root}; pre-train on the run's training "
            "split (the same --seed or split_file), or give another backbone"
        )
