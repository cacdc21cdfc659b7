"""Which VGG16 weights a run starts from: ``auto`` (weights/), ``none`` or a path."""

from __future__ import annotations

from pathlib import Path

import keras

from rol_hashing.models import (
    WeightLoadReport,
    default_weights_path,
    load_vgg16_imagenet_weights,
)

# The files `rol-hashing pretrain` writes by default: weights/pretrained_<dataset>_<profile>.h5
PRETRAINED_PREFIX = "pretrained_"


def resolve_backbone_weights(
    setting: str, needs_top: bool, weights_dir: str | Path = "weights"
) -> Path | None:
    """The weights file a run loads, or None to train from scratch.

    Args:
        setting: "auto" (the Keras ImageNet file in ``weights_dir``), "none", or a path.
        needs_top: the model has fc1/fc2 and ImageNet fc weights fit it (input 224,
            width 1); "auto" then asks for the file with the top.

    Raises:
        FileNotFoundError: the file is missing; the message names it and the folder.
    """
    if setting.lower() == "none":
        return None
    path = default_weights_path(needs_top, weights_dir) if setting == "auto" else Path(setting)
    if not path.is_file():
        if path.name.startswith(PRETRAINED_PREFIX):
            raise FileNotFoundError(
                f"backbone weights not found: {path}. Make them with `rol-hashing pretrain "
                f"--config <experiment> --profile <profile>` (make pretrain DATASET=... "
                "PROFILE=cpu), or pass --backbone-weights none to train from scratch."
            )
        raise FileNotFoundError(
            f"backbone weights not found: {path}. Put the Keras VGG16 ImageNet file "
            f"'{path.name}' into {Path(weights_dir)}/ (see weights/README.md; nothing is "
            "downloaded), or pass --backbone-weights none to train from scratch."
        )
    return path


def load_backbone(model: keras.Model, path: Path | None) -> WeightLoadReport | None:
    """Loads ``path`` into ``model``'s VGG16 layers (no-op for None) and prints what it did."""
    if path is None:
        print("backbone: trained from scratch (--backbone-weights none)")
        return None
    report = load_vgg16_imagenet_weights(model, path)
    print(f"backbone: {report}")
    return report
