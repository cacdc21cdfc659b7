"""``rol-hashing demo``: the whole pipeline on the generated data set (``make demo``)."""

from __future__ import annotations

import argparse

from rol_hashing.cli.options import non_negative_int
from rol_hashing.errors import InputError


def add_seed_options(p: argparse.ArgumentParser, seeds: int, out: str, quick: str) -> None:
    """--seeds, --first-seed, --out, --work-dir (the demo's, shared) and --quick."""
    p.add_argument("--seeds", type=int, default=seeds, help="number of seeds (0, 1, ...)")
    p.add_argument("--first-seed", type=non_negative_int, default=0, help="the first seed")
    p.add_argument("--out", default=out, help="results folder")
    p.add_argument("--work-dir", default="runs/demo", help="data and run folders")
    p.add_argument("--quick", action="store_true", help=f"tiny sizes, {quick} (a smoke test)")


def seeds(args: argparse.Namespace) -> tuple[int, ...]:
    """The seeds ``--first-seed`` .. ``--first-seed + --seeds - 1``."""
    if args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {args.seeds}")
    return tuple(range(args.first_seed, args.first_seed + args.seeds))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run the paper's pipeline on the generated data set and compare ROL with SSDH",
        description=(
            "Generates the data set, pre-trains a backbone, trains the segmentation "
            "stream, SSDH and ROL at 12 and 48 bits (demo profile), evaluates MAP@1000 "
            "and writes results.md, results.json and figures to --out."
        ),
    )
    add_seed_options(demo, seeds=1, out="results/demo", quick="one epoch per stage")
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

    run_demo(args.out, args.work_dir, seeds=seeds(args), quick=args.quick, verbose=args.verbose)
    return 0
