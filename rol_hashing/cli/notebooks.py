"""``rol-hashing notebooks``: executes the notebooks against trained runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from rol_hashing.errors import InputError

NOTEBOOKS = ("rol_masks.ipynb", "top10_retrievals.ipynb")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``notebooks``."""
    p = subparsers.add_parser(
        "notebooks",
        help="execute the notebooks (ROL masks, top-10 retrievals) against trained runs",
        description="Runs notebooks/*.ipynb with the given runs; executed copies go to --out.",
    )
    p.add_argument(
        "--ssdh-run",
        default="runs/demo/seed0/runs/generated-ssdh-48b",
        help="an SSDH run folder",
    )
    p.add_argument(
        "--rol-run",
        default="runs/demo/seed0/runs/generated-rol-48b",
        help="a ROL run folder of the same data set",
    )
    p.add_argument("--notebooks-dir", default="notebooks", help="where the .ipynb files are")
    p.add_argument(
        "--out",
        default="results/notebooks",
        help="folder for executed copies; their figures go to <out>/figures/ as PNG",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rol_hashing.notebooks import (  # lazy: nbclient, Jupyter
        NotebookError,
        execute,
        read_notebook,
        save_figures,
    )
    from rol_hashing.training.layout import open_hashing_run  # lazy: Keras

    for name in NOTEBOOKS:  # every notebook readable before the first one runs
        read_notebook(Path(args.notebooks_dir) / name)

    for option, method, run_dir in (
        ("--ssdh-run", "ssdh", args.ssdh_run),
        ("--rol-run", "rol", args.rol_run),
    ):
        if not (Path(run_dir) / "model.keras").is_file():
            raise FileNotFoundError(
                f"{run_dir}/model.keras not found: run `make demo` first, or pass --ssdh-run "
                "and --rol-run with trained runs of one data set"
            )
        found = open_hashing_run(run_dir).method
        if found != method:
            raise InputError(
                f"{option} {run_dir} is a {found!r} run; the notebooks label it {method.upper()}, "
                f"so give a run trained with --method {method}"
            )
    params = {
        "rol_masks.ipynb": {"ROL_RUN": args.rol_run},
        "top10_retrievals.ipynb": {"SSDH_RUN": args.ssdh_run, "ROL_RUN": args.rol_run},
    }
    for name in NOTEBOOKS:
        out = Path(args.out) / name
        try:
            nb = execute(
                Path(args.notebooks_dir) / name, params[name], out_path=out, cwd=Path.cwd()
            )
        except NotebookError as err:  # the kernel's traceback is in err.__cause__
            raise InputError(str(err)) from err
        figures = save_figures(nb, Path(args.out) / "figures", Path(name).stem)
        print(f"{name}: {len(figures)} figures -> {out} and {Path(args.out) / 'figures'}/")
    return 0
