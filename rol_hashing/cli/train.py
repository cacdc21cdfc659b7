"""``rol-hashing train-seg`` and ``rol-hashing train-hash``: options map onto
``train_segmentation`` and ``train_hashing`` and the experiment config."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rol_hashing.cli.options import non_negative_int
from rol_hashing.constants import METHODS
from rol_hashing.training.strategy import STRATEGIES


def _common(p: argparse.ArgumentParser, data_root_help: str) -> None:
    p.add_argument(
        "--config",
        required=True,
        help="experiment YAML or shipped name, e.g. experiments/awa2.yaml or awa2",
    )
    p.add_argument("--profile", default="paper", help="profile in the config: paper, cpu, ...")
    p.add_argument("--data-root", help=data_root_help)
    p.add_argument("--runs-dir", help="override the config's runs_dir")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--batch-size", type=int, help="override the batch size")
    p.add_argument("--input-size", type=int, help="override model.input_size")
    p.add_argument("--width", type=float, help="override model.width")
    p.add_argument("--seed", type=non_negative_int, help="override the seed")
    p.add_argument(
        "--backbone-weights",
        help="VGG16 .h5 file, 'auto' (the Keras ImageNet file in weights/) or 'none'",
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run's state")
    p.add_argument("--strategy", choices=STRATEGIES[1:], help="tf.distribute strategy")
    p.add_argument("--run-dir", help="run folder (default: <runs_dir>/<run name>)")
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0: quiet; 1: a step bar on a terminal, else a line per epoch; 2: a line per epoch",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``train-seg`` and ``train-hash``."""
    seg = subparsers.add_parser(
        "train-seg",
        help="train the segmentation (PSP) stream",
        description="AdaGrad training of the PSP segmentation model (readings §1.2).",
    )
    _common(seg, data_root_help="the VOC-layout devkit to train on (segmentation.data_root)")
    seg.add_argument("--seg-data-root", help="an alias of --data-root for train-seg")
    seg.add_argument(
        "--train-split",
        choices=("train", "trainval"),
        help="the devkit's list to train on (segmentation.train_split); 'train' keeps the "
        "val list held out, 'trainval' (the paper's) trains on it too",
    )
    seg.set_defaults(func=run_seg)
    hsh = subparsers.add_parser(
        "train-hash",
        help="train an SSDH or ROL hashing model",
        description="SGD training of the hashing stream (readings §1.4).",
    )
    _common(hsh, data_root_help="the hashing data set's folder (data_root)")
    hsh.add_argument("--method", choices=METHODS, default="rol", help="hashing method")
    hsh.add_argument("--bits", type=int, required=True, help="code length (12, 24, 32, 48)")
    hsh.add_argument(
        "--segmentation-model", help="the segmentation stream's model.keras (for --method rol)"
    )
    hsh.add_argument(
        "--seg-data-root",
        help="the devkit that stream was trained on (recorded; names its classes later)",
    )
    hsh.add_argument(
        "--no-mask-cache",
        action="store_true",
        help="run the segmentation stream live instead of caching the masks",
    )
    hsh.set_defaults(func=run_hash)


def _overrides(args: argparse.Namespace, section: str) -> dict:
    out: dict = {"model": {}, section: {}}
    for key in ("runs_dir", "seed"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    for key in ("input_size", "width", "backbone_weights"):
        if getattr(args, key) is not None:
            out["model"][key] = getattr(args, key)
    for key in ("epochs", "batch_size"):
        if getattr(args, key) is not None:
            out[section][key] = getattr(args, key)
    return out


def _config(args: argparse.Namespace, section: str, extra: dict, data_root: str | None = None):
    from rol_hashing.training.config import load_config  # lazy: --help without TensorFlow

    overrides = _overrides(args, section)
    overrides[section].update(extra)
    if data_root is not None:
        overrides["data_root"] = data_root
    return load_config(args.config, args.profile, overrides)


def run_seg(args: argparse.Namespace) -> int:
    from rol_hashing.data.voc import devkit_name  # lazy: as above
    from rol_hashing.training.segmentation import train_segmentation  # lazy: as above

    devkit = args.data_root or args.seg_data_root
    extra = {"data_root": devkit, "run_name": f"{devkit_name(devkit)}-seg"} if devkit else {}
    if args.train_split:
        extra["train_split"] = args.train_split
    config = _config(args, "segmentation", extra)
    print(
        f"segmentation run: {args.run_dir or Path(config.runs_dir) / config.segmentation.run_name}"
    )
    run = train_segmentation(
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        strategy=args.strategy,
        run_dir=args.run_dir,
        verbose=args.verbose,
    )
    print(f"next, for train-hash --method rol: --segmentation-model {_shown(run.model)}")
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it, else absolute."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_hash(args: argparse.Namespace) -> int:
    from rol_hashing.training.hashing import train_hashing  # lazy: as above

    extra = {"segmentation_model": args.segmentation_model} if args.segmentation_model else {}
    config = _config(args, "hashing", extra, data_root=args.data_root)
    if args.seg_data_root:
        config.segmentation.data_root = args.seg_data_root
    train_hashing(
        config,
        args.method,
        args.bits,
        resume=args.resume,
        overwrite=args.overwrite,
        mask_cache=not args.no_mask_cache,
        strategy=args.strategy,
        run_dir=args.run_dir,
        verbose=args.verbose,
    )
    return 0
