"""Comparing runs: what the notebooks and the demo's figures look at (no plotting here).

- ``load_examples``: a few gallery images of a hashing run, as model inputs and as
  the displayed (cropped) pixels;
- ``segmentation_views``: per-class probabilities and the reliability mask R, at
  full resolution and at the ROL's feature grid;
- ``feature_energy``: the last conv map's energy before and after the ROL;
- ``compare_runs``: per-query AP@k of two runs on the same queries, their top-k
  lists with relevance, and the queries where one wins or loses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np

from rol_hashing.data.pipeline import deprocess_vgg, make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.data.splits import load_split
from rol_hashing.data.voc import find_devkit, segmentation_ids
from rol_hashing.data.voc import segmentation_class_names as voc_class_names
from rol_hashing.errors import InputError
from rol_hashing.evaluation.evaluate import METRICS_JSON, evaluate_run
from rol_hashing.evaluation.map import average_precisions
from rol_hashing.models import reliability_mask
from rol_hashing.retrieval.codes import EncodedSet
from rol_hashing.retrieval.encode import encode_split
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.retrieval.relevance import Relevance
from rol_hashing.saving import load_inference_model
from rol_hashing.training.config import load_run_config
from rol_hashing.training.layout import CONFIG_FILE, MODEL_FILE, open_hashing_run


@dataclass(frozen=True)
class Examples:
    """Images of a run's data set: ``inputs`` (B, S, S, 3) preprocessed float32,
    ``pixels`` (B, S, S, 3) uint8 as the model sees them, ids and labels."""

    inputs: np.ndarray
    pixels: np.ndarray
    ids: list[str]
    labels: np.ndarray
    class_names: list[str]


@lru_cache(maxsize=4)
def _load_dataset(dataset: str, data_root: str) -> DatasetRecord:
    return get_dataset_spec(dataset).load(data_root)


def load_record(run_dir: str | Path) -> DatasetRecord:
    """The data set a hashing run was trained on (from its config).

    Loaded (and its images checked) once per data set and root in a process: the
    notebooks ask for it for every figure.
    """
    config = open_hashing_run(run_dir).config
    return _load_dataset(config.dataset, str(Path(config.data_root).resolve()))


def load_examples(run_dir: str | Path, count: int = 6, part: str = "gallery", seed: int = 0):
    """``count`` images drawn (seeded) from the run's split part ("gallery", "query")."""
    run = open_hashing_run(run_dir)
    record = load_record(run_dir)
    positions = getattr(load_split(run.split, record).indices(record), part)
    chosen = np.sort(np.random.default_rng(seed).choice(positions, size=count, replace=False))
    ds = make_image_dataset(record, chosen, run.config.model.input_size, batch_size=count)
    inputs = next(iter(ds))[0].numpy()
    return Examples(
        inputs=inputs,
        pixels=deprocess_vgg(inputs),
        ids=[record.ids[i] for i in chosen],
        labels=record.labels[chosen],
        class_names=list(record.class_names),
    )


@dataclass(frozen=True)
class SegmentationViews:
    """``probs`` (B, S, S, N); ``mask`` R (B, S, S); ``mask_grid`` R at the ROL grid (B, h, w)."""

    probs: np.ndarray
    mask: np.ndarray
    mask_grid: np.ndarray


def segmentation_views(
    segmentation_model: keras.Model, inputs: np.ndarray, grid: int, background_index: int = 0
) -> SegmentationViews:
    """Runs the segmentation stream on preprocessed ``inputs`` and derives R."""
    probs = segmentation_model.predict(inputs, verbose=0)
    full = keras.ops.convert_to_numpy(reliability_mask(probs, None, background_index))
    small = keras.ops.convert_to_numpy(reliability_mask(probs, (grid, grid), background_index))
    return SegmentationViews(probs=probs, mask=full[..., 0], mask_grid=small[..., 0])


def feature_energy(hash_model: keras.Model, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared activation over channels of ``block5_conv3`` (after its ReLU, which
    is ``block5_conv3_relu`` in VGG16-BN) and of the ROL output.

    Returns ``(before, after)``, each (B, h, w).
    """
    names = {layer.name for layer in hash_model.layers}
    tap = "block5_conv3_relu" if "block5_conv3_relu" in names else "block5_conv3"
    probe = keras.Model(
        hash_model.input,
        [hash_model.get_layer(tap).output, hash_model.get_layer("rol").output],
    )
    before, after = probe.predict(inputs, verbose=0)
    return np.mean(before**2, axis=-1), np.mean(after**2, axis=-1)


def load_run_models(run_dir: str | Path) -> tuple[keras.Model, keras.Model | None]:
    """A hashing run's model and, for ``rol``, its frozen segmentation model."""
    model = load_inference_model(Path(run_dir) / MODEL_FILE)
    seg = None
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            seg = layer
    return model, seg


@dataclass(frozen=True)
class RunComparison:
    """Two runs on the same queries: ``ap_a``, ``ap_b`` (Q,) AP@k; ``top_a``, ``top_b``
    (Q, k) gallery positions; ``rel_a``, ``rel_b`` (Q, k) relevance; the encoded sets."""

    query: EncodedSet
    gallery: EncodedSet
    ap_a: np.ndarray
    ap_b: np.ndarray
    top_a: np.ndarray
    top_b: np.ndarray
    rel_a: np.ndarray
    rel_b: np.ndarray

    def wins(self, count: int = 3) -> np.ndarray:
        """Query positions where run b beats run a by the largest AP margin."""
        return np.argsort(self.ap_a - self.ap_b, kind="stable")[:count]

    def losses(self, count: int = 3) -> np.ndarray:
        """Query positions where run b trails run a by the largest AP margin."""
        return np.argsort(self.ap_b - self.ap_a, kind="stable")[:count]


def _ranking(query: EncodedSet, gallery: EncodedSet, k: int, top_k: int):
    index = HammingIndex(gallery.bits)
    index.add(gallery.codes)
    _, top = index.search(query.codes, k)
    ap = average_precisions(query.codes, query.labels, gallery.codes, gallery.labels, top_k=top_k)
    relevance = Relevance(query.labels, gallery.labels, len(query), len(gallery))
    return ap, top, relevance(slice(None), top)


def compare_runs(run_a: str | Path, run_b: str | Path, k: int = 10, top_k: int = 1000):
    """Per-query AP@top_k and top-k lists of two runs trained on the same split.

    Raises:
        ValueError: the runs' queries differ (different splits).
    """
    qa, ga = encode_split(run_a, verbose=0)
    qb, gb = encode_split(run_b, verbose=0)
    if list(qa.ids) != list(qb.ids) or list(ga.ids) != list(gb.ids):
        raise InputError(f"{run_a} and {run_b} were evaluated on different splits")
    top_k = min(top_k, len(ga.ids))
    ap_a, top_a, rel_a = _ranking(qa, ga, k, top_k)
    ap_b, top_b, rel_b = _ranking(qb, gb, k, top_k)
    return RunComparison(qa, ga, ap_a, ap_b, top_a, top_b, rel_a, rel_b)


def gallery_pixels(run_dir: str | Path, gallery_ids: list[str], input_size: int) -> np.ndarray:
    """(B, S, S, 3) uint8 pixels of gallery images by id, as the model sees them."""
    record = load_record(run_dir)
    positions = record.index_of(list(gallery_ids))
    ds = make_image_dataset(record, positions, input_size, batch_size=max(1, len(positions)))
    return deprocess_vgg(next(iter(ds))[0].numpy())


def segmentation_class_names(run_dir: str | Path) -> list[str]:
    """The segmentation stream's class names, background first.

    The devkit is the one the stream itself was trained on (its run folder's
    ``config.yaml``, beside its ``model.keras``), else the hashing run's
    ``segmentation.data_root``.
    """
    config = open_hashing_run(run_dir).config
    seg_config = Path(config.hashing.segmentation_model).parent / CONFIG_FILE
    seg = load_run_config(seg_config.parent).segmentation if seg_config.is_file() else None
    section = seg or config.segmentation
    devkit = find_devkit(section.data_root)
    ids = segmentation_ids(devkit, section.train_split)
    return ["background", *voc_class_names(devkit, ids)]


def precision_curve(run_dir: str | Path) -> np.ndarray:
    """Precision@k, k = 1..top_k, from the run's ``metrics.json`` (evaluated if missing)."""
    path = Path(run_dir) / METRICS_JSON
    metrics = json.loads(path.read_text()) if path.is_file() else evaluate_run(run_dir, verbose=0)
    return np.asarray(metrics["precision_curve"])


def retrieval_rows(
    comparison: RunComparison,
    query: int,
    run_dir: str | Path,
    names: tuple[str, str] = ("SSDH", "ROL"),
) -> tuple[np.ndarray, dict[str, list[tuple[np.ndarray, bool]]]]:
    """Query ``query``'s pixels and the two runs' top-k as ``(pixels, relevant)`` rows,
    ready for ``viz.plot_retrieval_comparison``."""
    size = open_hashing_run(run_dir).config.model.input_size
    query_pixels = gallery_pixels(run_dir, [comparison.query.ids[query]], size)[0]
    rows = {}
    for name, top, rel in (
        (names[0], comparison.top_a, comparison.rel_a),
        (names[1], comparison.top_b, comparison.rel_b),
    ):
        ids = [comparison.gallery.ids[i] for i in top[query]]
        pixels = gallery_pixels(run_dir, ids, size)
        rows[name] = [(pixels[j], bool(rel[query, j])) for j in range(len(ids))]
    return query_pixels, rows
