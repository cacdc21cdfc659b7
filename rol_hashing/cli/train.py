"""``rol-hashing train-seg`` and ``rol-hashing train-hash``: options map onto
``train_segmentation`` and ``train_hashing`` and the experiment config."""

from __future__ import annotations

import argparse

from rol_hashing.constants import METHODS
from rol_hashing.training.strategy import STRATEGIES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        help="experiment YAML or shipped name, e.g. experiments/awa2.yaml or awa2",
    )
    p.add_argument("--profile", default="paper", help="profile in the config: paper (default), cpu")
    p.add_argument("--data-root", help="override the config's data_root")
    p.add_argument("--runs-dir", help="override the config's runs_dir")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--batch-size", type=int, help="override the batch size")
    p.add_argument("--input-size", type=int, help="override model.input_size")
    p.add_argument("--width", type=float, help="override model.width")
    p.add_argument("--seed", type=int, help="override the seed")
    p.add_argument(
        "--backbone-weights",
        help="VGG16 .h5 file, 'auto' (the Keras ImageNet file in weights/) or 'none'",
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run's state")
    p.add_argument("--strategy", choices=STRATEGIES[1:], help="tf.distribute strategy")
    p.add_argument("--run-dir", help="run folder (default: <runs_dir>/<run name>)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``train-seg`` and ``train-hash``."""
    seg = subparsers.add_parser(
        "train-seg",
        help="train the segmentation (PSP) stream",
        description="AdaGrad training of the PSP segmentation model (readings §1.2).",
    )
    _common(seg)
    seg.add_argument("--seg-data-root", help="override segmentation.data_root (a VOC devkit)")
    seg.set_defaults(func=run_seg)
    hsh = subparsers.add_parser(
        "train-hash",
        help="train an SSDH or ROL hashing model",
        description="SGD training of the hashing stream (readings §1.4).",
    )
    _common(hsh)
    hsh.add_argument("--method", choices=METHODS, default="rol")
    hsh.add_argument("--bits", type=int, required=True, help="code length (12, 24, 32, 48)")
    hsh.add_argument("--segmentation-model", help="override hashing.segmentation_model")
    hsh.add_argument(
        "--no-mask-cache",
        action="store_true",
        help="run the segmentation stream live instead of caching the masks",
    )
    hsh.set_defaults(func=run_hash)


def _overrides(args: argparse.Namespace, section: str) -> dict:
    out: dict = {"model": {}, section: {}}
    for key in ("data_root", "runs_dir", "seed"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    for key in ("input_size", "width", "backbone_weights"):
        if getattr(args, key) is not None:
            out["model"][key] = getattr(args, key)
    for key in ("epochs", "batch_size"):
        if getattr(args, key) is not None:
            out[section][key] = getattr(args, key)
    return out


def _config(args: argparse.Namespace, section: str, extra: dict):
    from rol_hashing.training.config import load_config  # lazy: --help without TensorFlow

    overrides = _overrides(args, section)
    overrides[section].update(extra)
    return load_config(args.config, args.profile, overrides)


def run_seg(args: argparse.Namespace) -> int:
    from rol_hashing.training.segmentation import train_segmentation  # lazy: as above

    extra = {"data_root": args.seg_data_root} if args.seg_data_root else {}
    config = _config(args, "segmentation", extra)
    train_segmentation(
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        strategy=args.strategy,
        run_dir=args.run_dir,
        verbose=args.verbose,
    )
    return 0


def run_hash(args: argparse.Namespace) -> int:
    from rol_hashing.training.hashing import train_hashing  # lazy: as above

    extra = {"segmentation_model": args.segmentation_model} if args.segmentation_model else {}
    config = _config(args, "hashing", extra)
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
