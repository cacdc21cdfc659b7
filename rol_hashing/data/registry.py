"""Data set registry: name -> loader, paper split sizes, MAP top-k, layout text.

Nothing else in the package branches on a data set's name; it asks this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rol_hashing.data import awa2, cifar10, fashion, fashion_sets, folders, generated, voc
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError


@dataclass(frozen=True)
class DatasetSpec:
    """How to load a data set and split it (readings §3).

    Attributes:
        name: registry key.
        loader: ``loader(root, strict=False) -> DatasetRecord``.
        train_size, query_size: int counts or float fractions; per class when
            ``per_class``.
        per_class: draw train/query per class (single-label only).
        top_k: the k of MAP@k.
        multilabel: whether labels are multi-hot.
        num_classes: fixed class count, or None when read from the data.
        layout: the expected on-disk layout (quoted in errors and help).
        default_root: where the data is looked for when no root is given.
        paper: what the paper reports (totals), for the summary.
        set_aside: images (per class when ``per_class``) kept out of the hashing set for
            the segmentation stream (``Split.set_aside``); 0 for most data sets.
    """

    name: str
    loader: Callable[..., DatasetRecord]
    train_size: int | float
    query_size: int | float
    per_class: bool
    top_k: int
    multilabel: bool
    num_classes: int | None
    layout: str
    default_root: str
    paper: str = ""
    set_aside: int | float = 0

    def load(self, root: str | Path | None = None, strict: bool = False) -> DatasetRecord:
        """Runs the loader on ``root`` (default: ``default_root``)."""
        return self.loader(self.default_root if root is None else root, strict=strict)


_SPECS = (
    DatasetSpec(
        name="cifar10",
        loader=cifar10.load_cifar10,
        train_size=500,
        query_size=100,
        per_class=True,
        top_k=1000,
        multilabel=False,
        num_classes=10,
        layout=cifar10.LAYOUT,
        default_root="data/cifar10",
        paper="60000 images; train 5000 (500/class), query 1000 (100/class), gallery 59000",
    ),
    DatasetSpec(
        name="voc2012",
        loader=voc.load_voc2012,
        train_size=5000,
        query_size=1000,
        per_class=False,
        top_k=1000,
        multilabel=True,
        num_classes=20,
        layout=voc.LAYOUT,
        default_root="data/VOCdevkit/VOC2012",
        paper="9267 images; train 5000, query 1000, gallery 8267",
    ),
    DatasetSpec(
        name="awa2",
        loader=awa2.load_awa2,
        train_size=10000,
        query_size=1000,
        per_class=False,
        top_k=1000,
        multilabel=False,
        num_classes=50,
        layout=awa2.LAYOUT,
        default_root="data/Animals_with_Attributes2",
        paper="37322 images; train 10000, query 1000, gallery 36322",
    ),
    DatasetSpec(
        name="folders",
        loader=folders.load_class_folders,
        train_size=0.5,
        query_size=0.1,
        per_class=True,
        top_k=1000,
        multilabel=False,
        num_classes=None,
        layout=folders.LAYOUT,
        default_root="data/folders",
        paper="private set: 9191 images; train 5000, query 1784, gallery 7407",
    ),
    DatasetSpec(
        name="generated",
        loader=generated.load_generated,
        train_size=0.5,
        query_size=0.1,
        per_class=True,
        top_k=1000,
        multilabel=False,
        num_classes=None,
        layout=generated.LAYOUT,
        default_root="data/generated",
        paper="not in the paper: the embedded default (rol-hashing make-data)",
    ),
)
# Fashion-MNIST under the paper's CIFAR-10 protocol (500 train + 100 query per class),
# with its VOC rule for the segmentation stream: 200 images per class set aside for it.
_FASHION_SIZES = {
    "train_size": 500,
    "query_size": 100,
    "per_class": True,
    "top_k": 1000,
    "multilabel": False,
    "num_classes": 10,
    "set_aside": 200,
}
_SPECS += (
    DatasetSpec(
        name="fashion_mnist",
        loader=fashion.load_fashion_mnist,
        layout=fashion.LAYOUT,
        default_root=fashion.DEFAULT_ROOT,
        paper="not in the paper: 70000 images; set aside 2000 (200/class) for the "
        "segmentation stream, train 5000 (500/class), query 1000 (100/class), gallery 67000",
        **_FASHION_SIZES,
    ),
    DatasetSpec(
        name="fashion_scenes",
        loader=fashion_sets.load_fashion_scenes,
        layout=fashion_sets.SCENES_LAYOUT,
        default_root="data/fashion_scenes",
        paper="not in the paper: each Fashion-MNIST item in a photo scene; sizes as fashion_mnist",
        **_FASHION_SIZES,
    ),
)
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def available_datasets() -> list[str]:
    return list(DATASETS)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; ValueError lists the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(
            f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}"
        ) from None


def load_dataset(name: str, root: str | Path | None = None, strict: bool = False) -> DatasetRecord:
    """Loads data set ``name`` from ``root`` (default: the spec's ``default_root``)."""
    return get_dataset_spec(name).load(root, strict=strict)
