"""Training the hashing stream (``make train-hash DATASET=... BITS=...``), readings §1.4.

SGD with momentum 0.9 and Caffe-style weight decay 5e-4, learning rate 1e-3
for 20 epochs then 1e-4, 40 epochs of batch 40 in the paper profile; loss =
classification (softmax NLL, or sigmoid cross-entropy for multi-label VOC) +
E1 + E2. For ``rol`` the frozen segmentation model is the ``train-voc-seg``
result; by default its masks are computed once and cached (see ``masks.py``).
The final ``model.keras`` is the live form (images in, no mask input), except for
masks from another source than the stream (``model.rol_mask``), which stay an input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from rol_hashing.clock import Stopwatch
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.data.splits import Split, load_split, make_or_load_split
from rol_hashing.errors import InputError, check_int
from rol_hashing.io import atomic_copy, atomic_save_model, write_json
from rol_hashing.models import build_hashing_model, copy_weights_by_name, rol_feature_size
from rol_hashing.models.losses import ssdh_losses
from rol_hashing.models.psp import check_segmentation_stream
from rol_hashing.saving import load_model
from rol_hashing.training.backbone import (
    check_backbone_split,
    load_backbone,
    resolve_backbone_weights,
)
from rol_hashing.training.checkpoints import resume_or_build
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.inputs import HashingInputs
from rol_hashing.training.layout import SPLIT_FILE, TRAIN_INFO_FILE, Run, hashing_run_dir
from rol_hashing.training.loop import run_epochs
from rol_hashing.training.masks import run_masks
from rol_hashing.training.optim import hashing_optimizer, scheduled_learning_rate
from rol_hashing.training.run import (
    check_run_folder,
    open_run,
    run_key,
    stale_run,
    training_session,
)
from rol_hashing.training.strategy import get_strategy, strategy_scope

SEG_COMMAND = "make train-voc-seg (rol-hashing train-seg --config experiments/<dataset>.yaml)"


def needs_segmentation(config: ExperimentConfig) -> bool:
    """Whether the run's masks come from the segmentation stream."""
    return config.method == "rol" and config.model.rol_mask in ("predicted", "shuffled")


def check_segmentation_model(path: str | Path) -> Path:
    """``path`` if the file exists; else FileNotFoundError naming the command that makes it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"segmentation model not found: {path}. Method 'rol' needs the trained "
            f"segmentation stream: run `{SEG_COMMAND}` first, or point "
            "hashing.segmentation_model at its model.keras"
        )
    return path


def load_segmentation_model(path: str | Path, input_size: int) -> keras.Model:
    """The frozen stream for ``rol``; a missing file names the command that makes it, a
    model of another kind or input size is refused naming the file."""
    model = load_model(check_segmentation_model(path))
    check_segmentation_stream(model, path, input_size)
    return model


def hashing_run_key(
    config: ExperimentConfig, record: DatasetRecord, split_file: str | Path
) -> dict:
    """The freshness key of a hashing run of ``config`` (``method`` and ``bits`` set)
    trained on ``record`` with the split in ``split_file``: ``run.run_key`` of the config,
    the training images and the bytes of the backbone weights and, when the masks come
    from it, the segmentation stream. Raises FileNotFoundError for a missing input."""
    return _run_key(config, record, load_split(split_file, record), backbone_weights(config))


def stale_hashing_run(
    config: ExperimentConfig, run_dir: str | Path, record: DatasetRecord
) -> list[str]:
    """What differs between the finished run in ``run_dir`` and the run ``config``
    (``method`` and ``bits`` set) asks for on ``record`` ([] when it can be reused):
    ``["split"]`` when its split file (``config.split_file``, else the run's own) is
    missing, else ``run.stale_run`` of its ``train_info.json``."""
    split_file = Path(config.split_file) if config.split_file else Path(run_dir) / SPLIT_FILE
    if not split_file.is_file():
        return ["split"]
    return stale_run(run_dir, hashing_run_key(config, record, split_file), TRAIN_INFO_FILE)


def _run_key(
    config: ExperimentConfig, record: DatasetRecord, split: Split, weights: Path | None
) -> dict:
    seg = Path(config.hashing.segmentation_model) if needs_segmentation(config) else None
    inputs = {"backbone": weights, "segmentation": seg}
    return run_key(config, record, split.indices(record).train, inputs)


def backbone_weights(config: ExperimentConfig) -> Path | None:
    """The weights file a hashing run of ``config`` starts from (None: from scratch); the
    Keras ImageNet file with the top only at the paper's size."""
    m = config.model
    return resolve_backbone_weights(
        m.backbone_weights, needs_top=m.input_size == 224 and m.width == 1.0
    )


def config_model(
    config: ExperimentConfig,
    num_classes: int,
    multilabel: bool,
    segmentation_model: keras.Model | None = None,
    mask_input: bool = False,
) -> keras.Model:
    """The hashing model a run of ``config`` (its ``method`` and ``bits`` set) trains:
    ``build_hashing_model`` with the config's model sizes, ROL form and dropout."""
    m = config.model
    return build_hashing_model(
        config.method,
        config.bits,
        num_classes,
        segmentation_model=segmentation_model,
        multilabel=multilabel,
        vgg=m.vgg,
        input_size=m.input_size,
        width=m.width,
        rol_at=m.rol_at,
        mask_input=mask_input,
        background_index=m.background_index,
        dropout=config.hashing.dropout,
        rol_form=m.rol_form,
        batch_norm=m.batch_norm,
        pooling=m.pooling,
    )


def train_hashing(
    config: ExperimentConfig,
    method: str,
    bits: int,
    *,
    resume: bool = False,
    overwrite: bool = False,
    mask_cache: bool = True,
    strategy: str | None = None,
    run_dir: str | Path | None = None,
    verbose: int | str = "auto",
    callbacks=(),
    record: DatasetRecord | None = None,
) -> Run:
    """Trains an SSDH or ROL hashing model; returns the run folder.

    Args:
        config: the experiment (data set, model size, schedule).
        method: "rol" or "ssdh".
        bits: code length.
        resume: continue from the last checkpoint in the run folder.
        overwrite: discard an existing run's checkpoints and start again.
        mask_cache: for "rol", feed cached masks instead of running the stream live.
        strategy: None, "mirrored" or "multiworker" (``tf.distribute``).
        run_dir: default ``<runs_dir>/<dataset>-<method>-<bits>b``.
        record: ``config.data_root`` already loaded (a study training many runs on one
            data set loads and checks its images once); default: loaded here.
    """
    bits = check_int(bits, "bits", hint="(12, 24, 32, 48)")
    config = dataclasses.replace(config, method=method, bits=bits)
    h, m = config.hashing, config.model
    clock = Stopwatch()
    # Checks that need no data come first: nothing is loaded, made or deleted before.
    if method == "rol" and m.rol_mask != "predicted" and not mask_cache:
        raise InputError(
            f"model.rol_mask={m.rol_mask!r} feeds its masks from outside the model; "
            "train it with the mask cache on (without --no-mask-cache)"
        )
    run_path = Path(run_dir or hashing_run_dir(config, method, bits))
    check_run_folder(run_path, resume, overwrite, config)
    seg_path = Path(h.segmentation_model)
    if needs_segmentation(config):
        check_segmentation_model(seg_path)
    weights = backbone_weights(config)
    spec = get_dataset_spec(config.dataset)
    if record is None:
        record = spec.load(config.data_root)
    print(record.summary())
    with training_session(run_path):
        run = open_run(run_path, config, resume, overwrite)
        split_source = Path(config.split_file) if config.split_file else run.split
        split = make_or_load_split(record, spec, split_source, seed=config.seed)
        if split_source != run.split:
            atomic_copy(split_source, run.split)
        train_idx = split.indices(record).train
        print(f"split: {split.counts()} (train/query/gallery) from {split_source}")
        check_backbone_split(weights, record, split.query)

        use_cache = method == "rol" and mask_cache  # other sources than predicted need it (above)
        dist = get_strategy(strategy) if strategy else None
        with strategy_scope(dist):
            seg = (
                load_segmentation_model(seg_path, m.input_size)
                if needs_segmentation(config)
                else None
            )
        inputs = HashingInputs(
            record,
            train_idx,
            m.input_size,
            h.batch_size,
            bits,
            config.seed,
            augment=h.augment,
            mirror=h.augment_mirror,
        )
        if use_cache:
            images = inputs.images
            if images is None:
                images = inputs.dataset(0, shuffle=False).map(
                    lambda x, y: x["image"] if isinstance(x, dict) else x
                )
            inputs.masks = run_masks(
                m.rol_mask,
                run.masks,
                "train",
                record,
                train_idx,
                m.input_size,
                rol_feature_size(m.input_size, m.rol_at),
                seed=config.seed,
                segmentation_model=seg,
                segmentation_path=seg_path,
                images=images,
                background_index=m.background_index,
            )

        def make_model(mask_input: bool) -> keras.Model:
            return config_model(
                config,
                len(record.class_names),
                record.multilabel,
                segmentation_model=None if mask_input else seg,
                mask_input=mask_input,
            )

        def build() -> keras.Model:
            # Paired initialisation: SSDH and ROL of one seed start from the same draws
            # (loading the segmentation model above consumed some).
            keras.utils.set_random_seed(config.seed)
            model = make_model(use_cache)
            load_backbone(model, weights)
            model.compile(
                optimizer=hashing_optimizer(
                    h.optimizer, h.learning_rate, h.momentum, h.weight_decay
                ),
                loss=ssdh_losses(record.multilabel, h.alpha, h.beta),
                metrics={"class": "binary_accuracy" if record.multilabel else "accuracy"},
            )
            return model

        with strategy_scope(dist):
            model, start = resume_or_build(run, resume, build)
        if use_cache != isinstance(model.input, dict):
            raise InputError(
                f"the checkpoints in {run.checkpoints} were trained with the mask cache "
                f"{'on' if isinstance(model.input, dict) else 'off'}; resume with the same setting"
            )
        run_epochs(
            model,
            run,
            h.epochs,
            start,
            inputs.dataset,
            learning_rate=lambda e: scheduled_learning_rate(
                e, h.learning_rate, h.lr_drop_epoch, h.learning_rate_after_drop, h.warmup_epochs
            ),
            callbacks=callbacks,
            verbose=verbose,
            seed=config.seed,
            title=f"{run.path.name}",
        )
        # The final model is uncompiled (it loads with only rol_hashing.models imported,
        # whatever optimizer trained it) and, with predicted masks, the live form (images
        # in); masks from another source stay an input ("mask") that encoding fills.
        with strategy_scope(dist):
            final = make_model(mask_input=method == "rol" and m.rol_mask != "predicted")
        copy_weights_by_name(model, final)
        atomic_save_model(final, run.model)
        write_json(
            run.train_info,
            {
                "dataset": config.dataset,
                "method": method,
                "bits": bits,
                "profile": config.profile,
                "epochs": h.epochs,
                "train_images": len(train_idx),
                "mask_cache": use_cache,
                "rol_mask": m.rol_mask if method == "rol" else None,
                "rol_form": m.rol_form if method == "rol" else None,
                "seconds": round(clock(), 1),
                "key": _run_key(config, record, split, weights),
            },
        )
        print(f"hashing done: {run.model}")
    return run
