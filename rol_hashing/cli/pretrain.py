"""``rol-hashing pretrain``: a VGG16 backbone for ``model.backbone_weights`` where no
ImageNet file can be had (``make pretrain``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rol_hashing.cli.options import non_negative_int, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``pretrain``."""
    p = subparsers.add_parser(
        "pretrain",
        help="pre-train the VGG16 backbone on class folders (an ImageNet stand-in)",
        description=(
            "Trains VGG16 with a classifier top to name each image's class, on a class-folder "
            "pool (--pool) or on the experiment's own training split (never its query "
            "images), and writes its layers in the Keras ImageNet .h5 layout, which "
            "--backbone-weights (model.backbone_weights) takes."
        ),
    )
    p.add_argument(
        "--config",
        required=True,
        help="experiment YAML or shipped name; its model section sets the VGG variant and size",
    )
    p.add_argument("--profile", default="paper", help="profile in the config: paper, cpu, ...")
    p.add_argument("--data-root", help="the experiment's data (for its training split)")
    p.add_argument("--pool", help="a class-folder pool to use instead of the training split")
    p.add_argument("--input-size", type=int, help="override model.input_size")
    p.add_argument("--width", type=float, help="override model.width")
    p.add_argument("--seed", type=non_negative_int, help="override the seed")
    p.add_argument("--epochs", type=positive_int, default=8, help="Adam epochs")
    p.add_argument(
        "--learning-rate", type=positive_float, default=5e-4, help="Adam's learning rate"
    )
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per step")
    p.add_argument(
        "--no-turns",
        action="store_true",
        help="no random 90-degree turns and mirrors (for classes they change: digits, text)",
    )
    p.add_argument(
        "--out",
        help="the .h5 file (default: weights/pretrained_<dataset>_<profile>.h5)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue after the last finished epoch of an interrupted run of the same "
        "pre-training (<out>.partial.keras, written after every epoch)",
    )
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras' fit verbosity")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # lazy: TensorFlow, not needed for --help
    from rol_hashing.data.folders import load_class_folders
    from rol_hashing.data.registry import get_dataset_spec
    from rol_hashing.data.splits import make_or_load_split
    from rol_hashing.freshness import make_key, write_sidecar
    from rol_hashing.io import check_file_target
    from rol_hashing.training.config import absolute_paths, load_config
    from rol_hashing.training.pretrain import pretrain_on_record

    overrides: dict = {"model": {}}
    for key in ("input_size", "width"):
        if getattr(args, key) is not None:
            overrides["model"][key] = getattr(args, key)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.data_root is not None:
        overrides["data_root"] = args.data_root
    config = load_config(args.config, args.profile, overrides)
    out = Path(args.out or f"weights/pretrained_{config.dataset}_{config.profile}.h5")
    check_file_target(out, out.with_suffix(".json"))  # before the training, not after
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if args.pool:
        record = load_class_folders(args.pool)
        indices = list(range(len(record)))
        source = f"pool {args.pool}"
    else:
        spec = get_dataset_spec(config.dataset)
        record = spec.load(config.data_root)
        split_path = (
            Path(config.split_file) if config.split_file else out.with_suffix(".split.json")
        )
        split = make_or_load_split(record, spec, split_path, seed=config.seed)
        indices = split.indices(record).train
        source = f"the training split of {config.dataset} ({split_path})"
    print(f"pre-training on {len(indices)} images of {record.num_classes} classes: {source}")
    report = pretrain_on_record(
        record,
        indices,
        out,
        config,
        config.seed,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        verbose=args.verbose,
        turns_and_mirrors=not args.no_turns,
        augment=config.hashing.augment,
        mirror=config.hashing.augment_mirror,
        resume=args.resume,
    )
    report |= {"source": source, "out": str(out), "input_size": config.model.input_size}
    # the .h5 holds its own record (read_provenance); the .json, written last, holds the
    # .h5's digest, so a .json beside another .h5 (a kill between the two) is detectable
    key = make_key("backbone", source=source, config=absolute_paths(config).to_dict())
    write_sidecar(out.with_suffix(".json"), out, key, report=report)
    print(json.dumps(report))
    print(f"backbone written to {out}; train with --backbone-weights {out}")
    return 0
