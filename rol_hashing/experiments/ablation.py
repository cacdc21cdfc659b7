"""``make ablation``: when does the ROL help? A pre-registered grid with mask controls.

On the demo's data, backbone and segmentation stream (per seed, in the demo's work
folder, so finished demo runs are reused), it trains and evaluates:

1. sources x forms, at 12 and 48 bits, the demo's schedule: ``ssdh``; ``rol`` with
   masks ``predicted`` / ``oracle`` / ``ones`` / ``shuffled`` (soft); ``rol`` with
   ``predicted`` / ``oracle`` masks in the ``binary`` and ``normalized`` forms;
2. schedule: ``ssdh`` and ``rol`` (predicted, soft) at 3x the demo's epochs (the
   learning-rate drop moves with them), at 12 bits;
3. grid resolution: ``ssdh``, ``rol`` predicted and oracle (soft) at twice the demo's
   input (128: an 8x8 ROL grid instead of 4x4), 12 bits, with a segmentation stream
   trained at that size; these runs and that stream train half the demo's epochs.

Groups 2 and 3 are cut (12 bits only; half the epochs at 2x input) so that three seeds
finish within 90 minutes on two CPU cores; see docs/ablation.md.

Every run folder that holds ``model.keras`` and ``metrics.json`` is reused, so an
interrupted study resumes. Results (``out_dir``): ``results.md`` (mean ± std over seeds,
the paired difference to the SSDH run of the same group, seed and bits, its sign
count, and the verdict of the decision rule), ``results.json``, ``ablation_map.png``
(MAP per variant) and ``ap_vs_mask_quality.png`` (per-query AP of ROL minus SSDH
against the IoU of that query's ``R > 0.5`` with its ground-truth object).

The decision rule (docs/ablation.md, written before the study ran): a factor explains
the gap when changing it closes at least half of the mean SSDH - ROL gap of the
paper's configuration (predicted, soft, demo schedule) in that group and the change
has the same sign in at least 5 of 6 (seed, bits) pairs (all 3 seeds where the group
has one code length).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from rol_hashing import viz
from rol_hashing.clock import Stopwatch
from rol_hashing.data.fashion import DEFAULT_ROOT as FASHION_ROOT
from rol_hashing.data.pipeline import make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError
from rol_hashing.evaluation.evaluate import METRICS_JSON
from rol_hashing.evaluation.map import average_precisions
from rol_hashing.experiments import reuse
from rol_hashing.experiments.demo import (
    QUICK,
    DemoSizes,
    demo_backbone,
    demo_config,
    make_data,
)
from rol_hashing.experiments.fashion import QUICK as FASHION_QUICK
from rol_hashing.experiments.fashion import VARIANTS as FASHION_VARIANTS
from rol_hashing.experiments.fashion import FashionSizes, prepare_fashion_seed
from rol_hashing.experiments.report import mean_std, pm
from rol_hashing.io import atomic_write_text, check_folder_target, save_figure
from rol_hashing.models import reliability_mask
from rol_hashing.retrieval.encode import encode_split
from rol_hashing.saving import load_model
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.layout import MODEL_FILE, hashing_run_name, open_hashing_run
from rol_hashing.training.masks import ORACLE_BORDER, oracle_masks

GROUPS = ("sources and forms", "schedule", "grid")
# "full": docs/ablation.md's grid; "sources": its group 1 without the binary form
# (docs/ablation_scenes.md).
GRIDS = ("full", "sources")
SCHEDULE_FACTOR = 3
GRID_FACTOR = 2
# Epochs at 2x input, as a fraction of the demo's (4x the pixels per step).
GRID_EPOCHS = 0.5
MASK_IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class Variant:
    """One row of the grid: a method with its mask source and form, schedule and size."""

    name: str
    group: str
    method: str
    bits: tuple[int, ...]
    rol_mask: str = "predicted"
    rol_form: str = "soft"
    epochs_factor: float = 1.0
    input_factor: int = 1

    @property
    def paper(self) -> bool:
        """The paper's ROL (predicted, soft) in its group."""
        return self.method == "rol" and (self.rol_mask, self.rol_form) == ("predicted", "soft")


def ablation_grid(
    bits: Sequence[int] = (12, 48),
    schedule_bits: Sequence[int] = (12,),
    grid_bits: int = 12,
    kind: str = "full",
) -> list[Variant]:
    """The pre-registered grid (see the module docstring). ``kind="sources"``: group 1
    only, without the binary form (the scenes grid of docs/ablation_scenes.md)."""
    if kind not in GRIDS:
        raise InputError(f"grid must be one of {GRIDS}, got {kind!r}")
    bits, schedule_bits = tuple(bits), tuple(schedule_bits)
    g1, g2, g3 = GROUPS
    forms = ("binary", "normalized") if kind == "full" else ("normalized",)
    rows = [Variant("ssdh", g1, "ssdh", bits)]
    rows += [Variant(f"rol-{s}-soft", g1, "rol", bits, s) for s in MASK_SOURCE_ORDER]
    rows += [
        Variant(f"rol-{s}-{f}", g1, "rol", bits, s, f)
        for s in ("predicted", "oracle")
        for f in forms
    ]
    if kind == "sources":
        return rows
    rows += [
        Variant("ssdh-3x", g2, "ssdh", schedule_bits, epochs_factor=SCHEDULE_FACTOR),
        Variant("rol-predicted-soft-3x", g2, "rol", schedule_bits, epochs_factor=SCHEDULE_FACTOR),
    ]
    half = {"epochs_factor": GRID_EPOCHS, "input_factor": GRID_FACTOR}
    rows += [
        Variant("ssdh-2x-input", g3, "ssdh", (grid_bits,), **half),
        Variant("rol-predicted-soft-2x-input", g3, "rol", (grid_bits,), **half),
        Variant("rol-oracle-soft-2x-input", g3, "rol", (grid_bits,), "oracle", **half),
    ]
    return rows


MASK_SOURCE_ORDER = ("predicted", "oracle", "ones", "shuffled")


def scaled_epochs(epochs: int, factor: float) -> int:
    """``epochs * factor`` rounded, at least 1."""
    return max(1, int(round(epochs * factor)))


def variant_config(base: ExperimentConfig, variant: Variant, seg_model: Path) -> ExperimentConfig:
    """``base`` with the variant's mask source and form, epochs and input size."""
    h, m = base.hashing, base.model
    model = dataclasses.replace(
        m,
        rol_mask=variant.rol_mask,
        rol_form=variant.rol_form,
        input_size=m.input_size * variant.input_factor,
    )
    hashing = dataclasses.replace(
        h,
        epochs=scaled_epochs(h.epochs, variant.epochs_factor),
        lr_drop_epoch=scaled_epochs(h.lr_drop_epoch, variant.epochs_factor),
        segmentation_model=str(seg_model),
    )
    return dataclasses.replace(base, model=model, hashing=hashing)


def run_folder(runs: Path, variant: Variant, bits: int, dataset: str = "generated") -> Path:
    """The pipeline's own folders for ``ssdh`` and the paper's ROL (shared with ``make
    demo`` or ``make fashion``), ``<runs>/ablation/<variant>-<bits>b`` for the others."""
    if variant.name == "ssdh":
        return runs / hashing_run_name(dataset, "ssdh", bits)
    if variant.name == "rol-predicted-soft":
        return runs / hashing_run_name(dataset, "rol", bits)
    return runs / "ablation" / f"{variant.name}-{bits}b"


def _segmentation(config: ExperimentConfig, run_dir: Path) -> Path:
    """The segmentation stream of ``config`` in ``run_dir``, trained unless fresh."""
    reuse.segmentation(config, run_dir)
    return run_dir / MODEL_FILE


def prepare_seed(
    work: Path,
    sizes: DemoSizes,
    seed: int,
    dataset: str = "generated",
    data_root: str | None = None,
    quick: bool = False,
) -> ExperimentConfig:
    """The data, backbone and segmentation stream for ``seed`` (reused when there): the
    demo's for ``generated``, ``make fashion``'s for the Fashion-MNIST variants."""
    if dataset in FASHION_VARIANTS:
        fashion_sizes = FASHION_QUICK if quick else FashionSizes()
        fashion_sizes = dataclasses.replace(fashion_sizes, variants=(dataset,))
        return prepare_fashion_seed(work, fashion_sizes, seed, data_root or FASHION_ROOT)
    if dataset != "generated":
        known = ", ".join(("generated", *FASHION_VARIANTS))
        raise InputError(f"the ablation runs on {known}; got data set {dataset!r}")
    data, pool = make_data(work, sizes, seed, force=False)
    runs = work / "runs"
    backbone = work / "backbone" / "vgg16_pretrained.h5"
    config = demo_config(data, runs, backbone, sizes, seed)
    demo_backbone(pool, backbone, config, sizes, seed, verbose=0)
    _segmentation(config, runs / config.segmentation.run_name)
    return config


def run_variant(
    config: ExperimentConfig,
    variant: Variant,
    bits: int,
    seg_models: dict[int, Path],
    record: DatasetRecord | None = None,
) -> dict[str, Any]:
    """Trains (unless finished) and evaluates one run; returns its numbers. ``record``:
    ``config.data_root`` loaded once for all the seed's runs (default: loaded per run)."""
    runs = Path(config.runs_dir)
    run_dir = run_folder(runs, variant, bits, config.dataset)
    size = config.model.input_size * variant.input_factor
    if size not in seg_models:
        seg = config.segmentation
        seg_config = dataclasses.replace(
            config,
            model=dataclasses.replace(config.model, input_size=size),
            segmentation=dataclasses.replace(
                seg, epochs=scaled_epochs(seg.epochs, variant.epochs_factor)
            ),
        )
        seg_models[size] = _segmentation(seg_config, runs / f"{config.dataset}-seg-{size}")
    vconfig = variant_config(config, variant, seg_models[size])
    clock = Stopwatch()
    metrics, made = reuse.hashing(vconfig, variant.method, bits, run_dir, record)
    reused = not made
    return {
        "variant": variant.name,
        "bits": bits,
        "map": float(metrics["map_at_k"]),
        "run": str(run_dir),
        "seconds": round(clock(), 1),
        "reused": reused,
    }


def mask_quality(
    rol_run: str | Path, batch_size: int = 64, record: DatasetRecord | None = None
) -> np.ndarray:
    """Per query of a ``rol`` run: IoU of its predicted ``R > 0.5`` (full resolution)
    with its ground-truth object, the object's border band left out. (Q,) float64."""
    run = open_hashing_run(rol_run)
    _, record, split = run.load_data(record)
    query = split.indices(record).query
    size = run.config.model.input_size
    truth = oracle_masks(record, query, size, size, batch_size)[..., 0]
    seg = load_model(run.config.hashing.segmentation_model)
    images = make_image_dataset(record, query, size, batch_size).map(lambda x, _: x)
    probs = seg.predict(images, verbose=0)
    r = keras.ops.convert_to_numpy(
        reliability_mask(probs, None, run.config.model.background_index)
    )[..., 0]
    valid = truth != ORACLE_BORDER
    pred, obj = (r > MASK_IOU_THRESHOLD) & valid, (truth == 1.0) & valid
    inter = (pred & obj).sum(axis=(1, 2))
    union = (pred | obj).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)


def query_ap(run_dir: str | Path, record: DatasetRecord | None = None) -> np.ndarray:
    """AP@k of each query of an evaluated run (k as in its ``metrics.json``), (Q,)."""
    top_k = json.loads((Path(run_dir) / METRICS_JSON).read_text(encoding="utf-8"))["top_k"]
    query, gallery = encode_split(run_dir, verbose=0, record=record)
    return average_precisions(query.codes, query.labels, gallery.codes, gallery.labels, top_k)


# ----------------------------------------------------------------------------- summary


def group_baseline(variant: Variant, grid: Sequence[Variant]) -> Variant:
    """The SSDH run a variant is compared with: the SSDH of its group."""
    return next(v for v in grid if v.group == variant.group and v.method == "ssdh")


def summarize(rows: list[dict[str, Any]], grid: Sequence[Variant]) -> dict[str, Any]:
    """MAP mean ± std per (variant, bits), paired differences to the group's SSDH and to
    the group's paper ROL, and the verdict of each factor under the decision rule."""
    by = {(r["variant"], r["bits"], r["seed"]): r["map"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    table = []
    for v in grid:
        base = group_baseline(v, grid)
        for b in v.bits:
            maps = [by[(v.name, b, s)] for s in seeds if (v.name, b, s) in by]
            diffs = [
                by[(v.name, b, s)] - by[(base.name, b, s)]
                for s in seeds
                if (v.name, b, s) in by and (base.name, b, s) in by
            ]
            table.append(
                {
                    "variant": v.name,
                    "group": v.group,
                    "bits": b,
                    "map": mean_std(maps) if maps else None,
                    "per_seed": maps,
                    "vs_ssdh": mean_std(diffs) if diffs and v.method != "ssdh" else None,
                    "vs_ssdh_higher": int(np.sum(np.asarray(diffs) > 0)) if diffs else 0,
                    "pairs": len(diffs),
                }
            )
    return {
        "seeds": seeds,
        "table": table,
        "factors": factor_verdicts(by, seeds, grid),
        "questions": answer_questions(by, seeds, grid),
    }


# The two questions of docs/ablation_scenes.md: a comparison holds when its paired
# change is positive on average and in at least 5 of 6 pairs (all pairs when fewer).
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("Does the ROL help? (ROL predicted soft - SSDH)", "rol-predicted-soft", "ssdh"),
    (
        "Do oracle masks help more than predicted ones? (oracle - predicted, soft)",
        "rol-oracle-soft",
        "rol-predicted-soft",
    ),
)


def answer_questions(
    by: dict[tuple[str, int, int], float], seeds: Sequence[int], grid: Sequence[Variant]
) -> list[dict[str, Any]]:
    """Each question's paired changes over (seed, bits) and whether it holds."""
    names = {v.name: v for v in grid}
    out = []
    for question, variant, reference in QUESTIONS:
        if variant not in names or reference not in names:
            continue
        c = np.asarray(
            [
                by[(variant, b, s)] - by[(reference, b, s)]
                for s in seeds
                for b in names[variant].bits
                if (variant, b, s) in by and (reference, b, s) in by
            ]
        )
        if not len(c):
            continue
        counts = paired_counts(c)
        out.append(
            {
                "question": question,
                "variant": variant,
                "reference": reference,
                **counts,
                "holds": bool(c.mean() > 0 and counts["positive"] >= counts["needed"]),
            }
        )
    return out


# The candidate explanations of the gap: what each changes, against which configuration
# (same group). Schedule and grid compare the ROL - SSDH gap at their setting with the
# demo's gap instead.
FACTORS: tuple[tuple[str, str, str], ...] = (
    ("mask accuracy (oracle instead of predicted masks)", "rol-oracle-soft", "rol-predicted-soft"),
    (
        "feature energy (R / mean R instead of R, predicted)",
        "rol-predicted-normalized",
        "rol-predicted-soft",
    ),
    (
        "feature energy (R / mean R instead of R, oracle)",
        "rol-oracle-normalized",
        "rol-oracle-soft",
    ),
    ("binary mask (R > 0.5 instead of R, predicted)", "rol-predicted-binary", "rol-predicted-soft"),
    ("schedule (3x epochs)", "rol-predicted-soft-3x", "ssdh-3x"),
    ("ROL grid (8x8 at 2x input instead of 4x4)", "rol-predicted-soft-2x-input", "ssdh-2x-input"),
)
# Controls, reported beside the factors but not part of the verdict: ones must equal
# SSDH (the pipeline adds nothing else), and shuffled against predicted asks whether the
# masks' placement matters at all or only their rescaling.
CONTROLS: tuple[tuple[str, str, str], ...] = (
    ("control: R = 1 against SSDH (must be 0)", "rol-ones-soft", "ssdh"),
    (
        "control: placement (predicted instead of shuffled masks)",
        "rol-predicted-soft",
        "rol-shuffled-soft",
    ),
)
PAIRED_GAP = ("-3x", "-2x-input")


def paired_counts(changes: np.ndarray) -> dict[str, Any]:
    """A comparison's paired changes as the decision rule counts them: mean ± std, the
    positive pairs, the pairs, and how many must be positive (5 of 6, or all when fewer)."""
    n = len(changes)
    return {
        "change": mean_std(changes.tolist()),
        "positive": int((changes > 0).sum()),
        "pairs": n,
        "needed": n - 1 if n >= 6 else n,
    }


def factor_verdicts(
    by: dict[tuple[str, int, int], float], seeds: Sequence[int], grid: Sequence[Variant]
) -> list[dict[str, Any]]:
    """The pre-registered decision rule, one verdict per factor.

    ``gap`` = mean over (seed, bits) of SSDH - ROL (predicted, soft, demo schedule).
    For a mask factor, ``change`` = variant - reference per (seed, bits); it explains the
    gap when mean(change) >= gap / 2 and change > 0 in at least 5 of 6 pairs (all pairs
    when fewer). For schedule and grid, ``change`` = (ROL - SSDH at that setting) -
    (ROL - SSDH at the demo's), paired the same way.
    """
    names = {v.name: v for v in grid}
    base_bits = names["ssdh"].bits
    gap_pairs = [
        by[("ssdh", b, s)] - by[("rol-predicted-soft", b, s)]
        for s in seeds
        for b in base_bits
        if ("ssdh", b, s) in by and ("rol-predicted-soft", b, s) in by
    ]
    gap = float(np.mean(gap_pairs)) if gap_pairs else float("nan")
    out = []
    for label, variant, reference in FACTORS + CONTROLS:
        if variant not in names:
            continue
        bits = names[variant].bits
        changes = []
        for s in seeds:
            for b in bits:
                keys = [(variant, b, s), (reference, b, s)]
                if variant.endswith(PAIRED_GAP):
                    keys += [("rol-predicted-soft", b, s), ("ssdh", b, s)]
                if not all(k in by for k in keys):
                    continue
                change = by[keys[0]] - by[keys[1]]
                if len(keys) == 4:  # the gap's change, not the method's
                    change -= by[keys[2]] - by[keys[3]]
                changes.append(change)
        if not changes:
            continue
        c = np.asarray(changes)
        counts = paired_counts(c)
        control = (label, variant, reference) in CONTROLS
        enough = counts["positive"] >= counts["needed"]
        explains = bool(c.mean() >= gap / 2 and enough and gap > 0) and not control
        out.append(
            {
                "factor": label,
                "variant": variant,
                "reference": reference,
                **counts,
                "explains": explains,
                "control": control,
            }
        )
    return [{"gap": gap, "gap_pairs": len(gap_pairs)}, *out]


def results_markdown(summary: dict[str, Any], wall_seconds: float, grid: Sequence[Variant]) -> str:
    """``results.md``: the table per group, the factor verdicts and the wall time."""
    n = len(summary["seeds"])
    lines = [
        f"# make ablation: when does the ROL help? ({summary.get('dataset', 'generated')} "
        f"data set, {summary.get('profile', 'demo')} profile)",
        "",
        f"MAP@1000 over seeds {', '.join(map(str, summary['seeds']))} "
        f"({'mean ± std' if n > 1 else 'one seed'}). 'vs SSDH' is the paired difference to "
        "the SSDH run of the same group, seed and bits, with the number of pairs where the "
        "variant is higher.",
        "",
    ]
    for group in GROUPS:
        rows = [r for r in summary["table"] if r["group"] == group and r["map"] is not None]
        if not rows:
            continue
        lines += [f"## {group}", "", "| variant | bits | MAP@1000 | vs SSDH | higher |"]
        lines += ["|---|---|---|---|---|"]
        for r in rows:
            diff = "" if r["vs_ssdh"] is None else _signed(r["vs_ssdh"], n)
            higher = "" if r["vs_ssdh"] is None else f"{r['vs_ssdh_higher']}/{r['pairs']}"
            lines.append(
                f"| {r['variant']} | {r['bits']} | {pm(r['map'], n)} | {diff} | {higher} |"
            )
        lines.append("")
    gap, *factors = summary["factors"]
    lines += [
        "## Decision rule",
        "",
        f"Gap to explain: SSDH - ROL (predicted, soft, demo schedule) = {gap['gap']:+.3f} "
        f"(mean of {gap['gap_pairs']} seed x bits pairs). A factor explains it when its "
        "change closes at least half of it with the same sign in 5 of 6 pairs (all pairs "
        "when fewer).",
        "",
        "| factor | change | positive pairs | explains the gap |",
        "|---|---|---|---|",
    ]
    for f in factors:
        verdict = "(control)" if f["control"] else ("yes" if f["explains"] else "no")
        lines.append(
            f"| {f['factor']} | {_signed(f['change'], f['pairs'])} | "
            f"{f['positive']}/{f['pairs']} (need {f['needed']}) | {verdict} |"
        )
    explained = [f["factor"] for f in factors if f["explains"]]
    questions = summary.get("questions", [])
    if questions:
        lines += [
            "",
            "## Questions",
            "",
            "A comparison holds when its paired change is positive on average and in at "
            "least 5 of 6 pairs (all pairs when fewer).",
            "",
            "| question | change | positive pairs | holds |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {q['question']} | {_signed(q['change'], q['pairs'])} | "
            f"{q['positive']}/{q['pairs']} (need {q['needed']}) | "
            f"{'yes' if q['holds'] else 'no'} |"
            for q in questions
        ]
    lines += [
        "",
        "Verdict: "
        + (
            "explained by " + "; ".join(explained) + "."
            if explained
            else "no factor of the grid explains the gap."
        ),
        "",
        f"Wall time: {wall_seconds / 60:.1f} min.",
        "",
    ]
    return "\n".join(lines)


def _signed(stat: dict[str, float], n: int) -> str:
    return f"{stat['mean']:+.3f} ± {stat['std']:.3f}" if n > 1 else f"{stat['mean']:+.3f}"


def write_figures(out_dir: Path, summary: dict[str, Any], scatter: dict[str, np.ndarray]) -> None:
    """``ablation_map.png`` and ``ap_vs_mask_quality.png``."""
    rows = [r for r in summary["table"] if r["map"] is not None]
    fig = viz.plot_ablation(
        [f"{r['variant']} {r['bits']}b" for r in rows],
        [r["map"]["mean"] for r in rows],
        [r["map"]["std"] for r in rows],
        [r["group"] for r in rows],
    )
    save_figure(fig, out_dir / "ablation_map.png")
    if scatter:
        fig = viz.plot_ap_vs_mask_quality(scatter["iou"], scatter["ap_diff"])
        save_figure(fig, out_dir / "ap_vs_mask_quality.png")


# ----------------------------------------------------------------------------- the study


def run_ablation(
    out_dir: str | Path = "results/ablation",
    work_dir: str | Path = "runs/demo",
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    bits: Sequence[int] | None = None,
    dataset: str = "generated",
    data_root: str | None = None,
    grid_kind: str = "full",
) -> dict[str, Any]:
    """Runs the grid for each seed (resuming finished runs) and writes the results.

    Args:
        out_dir: where ``results.md``, ``results.json`` and the figures go.
        work_dir: the pipeline's work folder (``<work_dir>/seed<k>/``), shared with it:
            ``make demo``'s for ``generated``, ``make fashion``'s for its variants.
        seeds: one pass of the grid per seed.
        quick: the pipeline's tiny sizes, one epoch per stage, 12 bits (the test suite's).
        bits: code lengths of groups 1 and 2 (default 12 and 48; quick: 12).
        dataset: ``generated`` (the demo's), ``fashion_mnist`` or ``fashion_scenes``.
        data_root: the Fashion-MNIST IDX folder (default Debian's), for those variants.
        grid_kind: "full" (docs/ablation.md) or "sources" (group 1 without the binary
            form: docs/ablation_scenes.md).

    Returns:
        The summary written to ``results.json``.
    """
    if not seeds:
        raise InputError("seeds is empty: give at least one seed")
    wall = Stopwatch()
    sizes = QUICK if quick else DemoSizes()
    grid = ablation_grid(bits or ((12,) if quick else (12, 48)), kind=grid_kind)
    out_dir, work_dir = check_folder_target(out_dir), Path(work_dir)  # before any run
    rows: list[dict[str, Any]] = []
    scatter: dict[str, list[np.ndarray]] = {"iou": [], "ap_diff": []}
    total = sum(len(v.bits) for v in grid) * len(seeds)
    done = 0
    for seed in seeds:
        work = work_dir / f"seed{seed}"
        clock = Stopwatch()
        config = prepare_seed(work, sizes, int(seed), dataset, data_root, quick)
        print(f"[ablation] seed {seed}: data, backbone, segmentation ready ({clock():.0f} s)")
        seg_models = {config.model.input_size: Path(config.hashing.segmentation_model)}
        record = get_dataset_spec(config.dataset).load(config.data_root)  # checked once
        for variant in grid:
            for b in variant.bits:
                row = run_variant(config, variant, b, seg_models, record) | {"seed": int(seed)}
                rows.append(row)
                done += 1
                state = "reused" if row["reused"] else f"{row['seconds']:.0f} s"
                print(
                    f"[ablation] {done}/{total} seed {seed} {variant.name} {b} bits: "
                    f"MAP {row['map']:.4f} ({state}, {wall() / 60:.1f} min in)",
                    flush=True,
                )
        top = max(grid[0].bits)
        ssdh_run, rol_run = (
            run_folder(Path(config.runs_dir), grid[i], top, config.dataset) for i in (0, 1)
        )
        scatter["iou"].append(mask_quality(rol_run, record=record))
        scatter["ap_diff"].append(query_ap(rol_run, record) - query_ap(ssdh_run, record))
    summary = summarize(rows, grid)
    merged = {k: np.concatenate(v) for k, v in scatter.items()}
    corr = (
        float(np.corrcoef(merged["iou"], merged["ap_diff"])[0, 1])
        if len(merged["iou"]) > 2
        else float("nan")
    )
    summary |= {
        "rows": rows,
        "mask_quality": {
            "bits": max(grid[0].bits),
            "mean_iou": float(merged["iou"].mean()),
            "correlation_iou_ap_diff": corr,
            "queries": int(len(merged["iou"])),
        },
        "quick": quick,
        "dataset": dataset,
        "profile": config.profile,
    }
    write_figures(out_dir, summary, merged)
    summary["wall_seconds"] = round(wall(), 1)
    markdown = results_markdown(summary, summary["wall_seconds"], grid)
    q = summary["mask_quality"]
    markdown += (
        f"Mask quality ({q['queries']} queries, {q['bits']} bits): mean IoU of R > 0.5 with "
        f"the object {q['mean_iou']:.3f}; correlation of that IoU with the per-query AP "
        f"difference (ROL - SSDH) {q['correlation_iou_ap_diff']:+.3f} "
        "(ap_vs_mask_quality.png).\n"
    )
    atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=1, default=float) + "\n")
    atomic_write_text(out_dir / "results.md", markdown)
    print(
        f"[ablation] results in {out_dir}/ (results.md, results.json, ablation_map.png, "
        "ap_vs_mask_quality.png)"
    )
    print(f"[ablation] wall time {summary['wall_seconds'] / 60:.1f} min")
    return summary
