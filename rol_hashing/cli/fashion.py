"""``rol-hashing fashion``: SSDH, ROL, LSH and ITQ on Fashion-MNIST, clean and in photo
scenes (``make fashion``)."""

from __future__ import annotations

import argparse
import dataclasses

from rol_hashing.cli.demo import add_seed_options, seeds
from rol_hashing.constants import PAPER_BITS
from rol_hashing.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``fashion``."""
    p = subparsers.add_parser(
        "fashion",
        help="real images: SSDH, ROL, LSH and ITQ on Fashion-MNIST, clean and in scenes",
        description=(
            "Per seed: the paper's CIFAR-10 protocol on Fashion-MNIST (200 images per class "
            "set aside for the segmentation stream), the photo-scenes variant, a backbone "
            "pre-trained on the 5,000 training items, the segmentation streams, SSDH and ROL "
            "at each code length, LSH and ITQ on the backbone's features; finished stages "
            "are reused. Writes results.md, results.json and figures to --out."
        ),
    )
    add_seed_options(p, seeds=1, out="results/fashion", quick="one epoch per stage")
    p.set_defaults(work_dir="runs/fashion")
    p.add_argument(
        "--data-root",
        default=None,
        help="the folder holding the four IDX files (default: Debian's "
        "/usr/share/datasets/fashion-mnist; `make fashion-data` installs it)",
    )
    p.add_argument(
        "--bits",
        type=int,
        nargs="+",
        default=None,
        help=f"code lengths (default {' '.join(map(str, PAPER_BITS))}; --quick: 12)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        choices=("fashion_mnist", "fashion_scenes"),
        default=None,
        help="which variants (default both)",
    )
    p.add_argument(
        "--keep",
        default=None,
        metavar="DIR",
        help="a folder that outlives the session (make fashion: docs/fashion/groups): each "
        "seed's backbone and streams and each finished run are kept there, so a later "
        "session with an empty work folder trains only what is missing",
    )
    p.add_argument(
        "--ablation-keep",
        default=None,
        metavar="DIR",
        help="`ablate --keep`'s folder (make fashion: docs/ablation_scenes/groups): its "
        "backbones and streams are copied back too, and its SSDH and paper-ROL runs are "
        "taken when they are the runs asked for (same key)",
    )
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0, help="Keras progress")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # lazy: TensorFlow, not needed for --help
    from rol_hashing.data.fashion import DEFAULT_ROOT
    from rol_hashing.experiments.fashion import QUICK, FashionSizes, run_fashion

    sizes = QUICK if args.quick else FashionSizes()
    if args.bits:
        if any(b < 1 for b in args.bits):
            raise InputError(f"--bits must be positive integers, got {args.bits}")
        sizes = dataclasses.replace(sizes, bits=tuple(args.bits))
    if args.variants:
        sizes = dataclasses.replace(sizes, variants=tuple(dict.fromkeys(args.variants)))
    run_fashion(
        args.out,
        args.work_dir,
        data_root=args.data_root or DEFAULT_ROOT,
        seeds=seeds(args),
        sizes=sizes,
        verbose=args.verbose,
        keep_dir=args.keep,
        ablation_keep_dir=args.ablation_keep,
    )
    return 0
