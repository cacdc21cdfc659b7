"""Encoding with a hashing model: activations -> bool codes, labels, ids.

- ``encode``: any model over any batches (``h > 0.5``, SSDH's rule).
- ``encode_split``/``encode_parts``: a trained run's query and gallery, cached in the
  run folder::

    codes_query.npz     query codes, labels and ids (``save_codes``)
    codes_gallery.npz   gallery codes, labels and ids

  A cache records the SHA-256 of the ``model.keras`` that wrote it; it is reused only
  for that model, the run's bits and exactly the split's ids, otherwise encoded again
  (a cache copied from another run is not trusted).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from rol_hashing.data.pipeline import make_image_dataset
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError, check_int
from rol_hashing.freshness import file_digest, make_key, records_parts
from rol_hashing.models import copy_weights_by_name, rol_feature_size
from rol_hashing.models.hashing import hashing_model_shape
from rol_hashing.retrieval.codes import (
    EncodedSet,
    as_id_array,
    binarize,
    check_bits,
    load_codes,
    save_codes,
)
from rol_hashing.saving import load_inference_model
from rol_hashing.training.hashing import (
    config_model,
    load_segmentation_model,
    needs_segmentation,
)
from rol_hashing.training.layout import (
    GALLERY_CODES,
    QUERY_CODES,
    Run,
    check_split_parts,
    open_hashing_run,
)
from rol_hashing.training.masks import run_masks

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord
    from rol_hashing.data.splits import Split


HASH_OUTPUT = "hash"


def encode(
    model: Any,
    dataset: Iterable[Any],
    bits: int | None = None,
    verbose: int = 1,
) -> EncodedSet:
    """Runs ``model`` over ``dataset`` and binarises its hash layer (``h > 0.5``, SSDH).

    Args:
        model: a Keras model (or callable) whose output is a dict with key ``"hash"``
            holding (B, bits) sigmoid activations, or that tensor itself.
        dataset: an iterable of batches ``(images, labels)`` or ``(images, labels, ids)``:
            a ``tf.data.Dataset`` or a list of numpy tuples. ``images`` may also be a
            dict of inputs. Without ids, items are numbered 0..N-1 in iteration order.
        bits: expected code length; checked against the model's output when given.
        verbose: 1 shows a ``keras.utils.Progbar`` on a terminal when the number of
            batches is known.

    Returns:
        ``EncodedSet`` with codes bool (N, bits), labels (N,) or (N, C), ids (N,).
    """
    if bits is not None:
        bits = check_bits(bits)
    try:
        n_batches: int | None = len(dataset)  # type: ignore[arg-type]
    except TypeError:  # unknown length (generators, tf.data of unknown cardinality)
        n_batches = None
    # A step bar on a terminal only: Keras would also draw one into a redirected log.
    bar = verbose and n_batches is not None and sys.stdout.isatty()
    progbar = keras.utils.Progbar(n_batches) if bar else None

    codes, labels, ids = [], [], []
    count = 0
    for step, batch in enumerate(dataset):
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise InputError(
                "each batch must be (images, labels) or (images, labels, ids), "
                f"got {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else "")
            )
        images, batch_labels = batch[0], batch[1]
        h = _hash_output(_predict(model, images))
        batch_codes = binarize(h)
        if bits is not None and batch_codes.shape[1] != bits:
            raise InputError(
                f"expected {bits}-bit codes, the model's hash output has {batch_codes.shape[1]}"
            )
        n = batch_codes.shape[0]
        batch_labels = _to_numpy(batch_labels)
        if len(batch_labels) != n:
            raise InputError(f"batch {step}: {n} images but {len(batch_labels)} labels")
        if len(batch) == 3:
            batch_ids = as_id_array(_to_numpy(batch[2]))
            if len(batch_ids) != n:
                raise InputError(f"batch {step}: {n} images but {len(batch_ids)} ids")
        else:
            batch_ids = np.arange(count, count + n)
        codes.append(batch_codes)
        labels.append(batch_labels)
        ids.append(batch_ids)
        count += n
        if progbar is not None:
            progbar.update(step + 1)

    if not codes:
        raise InputError("the dataset yielded no batches")
    return EncodedSet(np.concatenate(codes), np.concatenate(labels), np.concatenate(ids))


def _predict(model: Any, images: Any) -> Any:
    if hasattr(model, "predict_on_batch"):
        return model.predict_on_batch(images)
    return model(images, training=False)


def _hash_output(outputs: Any) -> np.ndarray:
    if isinstance(outputs, dict):
        if HASH_OUTPUT not in outputs:
            raise InputError(f"the model's outputs {sorted(outputs)} have no {HASH_OUTPUT!r} entry")
        outputs = outputs[HASH_OUTPUT]
    h = _to_numpy(outputs)
    if h.ndim != 2:
        raise InputError(f"expected hash activations of shape (B, bits), got {h.shape}")
    return h


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


def encode_split(
    run_dir: str | Path,
    batch_size: int = 64,
    verbose: int = 1,
    record: DatasetRecord | None = None,
) -> tuple[EncodedSet, EncodedSet]:
    """Codes of the run's query and gallery images, cached in the run folder.

    Returns:
        (query, gallery) ``EncodedSet``s: codes bool (N, bits), labels (N,) int64 or
        (N, C) uint8 multi-hot, ids (N,) str (the record's ids, in split order).
    """
    run = open_hashing_run(run_dir)
    _, record, split = run.load_data(record)
    check_split_parts(split, run.split)
    query, gallery, _ = encode_parts(run, record, split, batch_size, verbose)
    return query, gallery


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` if it is a whole number >= 1, else ``InputError`` (checked before a
    run is read: evaluate, index)."""
    return check_int(batch_size, "batch_size")


def encode_parts(
    run: Run,
    record: DatasetRecord,
    split: Split,
    batch_size: int,
    verbose: int,
    shared_masks: Path | None = None,
    keys: dict[str, dict] | None = None,
) -> tuple[EncodedSet, EncodedSet, bool]:
    """(query, gallery, reused): cached codes where valid, else one pass of the model.
    ``keys``: the parts' ``part_keys`` when the caller has made them.

    ``shared_masks``: for a ROL run with predicted masks, R of each part is computed once
    per segmentation stream and kept in this folder (keyed by the stream's file and the
    ids, as the training mask cache), and the model's mask-input twin (same weights)
    encodes from it; runs of other code lengths on the same stream reuse it.
    """
    parts = {"query": split.query, "gallery": split.gallery}
    files = {"query": run.path / QUERY_CODES, "gallery": run.path / GALLERY_CODES}
    model_hash = file_digest(run.model)
    indices = split.indices(record)
    keys = keys or part_keys(run, record, split)
    cached = {
        part: _cached_codes(files[part], run, parts[part], model_hash, keys[part], record)
        for part in parts
    }
    if all(c is not None for c in cached.values()):
        return cached["query"], cached["gallery"], True

    model = load_run_model(run, len(record.class_names))
    seg = None  # the segmentation stream, loaded once when a part's masks need it
    if shared_masks is not None and run.method == "rol" and not isinstance(model.input, dict):
        seg = stream_of(model)
        model = mask_input_twin(run, model)
    ids = np.asarray(record.ids)
    out = {}
    for part in parts:
        if cached[part] is not None:
            out[part] = cached[part]
            continue
        if verbose:
            print(f"encoding {len(parts[part])} {part} images with {run.model}")
        dataset = make_image_dataset(
            record,
            getattr(indices, part),
            run.config.model.input_size,
            batch_size,
            with_index=True,
        )
        if isinstance(model.input, dict):  # R from another source: fed, not computed
            if seg is None and needs_segmentation(run.config):
                seg = load_segmentation_model(
                    run.config.hashing.segmentation_model, run.config.model.input_size
                )
            masks = part_masks(
                run, record, getattr(indices, part), part, batch_size, seg, shared_masks
            )
            masks_ds = tf.data.Dataset.from_tensor_slices(masks).batch(batch_size)
            dataset = tf.data.Dataset.zip(dataset, masks_ds).map(
                lambda batch, m: ({"image": batch[0], "mask": m}, batch[1], batch[2])
            )
        encoded = encode(model, dataset, bits=run.bits, verbose=verbose)
        labels = encoded.labels.astype(np.uint8) if record.multilabel else encoded.labels
        out[part] = EncodedSet(encoded.codes, labels, ids[encoded.ids.astype(np.int64)])
        save_codes(
            files[part],
            out[part].codes,
            out[part].ids,
            out[part].labels,
            model_hash,
            key=keys[part],
        )
    return out["query"], out["gallery"], False


def load_run_model(run: Run, num_classes: int) -> keras.Model:
    """The run's ``model.keras``, checked to be the model its ``config.yaml`` describes:
    the method (a ROL layer or none), the code length, the data set's ``num_classes`` and
    the input size; InputError names the file and what differs."""
    model = load_inference_model(run.model)
    found = hashing_model_shape(model, run.model)
    expected = {
        "method": run.method,
        "bits": run.bits,
        "classes": num_classes,
        "input_size": run.config.model.input_size,
    }
    differ = [
        f"{k}: model {found[k]!r}, run {expected[k]!r}" for k in expected if found[k] != expected[k]
    ]
    if differ:
        raise InputError(
            f"{run.model} is not the model {run.config_file} describes ({'; '.join(differ)}, "
            f"data set {run.config.dataset!r}); retrain it with {run.train_command()}"
        )
    return model


def part_masks(
    run: Run,
    record: DatasetRecord,
    indices: np.ndarray,
    part: str,
    batch_size: int = 64,
    segmentation_model: keras.Model | None = None,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """R (N, h, w, 1) of a split part from the run's own mask source (``model.rol_mask``),
    the same source it was trained with; predictions are cached in ``<run>/masks/`` (or
    ``cache_dir``). ``segmentation_model``: the stream, already loaded (else loaded
    when needed)."""
    m = run.config.model
    seg_path = Path(run.config.hashing.segmentation_model)
    seg = segmentation_model
    if seg is None and needs_segmentation(run.config):
        seg = load_segmentation_model(seg_path, m.input_size)
    images = make_image_dataset(record, indices, m.input_size, batch_size).map(lambda x, _: x)
    return run_masks(
        m.rol_mask,
        cache_dir or run.masks,
        part,
        record,
        indices,
        m.input_size,
        rol_feature_size(m.input_size, m.rol_at),
        seed=run.config.seed,
        segmentation_model=seg,
        segmentation_path=seg_path,
        images=images,
        background_index=m.background_index,
    )


def stream_of(model: keras.Model) -> keras.Model:
    """The segmentation stream embedded in a live ROL model (its one nested model)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise InputError(f"{model.name}: expected one embedded segmentation model")
    return nested[0]


def mask_input_twin(run: Run, model: keras.Model) -> keras.Model:
    """The mask-input form of a live ROL model (R fed as "mask"), with its weights."""
    classes = int(model.get_layer("class").output.shape[-1])
    multilabel = get_dataset_spec(run.config.dataset).multilabel
    twin = config_model(run.config, classes, multilabel, mask_input=True)
    copy_weights_by_name(model, twin)
    return twin


def part_keys(run: Run, record: DatasetRecord, split: Split) -> dict[str, dict]:
    """``{"query": key, "gallery": key}``: the ``codes_key`` of each part of the split."""
    model_hash = file_digest(run.model)
    indices = split.indices(record)
    return {
        part: codes_key(run, record, getattr(indices, part), model_hash, part)
        for part in ("query", "gallery")
    }


def codes_key(
    run: Run, record: DatasetRecord, indices: np.ndarray, model_sha256: str, part: str
) -> dict:
    """The freshness key of a run's cached codes of one split part: the model file, the
    images (ids, labels, pixels), the input size and the mask source feeding the ROL."""
    m = run.config.model
    return make_key(
        "codes",
        model=model_sha256,
        part=part,
        bits=run.bits,
        input_size=m.input_size,
        rol_mask=m.rol_mask if run.method == "rol" else None,
        background_index=m.background_index,
        **records_parts(record, indices),
    )


def _cached_codes(
    path: Path,
    run: Run,
    ids: tuple[str, ...],
    model_sha256: str,
    key: dict,
    record: DatasetRecord,
) -> EncodedSet | None:
    """The codes at ``path`` if their key is ``key`` (the model, the images, the bits)
    and their ids and labels are the data set's; else None (with a line saying why a
    present file is not used)."""
    if not path.is_file():
        return None
    try:
        encoded = load_codes(path, bits=run.bits, model_sha256=model_sha256, key=key)
    except ValueError as err:  # another model, version, code length or images: encode again
        print(f"code cache not used: {err}")
        return None
    if encoded.ids.dtype.kind != "U" or encoded.ids.tolist() != list(ids):
        return None
    expected = np.asarray(record.labels)[record.index_of(list(ids))]
    if encoded.labels.shape != expected.shape or not np.array_equal(encoded.labels, expected):
        print(f"code cache not used: {path}: its labels are not the data set's")
        return None
    return encoded
