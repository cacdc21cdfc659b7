"""``rol-hashing make-data`` (the generated data set) and ``rol-hashing data-summary``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rol_hashing.cli.options import non_negative_int
from rol_hashing.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``make-data`` and ``data-summary``."""
    make = subparsers.add_parser(
        "make-data",
        help="write the generated data set (VOC devkit + class folders)",
        description=(
            "Writes shapes with pixel masks on cluttered backgrounds, as a VOC-style devkit "
            "(segmentation stream) and class folders with a split file (hashing). "
            "Deterministic from --seed."
        ),
    )
    make.add_argument("--out", default="data/generated", help="destination folder")
    make.add_argument("--num-images", type=int, default=2000, help="hashing images")
    make.add_argument("--num-seg-images", type=int, default=400, help="segmentation images")
    make.add_argument("--num-classes", type=int, default=6, help="shape classes (2..8)")
    make.add_argument("--image-size", type=int, default=96, help="image side in pixels")
    make.add_argument("--clutter", type=float, default=0.5, help="0 (plain) .. 1 (busy)")
    make.add_argument(
        "--seed", type=non_negative_int, default=0, help="everything is drawn from it"
    )
    make.add_argument("--force", action="store_true", help="replace a set made otherwise")
    make.add_argument("--examples", help="also write example images + masks to this PNG")
    make.set_defaults(func=run_make_data)

    summary = subparsers.add_parser(
        "data-summary",
        help="load a data set and print its counts and skipped files",
        description="Loads a registered data set and prints its summary.",
    )
    summary.add_argument("--dataset", required=True, help="cifar10, voc2012, awa2, folders, ...")
    summary.add_argument("--root", help="data folder (default: the registry's default_root)")
    summary.add_argument("--strict", action="store_true", help="fail on an unreadable image")
    summary.add_argument(
        "--segmentation",
        choices=("train", "val", "trainval"),
        help="summarise a VOC devkit's segmentation split instead of the hashing set",
    )
    summary.set_defaults(func=run_data_summary)


def run_make_data(args: argparse.Namespace) -> int:
    # lazy: the generator and loaders are imported only by the command that runs
    from rol_hashing.data.generated import make_generated_dataset, write_examples_png
    from rol_hashing.io import check_file_target

    if args.examples:  # checked before the data set is written, not after
        check_file_target(args.examples)
        if Path(args.examples).suffix.lower() != ".png":
            raise InputError(f"--examples {args.examples}: expected a .png file path")
    out = make_generated_dataset(
        args.out,
        num_images=args.num_images,
        num_classes=args.num_classes,
        image_size=args.image_size,
        clutter=args.clutter,
        seed=args.seed,
        num_seg_images=args.num_seg_images,
        force=args.force,
        verbose=True,
    )
    print(f"generated data set in {out}")
    if args.examples:
        print(f"examples: {write_examples_png(out, args.examples)}")
    return 0


def run_data_summary(args: argparse.Namespace) -> int:
    # lazy: as above
    from rol_hashing.data.registry import get_dataset_spec
    from rol_hashing.data.voc import load_voc_segmentation

    spec = get_dataset_spec(args.dataset)
    root = args.root or spec.default_root
    if args.segmentation:
        record = load_voc_segmentation(root, split=args.segmentation, strict=args.strict)
    else:
        record = spec.load(root, strict=args.strict)
    print(record.summary())
    if not args.segmentation:
        sizes = f"train {spec.train_size}, query {spec.query_size}"
        scope = " per class" if spec.per_class else ""
        rule = f"{sizes}{scope}" if record.predefined_split is None else "the data's split file"
        print(f"  split: {rule}; gallery = all non-query; MAP@{spec.top_k}")
        print(f"  paper: {spec.paper}")
    return 0
