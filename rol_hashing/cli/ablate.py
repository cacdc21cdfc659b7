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
    p.add_argument(
        "--dataset",
        choices=("generated", "fashion_mnist", "fashion_scenes"),
        default="generated",
        help="the demo's generated set, or a Fashion-MNIST variant of `make fashion` (its "
        "work folder, runs/fashion, is then the default --work-dir, and results go to "
        "results/ablation_<dataset> unless --out is given)",
    )
    p.add_argument("--data-root", help="the Fashion-MNIST IDX folder (default: Debian's)")
    p.add_argument(
        "--grid",
        choices=("full", "sources"),
        default="full",
        help="full: docs/ablation.md's grid; sources: mask sources with the soft and "
        "normalized forms only (docs/ablation_scenes.md)",
    )
    p.add_argument(
        "--keep",
        help="keep each finished (seed, bits) group here (seed<k>_<b>b.json: rows, per-query "
        "APs, the machines), each finished run of an unfinished group and each seed's "
        "backbone and streams, and reuse them while their data, grid, sizes, profile and "
        "inputs are the same: a study longer than a session goes on in the next one",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        metavar="NAME",
        help="run only these variants of the grid (e.g. rol-oracle-soft); ssdh and "
        "rol-predicted-soft always run, since every comparison is paired with them",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rol_hashing.experiments.ablation import run_ablation  # lazy: TensorFlow

    out, work = args.out, args.work_dir
    if args.dataset != "generated":
        work = "runs/fashion" if work == "runs/demo" else work
        out = f"results/ablation_{args.dataset}" if out == "results/ablation" else out
    run_ablation(
        out,
        work,
        seeds=seeds(args),
        quick=args.quick,
        dataset=args.dataset,
        data_root=args.data_root,
        grid_kind=args.grid,
        keep_dir=args.keep,
        variants=args.variants,
    )
    return 0
