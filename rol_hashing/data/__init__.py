"""Data sets (readings §3): loaders, the registry, splits, the tf.data pipeline, the generated set.

Importing this package does not import TensorFlow; the pipeline names
(``make_image_dataset``, ``make_segmentation_dataset``, ``preprocess_vgg``,
``deprocess_vgg``) load it on first use.
"""

from __future__ import annotations

from typing import Any

from rol_hashing.data.awa2 import load_awa2
from rol_hashing.data.cifar10 import UnsafePickleError, load_cifar10
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.generated import load_generated, make_generated_dataset, write_examples_png
from rol_hashing.data.images import ImageError, decode_image, read_mask
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import (
    DatasetSpec,
    available_datasets,
    get_dataset_spec,
    load_dataset,
)
from rol_hashing.data.splits import Split, SplitIndices, load_split, make_or_load_split
from rol_hashing.data.voc import load_voc2012, load_voc_segmentation

_PIPELINE_NAMES = (
    "make_image_dataset",
    "make_segmentation_dataset",
    "preprocess_vgg",
    "deprocess_vgg",
    "preprocess_image",
    "resize_size",
)

__all__ = [
    "DatasetRecord",
    "DatasetSpec",
    "ImageError",
    "Split",
    "SplitIndices",
    "UnsafePickleError",
    "available_datasets",
    "decode_image",
    "get_dataset_spec",
    "load_awa2",
    "load_cifar10",
    "load_class_folders",
    "load_dataset",
    "load_generated",
    "load_split",
    "load_voc2012",
    "load_voc_segmentation",
    "make_generated_dataset",
    "make_or_load_split",
    "read_mask",
    "write_examples_png",
    *_PIPELINE_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _PIPELINE_NAMES:
        # lazy: the pipeline imports TensorFlow (seconds); the loaders do not need it
        from rol_hashing.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rol_hashing.data' has no attribute {name!r}")
