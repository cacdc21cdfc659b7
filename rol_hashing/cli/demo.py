"""``rol-hashing demo``: the whole pipeline on the generated data set (``make demo``)."""

from __future__ import annotations

import argparse

from rol_hashing.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run the paper's pipeline on the generated data set and compare ROL with SSDH",
        description=(
            "Generates the data set, pre-trains a backbone, trains the segmentation "
            "stream, SSDH and ROL at 12 and 48 bits (cpu profile), evaluates MAP@1000 "
            "and writes results.md, results.json and figures to --out."
        ),
    )
    demo.add_argument("--seeds", type=int, default=1, help="number of seeds (0, 1, ...)")
    demo.add_argument("--first-seed", type=int, default=0, help="the first seed")
    demo.add_argument("--out", default="results/demo", help="results folder")
    demo.add_argument("--work-dir", default="runs/demo", help="data and run folders")
    demo.add_argument(
        "--quick", action="store_true", help="tiny sizes, one epoch per stage (a smoke test)"
    )
    demo.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="0: quiet; 1: a step bar on a terminal, else a line per epoch; 2: a line per epoch",
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rol_hashing.experiments.demo import run_demo  # lazy: TensorFlow

    if args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {args.seeds}")
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    run_demo(args.out, args.work_dir, seeds=seeds, quick=args.quick, verbose=args.verbose)
    return 0
