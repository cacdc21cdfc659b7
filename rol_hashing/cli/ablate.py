"""``rol-hashing ablate``: the ROL ablation study on the generated data set (``make ablation``)."""

from __future__ import annotations

import argparse

from rol_hashing.cli.demo import add_seed_options, seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``ablate``."""
    p = subparsers.add_parser(
        "ablate",
        help="when does the ROL help? mask sources, forms, schedule and grid against SSDH",
        description=(
            "Trains and evaluates the pre-registered grid (docs/ablation.md) per seed on "
            "the demo's data, backbone and segmentation stream, reusing finished runs, "
            "and writes results.md, results.json and two figures to --out."
        ),
    )
    add_seed_options(p, seeds=3, out="results/ablation", quick="one epoch, 12 bits")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rol_hashing.experiments.ablation import run_ablation  # lazy: TensorFlow

    run_ablation(args.out, args.work_dir, seeds=seeds(args), quick=args.quick)
    return 0
