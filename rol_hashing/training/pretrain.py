"""Backbone pre-training: a stand-in for ImageNet where no ImageNet file can be had.

The paper starts both streams from ImageNet VGG16; without any pre-training, a
quarter-width VGG16 trained from scratch on cluttered scenes stays at chance (codes
collapse, MAP = 1/classes). ``pretrain_backbone`` trains a VGG16 with the classifier
top to name the object in a separate pool of object-centric images, then writes its
conv and fc1/fc2 layers in the Keras ImageNet ``.h5`` layout, which the segmentation
stream, SSDH and ROL all start from (``model.backbone_weights``). The recipe learns in
a few epochs on CPUs: He initialisation with ``block1_conv1`` divided by the pixels'
standard deviation (VGG inputs are mean-subtracted 0..255 values, std ~56; He assumes
unit scale, and Keras' default Glorot init or unscaled He start at chance or with a
loss of ~20), Adam 5e-4, random 90-degree turns and mirrors (``turn_and_mirror``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np

from rol_hashing.constants import AUGMENTS
from rol_hashing.data.generated import load_generated
from rol_hashing.data.pipeline import make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError
from rol_hashing.freshness import (
    make_key,
    read_sidecar,
    records_parts,
    stale_parts,
    write_sidecar,
)
from rol_hashing.io import atomic_save_model
from rol_hashing.models import build_vgg16, save_vgg16_weights_h5
from rol_hashing.saving import load_model
from rol_hashing.training.augment import augment_batch, batch_seed
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.inputs import materialize_images
from rol_hashing.training.loop import (
    build_training_state,
    fault_callbacks,
    progress_callbacks,
)

# Pools whose preprocessed floats exceed this stream from their source (``stream``).
STREAM_BYTES = 1 << 30


def turn_and_mirror(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, S, S, 3) -> each image turned by a random multiple of 90 degrees and
    randomly mirrored (the shapes' classes do not change)."""
    out = np.empty_like(images)
    turns, flips = _turn_draws(rng, len(images))
    for k in range(4):
        for flip in (False, True):
            chosen = np.flatnonzero((turns == k) & (flips == flip))
            turned = np.rot90(images[chosen], k, axes=(1, 2))
            out[chosen] = turned[:, :, ::-1] if flip else turned
    return out


def _turn_draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(n,)`` turns (0-3) and ``(n,)`` mirror flags ``turn_and_mirror`` draws."""
    return rng.integers(0, 4, size=n), rng.integers(0, 2, size=n).astype(bool)


def checkpoint_paths(out_h5: Path) -> tuple[Path, Path]:
    """The in-progress model (after the last finished epoch) and its sidecar beside
    ``out_h5``: ``<stem>.partial.keras`` and ``<stem>.partial.json``."""
    out_h5 = Path(out_h5)
    model = out_h5.with_name(out_h5.stem + ".partial.keras")
    return model, model.with_suffix(".json")


def pretrain_backbone(
    pool: Path,
    out_h5: Path,
    config: ExperimentConfig,
    seed: int,
    epochs: int = 8,
    learning_rate: float = 5e-4,
    batch_size: int = 32,
    verbose: int = 2,
) -> dict[str, float]:
    """Trains VGG16 with its top on a class-folder pool; writes its VGG16 layers to ``out_h5``.

    Args:
        pool: a class-folder data set (``<pool>/<class>/*.jpg``, or a generated set's
            root, whose ``classes/`` is used).
        out_h5: the backbone file, in the Keras ImageNet ``.h5`` layout.
        config: the experiment; its ``model`` section gives the VGG variant, input
            size and width.
        seed: seeds the order, the held-out part, the initialisation and augmentation.
        epochs, learning_rate, batch_size: Adam's schedule.

    Returns:
        ``{"train_accuracy", "val_accuracy", "classes", "images"}`` (val = a held-out
        sixth of the pool).
    """
    record = load_generated(pool)
    return pretrain_on_record(
        record,
        np.arange(len(record)),
        out_h5,
        config,
        seed,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        verbose=verbose,
        augment=config.hashing.augment,
        mirror=config.hashing.augment_mirror,
    )


def pretrain_on_record(
    record: DatasetRecord,
    indices: np.ndarray,
    out_h5: Path,
    config: ExperimentConfig,
    seed: int,
    epochs: int = 8,
    learning_rate: float = 5e-4,
    batch_size: int = 32,
    verbose: int = 2,
    turns_and_mirrors: bool = True,
    stream: bool | None = None,
    augment: str = "none",
    mirror: bool = False,
    resume: bool = False,
) -> dict[str, float]:
    """``pretrain_backbone`` on ``record[indices]`` (e.g. an experiment's training split
    only, never its query images); its classes are the record's.

    After every epoch but the last the model and its optimizer state are written to
    ``checkpoint_paths(out_h5)`` (removed once ``out_h5`` is written); ``resume``:
    continue after the last finished epoch of such a checkpoint, which must have been
    made by the same pre-training (record, indices, config, schedule), else InputError
    naming what differs. A resumed run draws the same orders, turns and crops as an
    uninterrupted one.

    ``turns_and_mirrors=False`` for classes that a turn or a mirror changes (digits, text).
    ``stream``: read and preprocess the pool batch by batch in every epoch (from disk,
    or from the record's uint8 array) instead of holding it in memory as floats; default
    when its floats would take more than ``STREAM_BYTES``.
    ``augment``, ``mirror``: the cpu recipe's crops and colour changes
    (``training/augment.py``; ``hashing.augment``), after the turns.
    """
    if record.multilabel:
        raise InputError(
            f"pre-training names one class per image; data set {record.name!r} is multi-label"
        )
    indices = np.asarray(indices, np.int64)
    if len(indices) < 2 or len(np.unique(np.asarray(record.labels)[indices])) < 2:
        raise InputError(
            f"pre-training needs at least two images of two classes, got {len(indices)} "
            f"image(s) of data set {record.name!r}"
        )
    if augment not in AUGMENTS:
        raise InputError(f"augment must be one of {AUGMENTS}, got {augment!r}")
    augment_kind = augment
    order = indices[np.random.default_rng([seed, 17]).permutation(len(indices))]
    size = config.model.input_size
    if stream is None:
        stream = len(order) * size * size * 3 * 4 > STREAM_BYTES
    n_val = max(1, len(order) // 6)
    n_train = len(order) - n_val
    n_steps = len(_batch_sizes(n_train, batch_size))  # the batches of one epoch
    rng = np.random.default_rng([seed, 23])
    if stream:
        train_idx = order[n_val:]
        val_ds = make_image_dataset(record, order[:n_val], size, batch_size)
        pixel_std = _streamed_std(record, train_idx, size)
        model = _pretrain_model(record, config, seed, learning_rate, pixel_std)

        def fit_epoch(epoch: int, callbacks: list) -> dict[str, list[float]]:
            # each epoch reads its seeded order batch by batch: no floats held
            perm = np.random.default_rng([seed, 29, epoch]).permutation(len(train_idx))
            batches = make_image_dataset(record, train_idx[perm], size, batch_size)
            if turns_and_mirrors:  # one batch at a time: nothing kept beyond it
                batches = ((turn_and_mirror(x.numpy(), rng), y.numpy()) for x, y in batches)
            batches = _augmented(batches, seed, epoch, augment_kind, mirror)
            return model.fit(
                batches,
                steps_per_epoch=n_steps,  # a generator's end is not "ran out of data"
                initial_epoch=epoch,
                epochs=epoch + 1,
                validation_data=val_ds,
                callbacks=callbacks,
                shuffle=False,  # each epoch's order is seeded above
                verbose=0,
            ).history

    else:
        images = materialize_images(record, order, size)
        labels = np.asarray(record.labels)[order]
        model = _pretrain_model(record, config, seed, learning_rate, float(images[n_val:].std()))
        train_x, train_y = images[n_val:], labels[n_val:]

        def fit_epoch(epoch: int, callbacks: list) -> dict[str, list[float]]:
            x = turn_and_mirror(train_x, rng) if turns_and_mirrors else train_x
            if augment_kind != "none":  # a seeded order, then crops and colour per batch
                perm = np.random.default_rng([seed, 29, epoch]).permutation(len(x))
                batches = (
                    (x[perm[k : k + batch_size]], train_y[perm[k : k + batch_size]])
                    for k in range(0, len(x), batch_size)
                )
                return model.fit(
                    _augmented(batches, seed, epoch, augment_kind, mirror),
                    steps_per_epoch=n_steps,  # as above
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    validation_data=(images[:n_val], labels[:n_val]),
                    callbacks=callbacks,
                    shuffle=False,
                    verbose=0,
                ).history
            return model.fit(
                x,
                train_y,
                batch_size=batch_size,
                initial_epoch=epoch,
                epochs=epoch + 1,
                validation_data=(images[:n_val], labels[:n_val]),
                callbacks=callbacks,
                verbose=0,
            ).history

    ckpt, ckpt_meta = checkpoint_paths(out_h5)
    key = make_key(
        "pretrain_checkpoint",
        model=dataclasses.asdict(config.model) | {"backbone_weights": None},
        seed=seed,
        schedule=[epochs, learning_rate, batch_size],
        turns=turns_and_mirrors,
        stream=bool(stream),
        augment=[augment_kind, mirror],
        **records_parts(record, order),
    )
    history: dict[str, list[float]] = {}
    start = 0
    if resume and (ckpt.exists() or ckpt_meta.exists()):
        stored = read_sidecar(ckpt_meta, ckpt, key)
        if stored is None:
            raise InputError(
                f"{ckpt} is not a checkpoint of this pre-training (differs in: "
                f"{', '.join(_checkpoint_differs(ckpt_meta, key))}): remove it and "
                f"{ckpt_meta}, or start without resuming"
            )
        model = load_model(ckpt, compile=True)  # weights, BN statistics, Adam's state
        start, history = int(stored["epochs_done"]), stored["history"]
        if turns_and_mirrors:  # draw the turns the finished epochs drew: later ones match
            sizes = _batch_sizes(n_train, batch_size) if stream else [n_train]
            for _ in range(start):
                for n in sizes:
                    _turn_draws(rng, n)
        print(f"resuming pre-training from {ckpt} after epoch {start}/{epochs}", flush=True)
    # the model that trains (new or resumed) gets its optimizer and metric state first
    images_spec = keras.KerasTensor((None, size, size, 3), "float32")
    build_training_state(model, (images_spec, keras.KerasTensor((None,), "int64")))
    # the run's own epoch numbers ("Epoch 13/15"), not Keras' "13/13" of a one-epoch fit
    callbacks = [*progress_callbacks(verbose, epochs), *fault_callbacks()]
    for epoch in range(start, epochs):
        for name, values in fit_epoch(epoch, callbacks).items():
            history.setdefault(name, []).extend(values)
        if epoch + 1 < epochs:  # model first, then the sidecar naming it
            atomic_save_model(model, ckpt)
            write_sidecar(ckpt_meta, ckpt, key, epochs_done=epoch + 1, history=history)
    report = {
        "train_accuracy": float(history["accuracy"][-1]),
        "val_accuracy": float(history["val_accuracy"][-1]),
        "classes": len(record.class_names),
        "images": len(order),
    }
    provenance = {
        "dataset": record.name,
        "root": str(Path(record.root).resolve()) if record.root is not None else None,
        "ids": [record.ids[int(i)] for i in order],
        "input_size": size,
        **report,
    }
    save_vgg16_weights_h5(model, out_h5, provenance=provenance)
    ckpt_meta.unlink(missing_ok=True)  # the sidecar first: a lone .keras is never resumed
    ckpt.unlink(missing_ok=True)
    return report


def _checkpoint_differs(sidecar: Path, key: dict) -> list[str]:
    """What the checkpoint's sidecar differs in from ``key`` (``stale_parts``); a
    sidecar that matches but names another file: ``["file"]`` (a half-written pair)."""
    try:
        stored = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["sidecar"]
    stored_key = stored.get("key") if isinstance(stored, dict) else None
    return stale_parts(stored_key, key) or ["file"]


def _batch_sizes(n: int, batch_size: int) -> list[int]:
    """The sizes of the batches ``n`` images make (the last one may be short)."""
    return [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])


def _augmented(batches, seed: int, epoch: int, kind: str, mirror: bool):
    """``(x, y)`` batches with ``augment_batch`` applied to x; "none": ``batches`` itself
    (a tf.data pipeline stays one)."""
    if kind == "none":
        return batches

    def generate():
        for k, (x, y) in enumerate(batches):
            out, _ = augment_batch(np.asarray(x), batch_seed(seed, epoch, k), kind, mirror)
            yield out.numpy(), np.asarray(y)

    return generate()


def _streamed_std(record: DatasetRecord, indices: np.ndarray, input_size: int) -> float:
    """The preprocessed pixels' standard deviation over ``record[indices]``, in one
    streamed pass (float64 sums; nothing held)."""
    total = total_sq = count = 0.0
    for x, _ in make_image_dataset(record, indices, input_size, 256):
        x = x.numpy().astype(np.float64)
        total, total_sq, count = total + x.sum(), total_sq + (x**2).sum(), count + x.size
    return float(np.sqrt(max(total_sq / count - (total / count) ** 2, 1e-12)))


def _pretrain_model(
    record: DatasetRecord,
    config: ExperimentConfig,
    seed: int,
    learning_rate: float,
    pixel_std: float,
) -> keras.Model:
    """VGG16 with its top for the record's classes, seeded, compiled with Adam.

    He init assumes unit-scale inputs; VGG's are mean-subtracted 0..255 pixels, so
    ``block1_conv1`` is divided by their standard deviation ``pixel_std``.
    """
    keras.utils.set_random_seed(seed)
    model = build_vgg16(
        config.model.vgg,
        config.model.input_size,
        config.model.width,
        include_top=True,
        classes=len(record.class_names),
        kernel_initializer="he_normal",
        name="pretrain_vgg16",
        batch_norm=config.model.batch_norm,
        pooling=config.model.pooling,
    )
    first = model.get_layer("block1_conv1")
    first.kernel.assign(first.kernel / pixel_std)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
