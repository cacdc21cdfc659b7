"""Encoding a data set with a hashing model: activations -> bool codes, labels, ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from rol_hashing.retrieval.codes import EncodedSet, as_id_array, binarize, check_bits

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
        verbose: 1 shows a ``keras.utils.Progbar`` when the number of batches is known.

    Returns:
        ``EncodedSet`` with codes bool (N, bits), labels (N,) or (N, C), ids (N,).
    """
    import keras

    if bits is not None:
        bits = check_bits(bits)
    try:
        n_batches: int | None = len(dataset)  # type: ignore[arg-type]
    except TypeError:  # unknown length (generators, tf.data of unknown cardinality)
        n_batches = None
    progbar = keras.utils.Progbar(n_batches) if verbose and n_batches is not None else None

    codes, labels, ids = [], [], []
    count = 0
    for step, batch in enumerate(dataset):
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise ValueError(
                "each batch must be (images, labels) or (images, labels, ids), "
                f"got {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else "")
            )
        images, batch_labels = batch[0], batch[1]
        h = _hash_output(_predict(model, images))
        batch_codes = binarize(h)
        if bits is not None and batch_codes.shape[1] != bits:
            raise ValueError(
                f"expected {bits}-bit codes, the model's hash output has {batch_codes.shape[1]}"
            )
        n = batch_codes.shape[0]
        batch_labels = _to_numpy(batch_labels)
        if len(batch_labels) != n:
            raise ValueError(f"batch {step}: {n} images but {len(batch_labels)} labels")
        if len(batch) == 3:
            batch_ids = as_id_array(_to_numpy(batch[2]))
            if len(batch_ids) != n:
                raise ValueError(f"batch {step}: {n} images but {len(batch_ids)} ids")
        else:
            batch_ids = np.arange(count, count + n)
        codes.append(batch_codes)
        labels.append(batch_labels)
        ids.append(batch_ids)
        count += n
        if progbar is not None:
            progbar.update(step + 1)

    if not codes:
        raise ValueError("the dataset yielded no batches")
    return EncodedSet(np.concatenate(codes), np.concatenate(labels), np.concatenate(ids))


def _predict(model: Any, images: Any) -> Any:
    if hasattr(model, "predict_on_batch"):
        return model.predict_on_batch(images)
    return model(images, training=False)


def _hash_output(outputs: Any) -> np.ndarray:
    if isinstance(outputs, dict):
        if HASH_OUTPUT not in outputs:
            raise ValueError(f"the model's outputs {sorted(outputs)} have no {HASH_OUTPUT!r} entry")
        outputs = outputs[HASH_OUTPUT]
    h = _to_numpy(outputs)
    if h.ndim != 2:
        raise ValueError(f"expected hash activations of shape (B, bits), got {h.shape}")
    return h


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)
