"""``make demo``: the paper's whole pipeline on the generated data set, offline, on CPUs.

Per seed, with the ``demo`` profile of ``experiments/generated.yaml``:

1. ``data``: the generated data set (segmentation devkit and hashing class folders)
   and a separate pre-training pool (another seed, so no image is shared).
2. ``pretrain``: a stand-in for ImageNet pre-training (``training/pretrain.py``): a
   VGG16 with the classifier top learns to name the object in a separate pool of
   object-centric images (clutter 0.1 instead of 0.5) of all eight generated shapes:
   like ImageNet, a superset of the target classes, but none of the target images.
   The segmentation stream, SSDH and ROL all start from it (``model.backbone_weights``).
3. ``segmentation``: ``train_segmentation`` (the ``train-voc-seg`` stage) on the
   generated devkit; its val mean IoU is reported.
4. ``hashing``: SSDH and ROL at each code length (12 and 48 bits), each evaluated
   with ``evaluate_run`` (MAP@1000 over the gallery).

Then, over seeds: mean and standard deviation of every MAP, a per-bits verdict
(ROL vs SSDH, paired over seeds), and in ``out_dir``: ``results.md``,
``results.json``, ``map_vs_bits.png``, ``rol_masks.png`` and ``retrieval_top10.png``
(the figures from the first seed's 48-bit runs). Every file is written atomically.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rol_hashing import viz
from rol_hashing.clock import Stopwatch
from rol_hashing.constants import METHODS
from rol_hashing.data.generated import load_generated, make_generated_dataset
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError
from rol_hashing.evaluation import compare
from rol_hashing.experiments import reuse
from rol_hashing.experiments.report import (
    format_seconds,
    map_table,
    mean_std,
    pm,
    seeds_phrase,
    verdict,
)
from rol_hashing.io import atomic_write_text, check_folder_target
from rol_hashing.models import rol_feature_size
from rol_hashing.training.config import ExperimentConfig, load_config
from rol_hashing.training.layout import Run, hashing_run_dir
from rol_hashing.training.pretrain import pretrain_backbone

EXPERIMENT = "generated"
PRETRAIN_CLASSES = 8


@dataclass(frozen=True)
class DemoSizes:
    """The demo's data sizes and pre-training; ``profile`` (of ``generated.yaml``)
    holds the model sizes and the segmentation and hashing schedules."""

    profile: str = "demo"
    num_images: int = 2000
    num_seg_images: int = 400
    num_classes: int = 6
    image_size: int = 96
    clutter: float = 0.5
    pretrain_images: int = 3000
    pretrain_clutter: float = 0.1
    pretrain_epochs: int = 8
    pretrain_learning_rate: float = 5e-4
    pretrain_batch_size: int = 32
    bits: tuple[int, ...] = (12, 48)


# One epoch per stage and tiny sizes: the end-to-end check inside ``make test``.
QUICK = DemoSizes(
    profile="demo_quick",
    num_images=96,
    num_seg_images=16,
    num_classes=4,
    image_size=64,
    pretrain_images=64,
    pretrain_epochs=1,
)


class StageClock:
    """Times named stages and prints ``[<tag>] <stage>: <seconds> s`` after each.

    A stage marked ``reused()`` (its output was already there) keeps the time recorded
    by the call that made it, from ``previous`` (a former ``seconds``), when there is one.
    """

    def __init__(
        self, prefix: str = "", tag: str = "demo", previous: dict[str, float] | None = None
    ) -> None:
        self.prefix = prefix
        self.tag = tag
        self.previous = dict(previous or {})
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str):
        clock = self

        class _Stage:
            was_reused = False

            def reused(self) -> None:
                self.was_reused = True

            def __enter__(self):
                print(f"[{clock.tag}] {clock.prefix}{name} ...", flush=True)
                self.watch = Stopwatch()
                return self

            def __exit__(self, *exc):
                took = self.watch()
                kept = self.was_reused and name in clock.previous
                clock.seconds[name] = clock.previous[name] if kept else round(took, 1)
                if exc[0] is None:
                    note = f" (reused; made in {clock.previous[name]:.1f} s)" if kept else ""
                    print(f"[{clock.tag}] {clock.prefix}{name}: {took:.1f} s{note}", flush=True)

        return _Stage()


# ----------------------------------------------------------------------------- stages


def make_data(work: Path, sizes: DemoSizes, seed: int, force: bool = True) -> tuple[Path, Path]:
    """The generated data set and the pre-training pool of ``seed``: (data, pool).

    ``force=False`` keeps sets already made with the same settings."""
    data = make_generated_dataset(
        work / "data",
        num_images=sizes.num_images,
        num_classes=sizes.num_classes,
        image_size=sizes.image_size,
        clutter=sizes.clutter,
        seed=seed,
        num_seg_images=sizes.num_seg_images,
        force=force,
    )
    pool = make_generated_dataset(
        work / "pretrain_data",
        num_images=max(sizes.pretrain_images, 2 * PRETRAIN_CLASSES),
        num_classes=PRETRAIN_CLASSES,
        image_size=sizes.image_size,
        clutter=sizes.pretrain_clutter,
        seed=10_000 + seed,
        num_seg_images=2,
        force=force,
    )
    return data, pool


def demo_config(
    data: Path, runs: Path, backbone: Path, sizes: DemoSizes, seed: int
) -> ExperimentConfig:
    """The demo's profile of ``experiments/generated.yaml``, pointed at its folders."""
    overrides = {
        "data_root": str(data),
        "runs_dir": str(runs),
        "seed": seed,
        "model": {"backbone_weights": str(backbone)},
        "segmentation": {"data_root": str(data / "VOCdevkit" / "VOC2012")},
        "hashing": {"segmentation_model": str(runs / "generated-seg" / "model.keras")},
    }
    return load_config(EXPERIMENT, sizes.profile, overrides)


def pretrain_demo_backbone(
    pool: Path, backbone: Path, config: ExperimentConfig, sizes: DemoSizes, seed: int, verbose: int
) -> dict[str, float]:
    """``pretrain_backbone`` with the demo's pre-training schedule (``sizes``)."""
    return pretrain_backbone(
        pool,
        backbone,
        config,
        seed,
        epochs=sizes.pretrain_epochs,
        learning_rate=sizes.pretrain_learning_rate,
        batch_size=sizes.pretrain_batch_size,
        verbose=verbose,
    )


def demo_backbone(
    pool: Path, backbone: Path, config: ExperimentConfig, sizes: DemoSizes, seed: int, verbose: int
) -> tuple[dict[str, float], bool]:
    """``(report, made)``: the demo's backbone, reused when made from the same pool
    images, model, augmentation, schedule and seed (``reuse.backbone``), else made by
    ``pretrain_demo_backbone``."""
    schedule = (sizes.pretrain_epochs, sizes.pretrain_learning_rate, sizes.pretrain_batch_size)
    key = reuse.backbone_key(config, seed, schedule, load_generated(pool))
    return reuse.backbone(
        backbone, key, lambda: pretrain_demo_backbone(pool, backbone, config, sizes, seed, verbose)
    )


def last_train_accuracy(log_csv: Path) -> float:
    """The classifier's training accuracy in the last epoch of a run's ``log.csv``."""
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["class_accuracy"]) if rows else float("nan")


def run_seed(work: Path, sizes: DemoSizes, seed: int, verbose: int = 0) -> dict[str, Any]:
    """All stages for one seed; returns its numbers, run folders and stage timings."""
    clock = StageClock(prefix=f"seed {seed}: ")
    with clock("data"):
        data, pool = make_data(work, sizes, seed, force=False)
    runs = work / "runs"
    backbone = work / "backbone" / "vgg16_pretrained.h5"
    config = demo_config(data, runs, backbone, sizes, seed)
    with clock("pretrain") as stage:
        pretrain, made = demo_backbone(pool, backbone, config, sizes, seed, verbose=2)
        if not made:
            stage.reused()
    print(f"[demo] pre-trained backbone{'' if made else ' (reused)'}: {pretrain}")
    with clock("segmentation") as stage:
        seg_dir = runs / config.segmentation.run_name
        seg_metrics, made = reuse.segmentation(config, seg_dir, verbose)
        if not made:
            stage.reused()
    maps: dict[str, dict[int, float]] = {m: {} for m in METHODS}
    run_dirs: dict[str, dict[int, str]] = {m: {} for m in METHODS}
    train_acc: dict[str, dict[int, float]] = {m: {} for m in METHODS}
    record = get_dataset_spec(config.dataset).load(config.data_root)  # checked once
    for bits in sizes.bits:
        for method in METHODS:
            with clock(f"{method}-{bits}b") as stage:
                run = Run(hashing_run_dir(config, method, bits))
                metrics, made = reuse.hashing(config, method, bits, run.path, record, verbose)
                if not made:
                    stage.reused()
            maps[method][bits] = float(metrics["map_at_k"])
            train_acc[method][bits] = last_train_accuracy(run.log)
            run_dirs[method][bits] = str(run.path)
            print(
                f"[demo] seed {seed}: {method} {bits} bits MAP@{metrics['top_k']} "
                f"{metrics['map_at_k']:.4f}",
                flush=True,
            )
    return {
        "seed": seed,
        "map": maps,
        "train_accuracy": train_acc,
        "top_k": int(metrics["top_k"]),
        "num_queries": int(metrics["num_queries"]),
        "num_gallery": int(metrics["num_gallery"]),
        "seg_mean_iou": float(seg_metrics["val_mean_iou"]),
        "seg_pixel_accuracy": float(seg_metrics["val_pixel_accuracy"]),
        "pretrain": pretrain,
        "seconds": clock.seconds,
        "runs": run_dirs,
    }


# ----------------------------------------------------------------------------- summary


def summarize(per_seed: list[dict[str, Any]], sizes: DemoSizes) -> dict[str, Any]:
    """Aggregates the seeds: MAP mean/std per method and bits, mIoU, timings, verdicts."""
    bits = list(sizes.bits)
    table = {
        m: {str(b): mean_std([s["map"][m][b] for s in per_seed]) for b in bits} for m in METHODS
    }
    train_acc = {
        m: {
            str(b): mean_std([s["train_accuracy"][m][b] for s in per_seed if "train_accuracy" in s])
            for b in bits
        }
        for m in METHODS
        if all("train_accuracy" in s for s in per_seed)
    }
    verdicts = {
        str(b): verdict(
            [s["map"]["ssdh"][b] for s in per_seed], [s["map"]["rol"][b] for s in per_seed]
        )
        for b in bits
    }
    stages = sorted(
        {k for s in per_seed for k in s["seconds"]}, key=list(per_seed[0]["seconds"]).index
    )
    return {
        "seeds": [s["seed"] for s in per_seed],
        "bits": bits,
        "chance": 1.0 / sizes.num_classes,
        "top_k": per_seed[0]["top_k"],
        "num_queries": per_seed[0]["num_queries"],
        "num_gallery": per_seed[0]["num_gallery"],
        "map": table,
        "train_accuracy": train_acc,
        "seg_mean_iou": mean_std([s["seg_mean_iou"] for s in per_seed]),
        "pretrain_val_accuracy": mean_std([s["pretrain"]["val_accuracy"] for s in per_seed]),
        "stage_seconds": {
            k: mean_std([s["seconds"].get(k, 0.0) for s in per_seed]) for k in stages
        },
        "verdict": verdicts,
        "sizes": asdict(sizes),
        "per_seed": per_seed,
    }


def results_markdown(summary: dict[str, Any], wall_seconds: float) -> str:
    """``results.md``: the MAP table, chance, mIoU, timings and the verdict per bits."""
    n = len(summary["seeds"])
    bits = summary["bits"]
    k = summary["top_k"]
    spread = seeds_phrase(summary["seeds"])
    lines = [
        "# make demo: ROL against SSDH on the generated data set (demo profile)",
        "",
        f"MAP@{k} ({spread}); {summary['num_queries']} queries against "
        f"{summary['num_gallery']} gallery images. Chance (1/classes) = {summary['chance']:.3f}.",
        "",
        *map_table({m.upper(): summary["map"][m] for m in METHODS}, bits, n),
        "",
        f"Segmentation stream (val mean IoU): {pm(summary['seg_mean_iou'], n)}. "
        f"Pre-trained backbone (held-out accuracy on its {PRETRAIN_CLASSES}-shape pool): "
        f"{pm(summary['pretrain_val_accuracy'], n)}.",
        "",
        "## ROL against SSDH",
        "",
        *(f"- {b} bits: {summary['verdict'][str(b)]}" for b in bits),
        "",
        *(
            [
                "Training accuracy of the classifier in the last epoch (same schedule for both): "
                + "; ".join(
                    f"{m.upper()} {b} bits {pm(summary['train_accuracy'][m][str(b)], n)}"
                    for m in METHODS
                    for b in bits
                )
                + ".",
                "",
            ]
            if summary.get("train_accuracy")
            else []
        ),
        "## Stage times (seconds per seed)",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(
            f"| {name} | {format_seconds(stat, n)} |"
            for name, stat in summary["stage_seconds"].items()
        ),
        "",
        f"Wall time of the whole demo: {wall_seconds:.0f} s.",
        "",
        "Figures: `map_vs_bits.png`, `rol_masks.png` (segmentation and mask R of the ROL "
        "run), `retrieval_top10.png` (top-10 of SSDH and ROL for one seeded random query, "
        "relevant green, irrelevant red), all from the first seed's longest codes.",
        "",
    ]
    return "\n".join(lines)


def rol_masks_figure(rol_run: str | Path, count: int = 4):
    """Segmentation and mask R of a ROL run on ``count`` seeded query images (a Figure)."""
    examples = compare.load_examples(rol_run, count=count, part="query", seed=0)
    _, seg = compare.load_run_models(rol_run)
    config = compare.open_hashing_run(rol_run).config
    grid = rol_feature_size(config.model.input_size, config.model.rol_at)
    views = compare.segmentation_views(seg, examples.inputs, grid, config.model.background_index)
    return viz.plot_rol_masks(
        examples.pixels,
        views.probs,
        views.mask,
        views.mask_grid,
        class_names=compare.segmentation_class_names(rol_run),
    )


def retrieval_figure(ssdh_run: str | Path, rol_run: str | Path, seed: int, top_k: int, bits: int):
    """Top-10 of SSDH and ROL for one query drawn from ``seed`` (a Figure)."""
    comparison = compare.compare_runs(ssdh_run, rol_run, k=10, top_k=top_k)
    query = int(np.random.default_rng(seed).integers(len(comparison.query.ids)))
    query_pixels, rows = compare.retrieval_rows(comparison, query, rol_run)
    title = (
        f"query {comparison.query.ids[query]}, {bits} bits: AP@{top_k} "
        f"SSDH {comparison.ap_a[query]:.2f}, ROL {comparison.ap_b[query]:.2f}"
    )
    return viz.plot_retrieval_comparison(query_pixels, rows, title)


def write_figures(out_dir: Path, seed_result: dict[str, Any], summary: dict[str, Any]) -> None:
    """``map_vs_bits.png``, ``rol_masks.png`` and ``retrieval_top10.png``."""
    series = {
        m.upper(): {int(b): (v["mean"], v["std"]) for b, v in summary["map"][m].items()}
        for m in METHODS
    }
    viz.save(viz.plot_map_vs_bits(series, chance=summary["chance"]), out_dir / "map_vs_bits.png")
    bits = max(summary["bits"])
    rol_run = seed_result["runs"]["rol"][bits]
    ssdh_run = seed_result["runs"]["ssdh"][bits]
    viz.save(rol_masks_figure(rol_run), out_dir / "rol_masks.png")
    fig = retrieval_figure(ssdh_run, rol_run, seed_result["seed"], summary["top_k"], bits)
    viz.save(fig, out_dir / "retrieval_top10.png")


def one_line(summary: dict[str, Any]) -> str:
    """The summary printed last: MAP of both methods per bits and the verdicts."""
    n = len(summary["seeds"])
    parts = [
        f"{b} bits SSDH {pm(summary['map']['ssdh'][str(b)], n)} vs ROL "
        f"{pm(summary['map']['rol'][str(b)], n)} ({summary['verdict'][str(b)].split(':')[0]})"
        for b in summary["bits"]
    ]
    return (
        f"MAP@{summary['top_k']} (chance {summary['chance']:.3f}): "
        + "; ".join(parts)
        + f"; segmentation mIoU {pm(summary['seg_mean_iou'], n)}"
    )


def run_demo(
    out_dir: str | Path = "results/demo",
    work_dir: str | Path = "runs/demo",
    seeds: Sequence[int] = (0,),
    quick: bool = False,
    sizes: DemoSizes | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Runs every stage per seed, then writes the results to ``out_dir``.

    Args:
        out_dir: where ``results.md``, ``results.json`` and the figures go.
        work_dir: data sets and run folders (``<work_dir>/seed<k>/``).
        seeds: one full pipeline per seed (data, pre-training, every run).
        quick: tiny sizes and one epoch per stage (``QUICK``), for the tests.
        sizes: explicit sizes (overrides ``quick``).
        verbose: Keras progress output of the segmentation and hashing fits.

    Returns:
        The summary written to ``results.json``.
    """
    wall = Stopwatch()
    sizes = sizes or (QUICK if quick else DemoSizes())
    if not seeds:
        raise InputError("seeds is empty: give at least one seed")
    out_dir, work_dir = check_folder_target(out_dir), Path(work_dir)  # before any run
    per_seed = [run_seed(work_dir / f"seed{s}", sizes, int(s), verbose) for s in seeds]
    summary = summarize(per_seed, sizes)
    clock = StageClock()
    with clock("figures"):
        write_figures(out_dir, per_seed[0], summary)
    elapsed = wall()
    summary["stage_seconds"]["figures"] = {"mean": clock.seconds["figures"], "std": 0.0}
    summary["wall_seconds"] = round(elapsed, 1)
    atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(summary, elapsed))
    print(
        f"[demo] results in {out_dir}/ (results.md, results.json, map_vs_bits.png, "
        "rol_masks.png, retrieval_top10.png)"
    )
    print(f"[demo] {one_line(summary)}")
    print(f"[demo] wall time {elapsed:.0f} s")
    return summary
