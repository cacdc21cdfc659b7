"""``rol-hashing evaluate``, ``index``, ``search`` and ``table2``: thin wrappers over
``rol_hashing.evaluation.evaluate``, ``rol_hashing.retrieval.search`` and
``rol_hashing.experiments.table2``. Each imports its module inside the command
(``# lazy:``): they load TensorFlow, and ``--help`` should not."""

from __future__ import annotations

import argparse
from pathlib import Path

from rol_hashing.cli.options import positive_int
from rol_hashing.constants import METHODS, PAPER_BITS
from rol_hashing.errors import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``evaluate``, ``index``, ``search`` and ``table2``."""
    ev = subparsers.add_parser(
        "evaluate",
        help="MAP@1000 and friends of a trained hashing run",
        description="Encodes the run's query and gallery (codes cached in the run folder) "
        "and writes metrics.json and metrics.md there (readings §2).",
    )
    ev.add_argument("run", help="hashing run folder, e.g. runs/awa2-rol-48b")
    ev.add_argument(
        "--top-k", type=int, help="k of MAP@k (default: the data set's 1000, capped at the gallery)"
    )
    ev.add_argument("--batch-size", type=positive_int, default=64, help="images per encoding batch")
    ev.add_argument(
        "--verbose", type=int, choices=(0, 1), default=1, help="0: quiet; 1: progress and summary"
    )
    ev.set_defaults(func=run_evaluate)

    ix = subparsers.add_parser(
        "index",
        help="build and save the gallery index of a run",
        description="Writes <run>/index.npz (HammingIndex) and <run>/index_items.npz.",
    )
    ix.add_argument("run", help="hashing run folder")
    ix.add_argument("--batch-size", type=positive_int, default=64, help="images per encoding batch")
    ix.add_argument(
        "--verbose", type=int, choices=(0, 1), default=1, help="0: quiet; 1: progress and summary"
    )
    ix.set_defaults(func=run_index)

    se = subparsers.add_parser(
        "search",
        help="rank a run's gallery against one image",
        description="Prints the nearest gallery images (rank, id, distance, relevant, path) "
        "and writes a PNG strip of the query and its results.",
    )
    se.add_argument("run", help="hashing run folder")
    se.add_argument("--image", required=True, help="query image file")
    se.add_argument(
        "--top-k",
        "--top",
        dest="top_k",
        type=int,
        default=10,
        help="results to show (--top: alias)",
    )
    se.add_argument("--label", help="the query's class name, to mark results relevant or not")
    se.add_argument("--out", help="PNG strip (default: <run>/search_<image stem>.png)")
    se.set_defaults(func=run_search)

    t2 = subparsers.add_parser(
        "table2",
        help="reproduce the paper's Table 2 for one data set",
        description="Trains missing runs, evaluates {ssdh, rol} x bits and writes "
        "results/table2_<dataset>[_<profile>].{md,csv,png} beside the paper's numbers.",
    )
    t2.add_argument(
        "--config",
        required=True,
        help="experiment YAML or shipped name, e.g. experiments/awa2.yaml or awa2",
    )
    t2.add_argument("--profile", default="paper", help="profile in the config: paper, cpu")
    t2.add_argument("--bits", type=int, nargs="+", default=list(PAPER_BITS), help="code lengths")
    t2.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods")
    t2.add_argument("--data-root", help="override the config's data_root")
    t2.add_argument("--results-dir", default="results", help="where the table goes")
    t2.add_argument("--no-train", action="store_true", help="only evaluate existing runs")
    t2.add_argument(
        "--verbose", type=int, choices=(0, 1), default=1, help="0: quiet; 1: progress and summary"
    )
    t2.set_defaults(func=run_table2_command)


def run_evaluate(args: argparse.Namespace) -> int:
    from rol_hashing.evaluation.evaluate import METRICS_JSON, evaluate_run  # lazy: TensorFlow

    m = evaluate_run(args.run, top_k=args.top_k, batch_size=args.batch_size, verbose=args.verbose)
    print(f"MAP@{m['top_k']} {m['map_at_k']:.4f} (chance {m['chance']:.4f})")
    print(printable(f"wrote {Path(args.run) / METRICS_JSON} and metrics.md"))
    return 0


def run_index(args: argparse.Namespace) -> int:
    from rol_hashing.retrieval.gallery_index import build_index  # lazy: TensorFlow

    build_index(args.run, batch_size=args.batch_size, verbose=args.verbose)
    return 0


def run_search(args: argparse.Namespace) -> int:
    from rol_hashing.retrieval.results import format_results  # lazy: TensorFlow
    from rol_hashing.retrieval.search import search_image  # lazy: TensorFlow

    out = Path(args.out) if args.out else Path(args.run) / f"search_{Path(args.image).stem}.png"
    results = search_image(args.run, args.image, top=args.top_k, label=args.label, out_png=out)
    print(format_results(results))
    print(printable(f"wrote {out}"))
    return 0


def run_table2_command(args: argparse.Namespace) -> int:
    from rol_hashing.experiments.table2 import run_table2  # lazy: TensorFlow

    result = run_table2(
        args.config,
        args.profile,
        bits=args.bits,
        methods=args.methods,
        data_root=args.data_root,
        results_dir=args.results_dir,
        train=not args.no_train,
        verbose=args.verbose,
    )
    print(result.md.read_text(encoding="utf-8"))
    print(printable(f"wrote {result.md}, {result.csv} and {result.png}"))
    return 0
