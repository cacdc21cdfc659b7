"""``rol-hashing ablate``: the ROL ablation study on the generated data set (``make ablation``)."""

from __future__ import annotations

import argparse

from rol_hashing.errors import InputError


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
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    p.add_argument("--first-seed", type=int, default=0, help="the first seed")
    p.add_argument("--out", default="results/ablation", help="results folder")
    p.add_argument("--work-dir", default="runs/demo", help="data and runs (shared with demo)")
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes, one epoch, 12 bits (a smoke test)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rol_hashing.experiments.ablation import run_ablation  # lazy: TensorFlow

    if args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {args.seeds}")
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    run_ablation(args.out, args.work_dir, seeds=seeds, quick=args.quick)
    return 0
