"""Running the ablation: a seed's data, backbone and streams, each variant's run (reused
when fresh), per-query AP and mask quality, and the whole study."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from rol_hashing.clock import Stopwatch
from rol_hashing.data.fashion import DEFAULT_ROOT as FASHION_ROOT
from rol_hashing.data.fileio import read_json
from rol_hashing.data.pipeline import make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError
from rol_hashing.evaluation.evaluate import METRICS_JSON
from rol_hashing.evaluation.map import average_precisions
from rol_hashing.experiments import reuse
from rol_hashing.experiments.ablation import keep as kept_inputs
from rol_hashing.experiments.ablation.grid import (
    ALWAYS_RUN,
    MASK_IOU_THRESHOLD,
    Variant,
    ablation_grid,
    run_folder,
    scaled_epochs,
    select_variants,
    summarize,
    variant_config,
)
from rol_hashing.experiments.ablation.report import results_markdown, write_figures
from rol_hashing.experiments.demo import (
    EXPERIMENT,
    QUICK,
    DemoSizes,
    demo_backbone,
    demo_config,
    make_data,
)
from rol_hashing.experiments.fashion import QUICK as FASHION_QUICK
from rol_hashing.experiments.fashion import VARIANTS as FASHION_VARIANTS
from rol_hashing.experiments.fashion import FashionSizes, prepare_fashion_seed
from rol_hashing.freshness import make_key
from rol_hashing.io import atomic_write_text, check_folder_target, write_json
from rol_hashing.machine import hardware, machine
from rol_hashing.models import reliability_mask
from rol_hashing.retrieval.encode import encode_split
from rol_hashing.saving import load_model
from rol_hashing.training.config import ExperimentConfig, load_config
from rol_hashing.training.layout import MODEL_FILE, open_hashing_run
from rol_hashing.training.masks import ORACLE_BORDER, oracle_masks


def _segmentation(config: ExperimentConfig, run_dir: Path) -> Path:
    """The segmentation stream of ``config`` in ``run_dir``, trained unless fresh."""
    reuse.segmentation(config, run_dir)
    return run_dir / MODEL_FILE


def _seed_sizes(dataset: str, sizes: DemoSizes, quick: bool):
    """The sizes ``prepare_seed`` uses for ``dataset``: the demo's or ``make fashion``'s."""
    if dataset in FASHION_VARIANTS:
        fashion_sizes = FASHION_QUICK if quick else FashionSizes()
        return dataclasses.replace(fashion_sizes, variants=(dataset,))
    return sizes


def prepare_seed(
    work: Path,
    sizes: DemoSizes,
    seed: int,
    dataset: str = "generated",
    data_root: str | None = None,
    quick: bool = False,
    before_stream: Callable[[ExperimentConfig], object] | None = None,
) -> ExperimentConfig:
    """The data, backbone and segmentation stream for ``seed`` (reused when there): the
    demo's for ``generated``, ``make fashion``'s for the Fashion-MNIST variants.
    ``before_stream(config)`` is called once the data and backbone are in place."""
    if dataset in FASHION_VARIANTS:
        fashion_sizes = _seed_sizes(dataset, sizes, quick)
        return prepare_fashion_seed(
            work, fashion_sizes, seed, data_root or FASHION_ROOT, before_stream
        )
    if dataset != "generated":
        known = ", ".join(("generated", *FASHION_VARIANTS))
        raise InputError(f"the ablation runs on {known}; got data set {dataset!r}")
    data, pool = make_data(work, sizes, seed, force=False)
    runs = work / "runs"
    backbone = work / "backbone" / "vgg16_pretrained.h5"
    config = demo_config(data, runs, backbone, sizes, seed)
    demo_backbone(pool, backbone, config, sizes, seed, verbose=0)
    if before_stream is not None:
        before_stream(config)
    _segmentation(config, runs / config.segmentation.run_name)
    return config


def seg_config(config: ExperimentConfig, variant: Variant) -> ExperimentConfig:
    """The segmentation stream ``variant`` needs: ``config``'s at the variant's input size,
    its epochs scaled with the variant's schedule."""
    seg = config.segmentation
    return dataclasses.replace(
        config,
        model=dataclasses.replace(
            config.model, input_size=config.model.input_size * variant.input_factor
        ),
        segmentation=dataclasses.replace(
            seg, epochs=scaled_epochs(seg.epochs, variant.epochs_factor)
        ),
    )


def stream_for(config: ExperimentConfig, variant: Variant, seg_models: dict[int, Path]) -> Path:
    """The segmentation model of ``variant``'s input size (trained once per size and kept
    in ``seg_models``)."""
    size = config.model.input_size * variant.input_factor
    if size not in seg_models:
        runs = Path(config.runs_dir)
        seg_models[size] = _segmentation(
            seg_config(config, variant), runs / f"{config.dataset}-seg-{size}"
        )
    return seg_models[size]


def run_variant(
    config: ExperimentConfig,
    variant: Variant,
    bits: int,
    seg_models: dict[int, Path],
    record: DatasetRecord | None = None,
) -> dict[str, Any]:
    """Trains (unless finished) and evaluates one run; returns its numbers. ``record``:
    ``config.data_root`` loaded once for all the seed's runs (default: loaded per run)."""
    run_dir = run_folder(Path(config.runs_dir), variant, bits, config.dataset)
    vconfig = variant_config(config, variant, stream_for(config, variant, seg_models))
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


# ----------------------------------------------------------------------------- the study


def group_key(dataset: str, grid: Sequence[Variant], bits: int, seed: int, sizes) -> dict:
    """What one (seed, bits) group of the grid is made from: the data set, the grid's
    variants at ``bits``, the seed, the protocol's sizes and the resolved profile (the
    recipe), not paths or the bytes of intermediate files, so a kept group stays fresh
    on another machine until one of those changes."""
    experiment = dataset if dataset in FASHION_VARIANTS else EXPERIMENT
    profile = load_config(experiment, sizes.profile).to_dict()
    for path_key in ("data_root", "runs_dir", "split_file"):
        profile.pop(path_key, None)
    return make_key(
        "ablation_group",
        dataset=dataset,
        variants=[dataclasses.asdict(v) for v in grid if bits in v.bits],
        bits=bits,
        seed=seed,
        sizes=dataclasses.asdict(sizes),
        profile=profile,
    )


def _kept_grid_names(path: Path) -> tuple[list[str], tuple[int, ...]] | None:
    """The variant names and code lengths of the group a kept run file says it belongs to
    (candidates only: the key is then made again and compared in full)."""
    try:
        variants = read_json(path, "kept ablation run")["key"]["parts"]["group"]["parts"][
            "variants"
        ]
        names = [str(v["name"]) for v in variants]
        bits = tuple(sorted({int(b) for v in variants for b in v["bits"]}))
    except (OSError, InputError, KeyError, TypeError, ValueError):
        return None
    return names, bits


def kept_pipeline_run(
    keep_dir: str | Path,
    config: ExperimentConfig,
    sizes: FashionSizes,
    method: str,
    bits: int,
    seed: int,
    quick: bool = False,
) -> dict[str, Any] | None:
    """A ``make fashion`` run (SSDH or the paper's ROL of a Fashion-MNIST variant, its
    ``config``) that ``ablate --keep keep_dir`` kept: the stored run when the ablation's
    own key for it (its group's grid, sources or full, with the variants and code lengths
    the kept file names; the same protocol sizes; the bytes of the split, backbone and
    stream) is the run ``config`` asks for; else None."""
    name = {"ssdh": "ssdh", "rol": "rol-predicted-soft"}.get(method)
    if name is None or config.dataset not in FASHION_VARIANTS:
        return None
    ablation_sizes = _seed_sizes(config.dataset, DemoSizes(), quick)
    same = {"bits": (), "variants": ()}
    if dataclasses.replace(ablation_sizes, **same) != dataclasses.replace(sizes, **same):
        return None
    path = Path(keep_dir) / f"seed{seed}_{bits}b" / f"{name}.json"  # keep.run_file's
    candidates = _kept_grid_names(path)
    if candidates is None:
        return None
    names, grid_bits = candidates
    for kind in ("sources", "full"):
        try:
            grid = select_variants(ablation_grid(grid_bits, kind=kind), names)
        except InputError:
            continue
        variant = next((v for v in grid if v.name == name), None)
        if variant is None or bits not in variant.bits:
            continue
        key = group_key(config.dataset, grid, bits, int(seed), ablation_sizes)
        vconfig = variant_config(config, variant, Path(config.hashing.segmentation_model))
        stored = kept_inputs.kept_run(path, kept_inputs.run_key(key, vconfig, variant))
        if stored is not None:
            return stored
    return None


def _mixed_machine_groups(rows: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """The (seed, bits) groups whose rows name more than one machine, by hardware (CPU,
    cores, memory: ``machine.hardware``; one kind's kernel builds count as one); rows
    without a machine, from groups kept before runs recorded theirs, count as one."""
    seen: dict[tuple[int, int], set[str]] = {}
    for row in rows:
        if "machine" in row and "seed" in row:
            group = (int(row["seed"]), int(row["bits"]))
            seen.setdefault(group, set()).add(hardware(str(row["machine"])))
    return sorted(group for group, names in seen.items() if len(names) > 1)


def run_ablation(
    out_dir: str | Path = "results/ablation",
    work_dir: str | Path = "runs/demo",
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    bits: Sequence[int] | None = None,
    dataset: str = "generated",
    data_root: str | None = None,
    grid_kind: str = "full",
    keep_dir: str | Path | None = None,
    variants: Sequence[str] | None = None,
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
        keep_dir: a folder that outlives the session (``experiments.ablation.keep``):
            each finished (seed, bits) group as ``seed<k>_<b>b.json`` (its rows,
            per-query APs, the machines), each finished run of an unfinished group,
            and each seed's backbone and streams. A later session, on whatever
            machine, reuses a kept group without preparing anything, and a kept run
            when its key (with the bytes of the copied-back backbone and stream)
            matches, so every paired difference comes from one backbone and stream;
            a group's file names every machine its runs came from. Default: nothing
            kept.
        variants: run only these variants of the grid (``grid.select_variants``: with
            SSDH and the paper's ROL always); default all. A kept group is one of the
            same variants.

    Returns:
        The summary written to ``results.json``.
    """
    if not seeds:
        raise InputError("seeds is empty: give at least one seed")
    wall = Stopwatch()
    sizes = QUICK if quick else DemoSizes()
    grid = ablation_grid(bits or ((12,) if quick else (12, 48)), kind=grid_kind)
    grid = select_variants(grid, variants)
    out_dir, work_dir = check_folder_target(out_dir), Path(work_dir)  # before any run
    keep = None if keep_dir is None else check_folder_target(keep_dir)
    all_bits = sorted({b for v in grid for b in v.bits})
    top = max(grid[0].bits)
    rows: list[dict[str, Any]] = []
    scatter: dict[str, list[np.ndarray]] = {"iou": [], "ap_diff": []}
    total = sum(len(v.bits) for v in grid) * len(seeds)
    done = 0
    profile = None
    for seed in seeds:
        work = work_dir / f"seed{seed}"
        seed_sizes = _seed_sizes(dataset, sizes, quick)
        prepared: tuple[ExperimentConfig, DatasetRecord] | None = None
        for b in all_bits:
            key = group_key(dataset, grid, b, int(seed), seed_sizes)
            kept_path = None if keep is None else kept_inputs.group_file(keep, seed, b)
            kept = None if kept_path is None else reuse.fresh_result(kept_path, key, "group")
            if kept is not None:
                rows += kept["rows"]
                done += len(kept["rows"])
                if b == top:
                    scatter["iou"].append(np.asarray(kept["iou"], np.float64))
                    scatter["ap_diff"].append(np.asarray(kept["ap_diff"], np.float64))
                print(f"[ablation] seed {seed} {b} bits: kept in {kept_path} ({kept['machine']})")
                profile = kept["profile_name"]
                continue
            if prepared is None:
                clock = Stopwatch()
                rekey = None
                if keep is not None and kept_inputs.restore_inputs(keep, int(seed), work):
                    print(f"[ablation] seed {seed}: backbone and streams copied back from {keep}")
                    rekey = functools.partial(kept_inputs.rekey_streams, keep, int(seed), work)
                config = prepare_seed(
                    work, sizes, int(seed), dataset, data_root, quick, before_stream=rekey
                )
                if keep is not None:
                    kept_inputs.save_manifest(keep, int(seed), config)
                print(
                    f"[ablation] seed {seed}: data, backbone, segmentation ready ({clock():.0f} s)"
                )
                record = get_dataset_spec(config.dataset).load(config.data_root)  # once
                prepared = (config, record)
                seg_models = {config.model.input_size: Path(config.hashing.segmentation_model)}
            config, record = prepared
            profile = config.profile
            group: list[dict[str, Any]] = []
            per_query: dict[str, dict[str, list[float]]] = {}
            machines: set[str] = set()
            for variant in (v for v in grid if b in v.bits):
                stream = stream_for(config, variant, seg_models)
                if keep is not None:
                    kept_inputs.save_inputs(
                        keep, int(seed), work, kept_inputs.seed_inputs(config, seg_models)
                    )
                path = None if keep is None else kept_inputs.run_file(keep, seed, b, variant)
                rkey = None
                if path is not None:
                    vconfig = variant_config(config, variant, stream)
                    rkey = kept_inputs.run_key(key, vconfig, variant)
                stored = None if path is None else kept_inputs.kept_run(path, rkey)
                wanted = b == top and variant.name in ALWAYS_RUN  # SSDH and the paper's ROL
                if stored is not None:
                    row = stored["row"] | {"reused": True}
                    extras = {k: stored[k] for k in ("ap", "iou") if k in stored}
                    ran_on = str(stored["machine"])
                    state = f"kept, {ran_on}"
                else:
                    row = run_variant(config, variant, b, seg_models, record) | {"seed": int(seed)}
                    extras = {}
                    if wanted:
                        extras["ap"] = query_ap(row["run"], record).tolist()
                        if variant.method == "rol":
                            extras["iou"] = mask_quality(row["run"], record=record).tolist()
                    ran_on = machine()
                    state = "reused" if row["reused"] else f"{row['seconds']:.0f} s"
                    if path is not None:
                        kept_inputs.write_run(path, rkey, {"row": row, "machine": ran_on, **extras})
                if wanted:
                    per_query[variant.method] = extras
                row["machine"] = ran_on
                machines.add(ran_on)
                group.append(row)
                done += 1
                print(
                    f"[ablation] {done}/{total} seed {seed} {variant.name} {b} bits: "
                    f"MAP {row['map']:.4f} ({state}, {wall() / 60:.1f} min in)",
                    flush=True,
                )
            rows += group
            extra: dict[str, Any] = {}
            if b == top:
                iou = np.asarray(per_query["rol"]["iou"], np.float64)
                ap_diff = np.asarray(per_query["rol"]["ap"], np.float64) - np.asarray(
                    per_query["ssdh"]["ap"], np.float64
                )
                scatter["iou"].append(iou)
                scatter["ap_diff"].append(ap_diff)
                extra = {"iou": iou.tolist(), "ap_diff": ap_diff.tolist()}
            if kept_path is not None:
                write_json(
                    kept_path,
                    {
                        "key": key,
                        "rows": group,
                        "machine": " + ".join(sorted(machines)),
                        "profile_name": config.profile,
                        **extra,
                    },
                )
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
            "bits": top,
            "mean_iou": float(merged["iou"].mean()),
            "correlation_iou_ap_diff": corr,
            "queries": int(len(merged["iou"])),
        },
        "quick": quick,
        "dataset": dataset,
        "profile": profile,
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
    mixed = _mixed_machine_groups(rows)
    if mixed:
        markdown += (
            "\nGroups whose runs came from more than one machine (their paired differences "
            "mix machines): " + ", ".join(f"seed {s} {b} bits" for s, b in mixed) + ".\n"
        )
    summary["mixed_machine_groups"] = [list(g) for g in mixed]
    atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=1, default=float) + "\n")
    atomic_write_text(out_dir / "results.md", markdown)
    print(
        f"[ablation] results in {out_dir}/ (results.md, results.json, ablation_map.png, "
        "ap_vs_mask_quality.png)"
    )
    print(f"[ablation] wall time {summary['wall_seconds'] / 60:.1f} min")
    return summary
