"""Training the segmentation stream (``make train-voc-seg``), readings §1.2.

AdaGrad, per-pixel cross-entropy that ignores label 255, 40 epochs of batch 64
on the VOC2012 segmentation images (train + val lists) in the paper profile.
Pixel accuracy and mean IoU are reported on the val list (for real VOC that
list is part of the paper's training data, so those numbers are not held out;
the generated set trains on ``train`` and reports on a disjoint ``val``). How many
val images were also trained on is printed and kept in ``metrics.json``
(``val_images_in_training``); ``train-seg --train-split train`` holds them out.
"""

from __future__ import annotations

from pathlib import Path

import keras

from rol_hashing.clock import Stopwatch
from rol_hashing.data.pipeline import make_segmentation_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.voc import load_voc_segmentation
from rol_hashing.freshness import paths_digest
from rol_hashing.io import atomic_save_model, write_json
from rol_hashing.models import build_segmentation_model
from rol_hashing.models.losses import MaskedSparseCrossEntropy
from rol_hashing.models.metrics import PixelAccuracy, mean_iou_metric
from rol_hashing.training.backbone import load_backbone, resolve_backbone_weights
from rol_hashing.training.checkpoints import resume_or_build
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.inputs import epoch_order
from rol_hashing.training.layout import SEG_METRICS_FILE, Run, segmentation_run_dir
from rol_hashing.training.loop import run_epochs
from rol_hashing.training.run import check_run_folder, open_run, run_key, training_session
from rol_hashing.training.strategy import get_strategy, strategy_scope


def segmentation_run_key(config: ExperimentConfig, train: DatasetRecord | None = None) -> dict:
    """The freshness key of a segmentation run of ``config``: ``run.run_key`` of the
    config, the devkit's training images and masks (ids, labels, pixels; ``train``: that
    split already loaded, else loaded here) and the bytes of the backbone weights."""
    seg, m = config.segmentation, config.model
    if train is None:
        train = load_voc_segmentation(seg.data_root, seg.train_split)
    weights = resolve_backbone_weights(m.backbone_weights, needs_top=False)
    masks = paths_digest(train.mask_paths or ())
    return run_key(config, train, None, {"backbone": weights}, masks=masks)


def train_segmentation(
    config: ExperimentConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    strategy: str | None = None,
    run_dir: str | Path | None = None,
    verbose: int | str = "auto",
    callbacks=(),
) -> Run:
    """Trains the PSP segmentation model; returns the run folder (``model.keras`` inside).

    Raises:
        FileNotFoundError: the devkit or the backbone weights are missing.
        FileExistsError: the run folder has checkpoints and neither resume nor overwrite.
    """
    seg, m = config.segmentation, config.model
    clock = Stopwatch()
    # Checks that need no data come first: nothing is loaded, made or deleted before.
    run_path = Path(run_dir or segmentation_run_dir(config))
    check_run_folder(run_path, resume, overwrite, config)
    weights = resolve_backbone_weights(m.backbone_weights, needs_top=False)
    train = load_voc_segmentation(seg.data_root, seg.train_split)
    val = load_voc_segmentation(seg.data_root, seg.val_split)
    num_classes = len(train.class_names)
    print(f"segmentation: {len(train)} training images ({seg.train_split}), {len(val)} val")
    shared = len(set(train.ids) & set(val.ids))
    if shared:
        print(
            f"warning: {shared} of the {len(val)} val images ({seg.val_split}) are also "
            f"training images ({seg.train_split}), so the val scores are not held out "
            "(train-seg --train-split train holds them out)"
        )
    with training_session(run_path):
        run = open_run(run_path, config, resume, overwrite)

        def build() -> keras.Model:
            keras.utils.set_random_seed(config.seed)  # the same start whatever ran before
            model = build_segmentation_model(
                num_classes, m.vgg, m.input_size, m.width, batch_norm=m.batch_norm
            )
            load_backbone(model, weights)
            model.compile(
                optimizer=keras.optimizers.Adagrad(seg.learning_rate),
                loss=MaskedSparseCrossEntropy(),
                metrics=[PixelAccuracy(), mean_iou_metric(num_classes)],
            )
            return model

        with strategy_scope(get_strategy(strategy) if strategy else None):
            model, start = resume_or_build(run, resume, build)

        def epoch_data(epoch: int):
            order = epoch_order(len(train), config.seed, epoch)
            return make_segmentation_dataset(train, order, m.input_size, seg.batch_size)

        val_data = make_segmentation_dataset(val, None, m.input_size, seg.batch_size)
        run_epochs(
            model,
            run,
            seg.epochs,
            start,
            epoch_data,
            validation_data=val_data,
            callbacks=callbacks,
            verbose=verbose,
            seed=config.seed,
            title=f"{run.path.name}: segmentation",
        )
        results = model.evaluate(val_data, return_dict=True, verbose=0)
        atomic_save_model(model, run.model)
        metrics = {
            "val_pixel_accuracy": float(results["pixel_accuracy"]),
            "val_mean_iou": float(results["mean_iou"]),
            "val_loss": float(results["loss"]),
            "num_classes": num_classes,
            "train_images": len(train),
            "val_images": len(val),
            "val_images_in_training": shared,
            "epochs": seg.epochs,
            "seconds": round(clock(), 1),
            "key": segmentation_run_key(config, train),
        }
        write_json(run.path / SEG_METRICS_FILE, metrics)
        print(
            f"segmentation done: val pixel accuracy {metrics['val_pixel_accuracy']:.4f}, "
            f"mean IoU {metrics['val_mean_iou']:.4f} -> {run.model}"
        )
    return run
