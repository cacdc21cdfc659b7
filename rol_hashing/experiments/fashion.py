"""``make fashion``: SSDH, ROL, LSH and ITQ on real images, clean and in photo scenes.

Per seed, with the ``cpu`` profile of ``experiments/fashion_{mnist,scenes}.yaml``:

1. ``split``: the paper's CIFAR-10 protocol on Fashion-MNIST's 70,000 images, after its
   VOC rule: 200 images per class set aside for the segmentation stream, then 100
   queries and 500 training images per class from the rest; the gallery is every
   image neither a query nor set aside (67,000). One split serves both variants.
2. ``scenes``: each image's item in a photo scene (``data/scenes.py``), and each
   variant's segmentation devkit from its set-aside images (``data/fashion_sets.py``).
3. ``pretrain``: the cpu profile's backbone, on the 5,000 clean training items and their
   labels only (object-centric pre-training, as ImageNet is for the paper), streamed.
   Both variants start from it.
4. per variant: the segmentation stream (set-aside images only); SSDH and ROL at each
   code length, evaluated (MAP@1000); the class head's accuracy on the queries; LSH and
   ITQ on the backbone's pooled features of the same split. The ROL runs of a variant
   share the query and gallery masks of its stream (computed once).

Every stage reuses what a previous call finished with the same settings, so an
interrupted benchmark resumes. ``out_dir`` gets ``results.md``, ``results.json`` and
figures: ``map_vs_bits_<variant>.png``, ``retrieval_top10_<variant>.png`` and
``rol_masks_<variant>.png`` (longest codes, first seed).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rol_hashing import viz
from rol_hashing.clock import Stopwatch
from rol_hashing.constants import METHODS, PAPER_BITS
from rol_hashing.data.fashion import DEFAULT_ROOT, load_fashion_mnist
from rol_hashing.data.fashion_sets import (
    load_fashion_scenes,
    scenes_current,
    split_sha256,
    write_devkit,
    write_scenes,
)
from rol_hashing.data.fileio import read_json
from rol_hashing.data.pipeline import make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.data.splits import Split, draw_split, load_split
from rol_hashing.errors import InputError
from rol_hashing.evaluation.evaluate import resolve_top_k
from rol_hashing.evaluation.map import chance_precision, mean_average_precision
from rol_hashing.experiments import fashion_keep as fk
from rol_hashing.experiments import kept_inputs, reuse
from rol_hashing.experiments.demo import StageClock, retrieval_figure, rol_masks_figure
from rol_hashing.experiments.report import (
    format_seconds,
    map_table,
    mean_std,
    pm,
    seeds_phrase,
    verdict,
)
from rol_hashing.experiments.table2_files import PAPER_TABLE2
from rol_hashing.freshness import (
    file_digest,
    is_fresh,
    make_key,
    records_parts,
)
from rol_hashing.io import atomic_savez, atomic_write_text, check_folder_target, write_json
from rol_hashing.machine import machine
from rol_hashing.models import build_vgg16, load_vgg16_imagenet_weights
from rol_hashing.retrieval.classical import METHODS as CLASSICAL
from rol_hashing.retrieval.classical import pooled_features
from rol_hashing.saving import load_inference_model
from rol_hashing.training.config import (
    ExperimentConfig,
    load_config,
)
from rol_hashing.training.layout import MODEL_FILE, hashing_run_name
from rol_hashing.training.pretrain import pretrain_on_record

VARIANTS = ("fashion_mnist", "fashion_scenes")
QUERY_ACCURACY = "query_accuracy.json"
# Published test accuracies on Fashion-MNIST, from the benchmark table of the data set's
# repository (github.com/zalandoresearch/fashion-mnist), for orientation: they classify
# the 10,000 clean test items after training on all 60,000; our class heads see 5,000.
PUBLISHED_ACCURACY = {
    "human (crowd-sourced)": 0.835,
    "MLP 256-128-100": 0.883,
    "ResNet18 with augmentation": 0.949,
}


@dataclass(frozen=True)
class FashionSizes:
    """The benchmark's protocol and schedule; the ``profile`` (of the two YAML files)
    holds the model sizes and the segmentation and hashing schedules."""

    profile: str = "cpu"
    bits: tuple[int, ...] = PAPER_BITS
    variants: tuple[str, ...] = VARIANTS
    set_aside: int = 200
    train: int = 500
    query: int = 100
    scene_size: int = 64
    pretrain_epochs: int = 8
    pretrain_learning_rate: float = 5e-4
    pretrain_batch_size: int = 32


# Tiny sizes and one epoch per stage: the end-to-end check inside ``make test`` (on a
# small IDX fixture).
QUICK = FashionSizes(
    profile="cpu_quick",
    bits=(12,),
    set_aside=2,
    train=3,
    query=1,
    scene_size=32,
    pretrain_epochs=1,
)


# ----------------------------------------------------------------------------- stages


def protocol_split(record: DatasetRecord, sizes: FashionSizes, seed: int, path: Path) -> Split:
    """The seed's split (saved at ``path``, reused when it is the same draw)."""
    split = draw_split(record, sizes.train, sizes.query, True, seed, sizes.set_aside)
    if path.is_file():
        try:
            if load_split(path, record) == split:
                return split
        except InputError:
            pass
    split.save(path)
    return split


def variant_split(split: Split, variant: str) -> Split:
    """The same ids, named for ``variant`` (split files name their data set)."""
    return dataclasses.replace(split, dataset=variant)


def variant_config(
    variant: str, work: Path, data_root: Path, sizes: FashionSizes, seed: int
) -> ExperimentConfig:
    """The variant's profile pointed at the seed's folders (data, split, devkit, backbone,
    segmentation stream)."""
    runs = work / "runs"
    overrides = {
        "data_root": str(data_root),
        "runs_dir": str(runs),
        "seed": seed,
        "split_file": str(work / f"split_{variant}.json"),
        "model": {"backbone_weights": str(work / "backbone" / "vgg16_pretrained.h5")},
        "segmentation": {
            "data_root": str(work / f"{variant}_voc" / "VOCdevkit" / "VOC2012"),
            "run_name": f"{variant}-seg",
        },
        "hashing": {"segmentation_model": str(runs / f"{variant}-seg" / MODEL_FILE)},
    }
    return load_config(variant, sizes.profile, overrides)


def pretrain(
    record: DatasetRecord, split: Split, config: ExperimentConfig, sizes: FashionSizes, seed: int
) -> tuple[dict[str, Any], bool]:
    """The backbone on the split's clean training items (reused when made from the same
    split and settings); returns its report and whether it was made now."""
    out = Path(config.model.backbone_weights)
    schedule = (sizes.pretrain_epochs, sizes.pretrain_learning_rate, sizes.pretrain_batch_size)
    train = record.index_of(split.train)
    key = reuse.backbone_key(
        config, seed, schedule, record, train, split_sha256=split_sha256(split)
    )
    return reuse.backbone(
        out,
        key,
        lambda: pretrain_on_record(
            record,
            train,
            out,
            config,
            seed,
            epochs=sizes.pretrain_epochs,
            learning_rate=sizes.pretrain_learning_rate,
            batch_size=sizes.pretrain_batch_size,
            verbose=2,
            turns_and_mirrors=False,  # a turned shoe or trouser is not the same item
            stream=True,
            augment=config.hashing.augment,
            mirror=config.hashing.augment_mirror,
        ),
    )


def segmentation(config: ExperimentConfig, verbose: int) -> tuple[dict[str, Any], bool]:
    """The variant's segmentation stream (set-aside images only), unless finished;
    its metrics and whether it was trained now."""
    return reuse.segmentation(config, Path(config.runs_dir) / config.segmentation.run_name, verbose)


def query_accuracy(run_dir: Path, record: DatasetRecord, split: Split) -> float:
    """The class head's accuracy on the split's queries (kept in ``QUERY_ACCURACY``)."""
    path = run_dir / QUERY_ACCURACY
    query = record.index_of(split.query)
    key = make_key(
        "query_accuracy", model=file_digest(run_dir / MODEL_FILE), **records_parts(record, query)
    )
    try:
        stored = read_json(path, "query accuracy")
        if is_fresh(stored.get("key"), key):
            return float(stored["accuracy"])
    except (OSError, InputError, AttributeError, KeyError, TypeError, ValueError):
        pass
    model = load_inference_model(run_dir / MODEL_FILE)
    if isinstance(model.input, dict):
        raise InputError(f"{run_dir}: a mask-input model; the benchmark trains live ROL models")
    size = int(model.input_shape[1])
    probs = model.predict(
        make_image_dataset(record, query, size, 64).map(lambda x, _: x), verbose=0
    )["class"]
    accuracy = float((np.argmax(probs, axis=1) == record.labels[query]).mean())
    write_json(path, {"accuracy": accuracy, "queries": len(query), "key": key})
    return accuracy


def hashing(
    config: ExperimentConfig,
    record: DatasetRecord,
    split: Split,
    method: str,
    bits: int,
    shared_masks: Path,
    verbose: int,
) -> dict[str, Any]:
    """One deep run, trained and evaluated unless finished; its numbers."""
    run_dir = Path(config.runs_dir) / hashing_run_name(config.dataset, method, bits)
    clock = Stopwatch()
    metrics, made = reuse.hashing(config, method, bits, run_dir, record, verbose, shared_masks)
    reused = not made
    return {
        "map": float(metrics["map_at_k"]),
        "chance": float(metrics["chance"]),
        "top_k": int(metrics["top_k"]),
        "num_queries": int(metrics["num_queries"]),
        "num_gallery": int(metrics["num_gallery"]),
        "query_accuracy": query_accuracy(run_dir, record, split),
        "run": str(run_dir),
        "seconds": round(clock(), 1),
        "reused": reused,
    }


def protocol_facts(record: DatasetRecord, split: Split) -> dict[str, Any]:
    """What every run of ``split`` reports besides its MAP: chance (a random ranking's
    MAP), k, and the numbers of queries and gallery images."""
    query, gallery = record.index_of(split.query), record.index_of(split.gallery)
    top_k = resolve_top_k(None, get_dataset_spec(record.name).top_k, len(gallery))
    return {
        "chance": float(chance_precision(record.labels[query], record.labels[gallery])),
        "top_k": top_k,
        "num_queries": len(query),
        "num_gallery": len(gallery),
    }


@dataclass(frozen=True)
class Keeps:
    """Where finished work outlives the session (``fashion_keep``): the benchmark's own
    keep folder, and ``make ablation-scenes``' whose SSDH and ROL runs are taken too."""

    own: Path | None = None
    ablation: Path | None = None
    quick: bool = False


def kept_hashing(
    config: ExperimentConfig,
    record: DatasetRecord,
    split: Split,
    method: str,
    bits: int,
    shared_masks: Path,
    verbose: int,
    sizes: FashionSizes,
    keeps: Keeps,
) -> dict[str, Any]:
    """``hashing`` through the keep folders: a run whose model is not in the work folder
    is taken from the benchmark's keep, then from the ablation's, before it is trained.
    A row taken from a keep has ``"kept"`` (the machine it ran on)."""
    run_dir = Path(config.runs_dir) / hashing_run_name(config.dataset, method, bits)
    seed = config.seed
    if not fk.has_model(run_dir):
        if keeps.own is not None:
            path = fk.run_file(keeps.own, seed, config.dataset, method, bits)
            key = fk.run_key(config, sizes, method, bits, seed)
            stored = fk.read(path, key, "kept fashion run")
            if stored is not None:
                return stored["row"] | {
                    "run": str(run_dir),
                    "reused": True,
                    "kept": stored["machine"],
                }
        if keeps.ablation is not None:
            # lazy: the ablation builds on this module (an import cycle at module top)
            from rol_hashing.experiments.ablation.runner import kept_pipeline_run

            found = kept_pipeline_run(
                keeps.ablation, config, sizes, method, bits, seed, keeps.quick
            )
            if found is not None:
                return {
                    "map": float(found["row"]["map"]),
                    **protocol_facts(record, split),
                    "query_accuracy": None,  # the ablation keeps no class head accuracy
                    "seconds": float(found["row"]["seconds"]),
                    "run": str(run_dir),
                    "reused": True,
                    "kept": found["machine"],
                }
    return hashing(config, record, split, method, bits, shared_masks, verbose)


def keep_run(
    keeps: Keeps,
    config: ExperimentConfig,
    sizes: FashionSizes,
    method: str,
    bits: int,
    row: dict[str, Any],
    seconds: float,
) -> None:
    """Keeps a finished deep run's row (with the ``seconds`` of the call that made it) in
    the benchmark's keep, unless it is kept there already."""
    if keeps.own is None:
        return
    path = fk.run_file(keeps.own, config.seed, config.dataset, method, bits)
    key = fk.run_key(config, sizes, method, bits, config.seed)
    content = {k: v for k, v in row.items() if k not in ("run", "reused", "kept")}
    content["seconds"] = float(seconds)
    stored = fk.read(path, key, "kept fashion run")
    if stored is None or stored["row"] != content:
        fk.write(path, key, {"row": content, "machine": row.get("kept") or machine()})


def features(
    record: DatasetRecord, split: Split, config: ExperimentConfig, cache: Path
) -> tuple[dict[str, np.ndarray], bool]:
    """The pre-trained backbone's pooled features of train, query and gallery, kept in
    ``cache`` (an .npz, reused when made from the same backbone file and split), and
    whether they were read back."""
    backbone_file = Path(config.model.backbone_weights)
    m = config.model
    parts = ("train", "query", "gallery")
    key = make_key(
        "features",
        backbone=file_digest(backbone_file),
        split_sha256=split_sha256(split),
        model=[m.vgg, m.input_size, m.width, m.batch_norm],
        **records_parts(record, record.index_of([i for p in parts for i in getattr(split, p)])),
    )
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                if is_fresh(json.loads(str(stored["key"])), key):
                    return {p: stored[p] for p in parts}, True
        except (OSError, ValueError, KeyError):
            pass  # another layout or a damaged file: made again
    backbone = build_vgg16(m.vgg, m.input_size, m.width, batch_norm=m.batch_norm)
    load_vgg16_imagenet_weights(backbone, backbone_file)
    out = {}
    for part in ("train", "query", "gallery"):
        batches = make_image_dataset(
            record, record.index_of(getattr(split, part)), m.input_size, 128
        )
        out[part] = pooled_features(backbone, batches.map(lambda x, _: x))
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_savez(cache, key=np.asarray(json.dumps(key, sort_keys=True)), **out)
    return out, False


def classical_rows(
    feats: dict[str, np.ndarray],
    record: DatasetRecord,
    split: Split,
    bits: Sequence[int],
    seed: int,
    top_k: int,
) -> dict[str, dict[int, float]]:
    """MAP@k of LSH and ITQ on the pooled features at each code length."""
    labels = {p: record.labels[record.index_of(getattr(split, p))] for p in ("query", "gallery")}
    out: dict[str, dict[int, float]] = {}
    for name, cls in CLASSICAL.items():
        out[name] = {}
        for b in bits:
            coder = cls(b, seed=seed).fit(feats["train"])
            out[name][b] = mean_average_precision(
                coder.encode(feats["query"]),
                labels["query"],
                coder.encode(feats["gallery"]),
                labels["gallery"],
                top_k,
            )
    return out


@dataclass
class Prepared:
    """A seed's shared stages: the split, each variant's record and config, the backbone."""

    split: Split
    records: dict[str, DatasetRecord]
    configs: dict[str, ExperimentConfig]
    backbone: dict[str, Any]


def prepare(
    clean: DatasetRecord, work: Path, sizes: FashionSizes, seed: int, clock: StageClock
) -> Prepared:
    """Split, scenes, devkits and backbone of one seed (each reused when finished)."""
    work.mkdir(parents=True, exist_ok=True)
    with clock("split"):
        split = protocol_split(clean, sizes, seed, work / "split.json")
    records = {"fashion_mnist": clean}
    roots = {"fashion_mnist": Path(clean.root)}
    if "fashion_scenes" in sizes.variants:
        with clock("scenes") as stage:
            if scenes_current(clean, split, work / "fashion_scenes", sizes.scene_size, seed):
                stage.reused()
            roots["fashion_scenes"] = write_scenes(
                clean, split, work / "fashion_scenes", sizes.scene_size, seed
            )
            records["fashion_scenes"] = load_fashion_scenes(roots["fashion_scenes"])
    configs = {}
    with clock("devkits"):
        for variant in sizes.variants:
            vsplit = variant_split(split, variant)
            path = work / f"split_{variant}.json"
            if not path.is_file() or load_split(path) != vsplit:
                vsplit.save(path)
            write_devkit(records[variant], vsplit, work / f"{variant}_voc")
            configs[variant] = variant_config(variant, work, roots[variant], sizes, seed)
    with clock("pretrain") as stage:
        backbone, made = pretrain(clean, split, configs[sizes.variants[0]], sizes, seed)
        if not made:
            stage.reused()
    print(f"[fashion] pre-trained backbone: {backbone}")
    return Prepared(split, records, configs, backbone)


def prepare_fashion_seed(
    work: Path,
    sizes: FashionSizes,
    seed: int,
    data_root: str | Path = DEFAULT_ROOT,
    before_stream: Callable[[ExperimentConfig], object] | None = None,
) -> ExperimentConfig:
    """The first variant's config of ``sizes`` for ``seed``, with its data, backbone and
    segmentation stream in place (what the ablation builds on); ``before_stream(config)``
    is called before the stream is checked."""
    clean = load_fashion_mnist(data_root)
    prepared = prepare(clean, work, sizes, seed, StageClock(prefix=f"seed {seed}: ", tag="fashion"))
    config = prepared.configs[sizes.variants[0]]
    if before_stream is not None:
        before_stream(config)
    segmentation(config, verbose=0)
    return config


def _previous_seconds(work: Path) -> dict[str, float]:
    """The stage times a former call recorded in ``seed_results.json`` (none: {})."""
    try:
        seconds = read_json(work / "seed_results.json", "seed results").get("seconds", {})
        return {str(k): float(v) for k, v in seconds.items()}
    except (OSError, InputError, AttributeError, TypeError, ValueError):
        return {}


def kept_classical(
    record: DatasetRecord,
    split: Split,
    config: ExperimentConfig,
    sizes: FashionSizes,
    work: Path,
    top_k: int,
    keeps: Keeps,
) -> tuple[dict[str, dict[int, float]], bool]:
    """LSH and ITQ rows of a variant (``classical_rows`` on the backbone's features),
    from the keep when kept with the same backbone and split; and whether they were
    not computed now."""
    seed, variant = config.seed, config.dataset
    path = None if keeps.own is None else fk.classical_file(keeps.own, seed, variant)
    key = None if path is None else fk.classical_key(config, sizes, sizes.bits, seed)
    cache = work / f"features_{variant}.npz"
    if path is not None and not cache.is_file():
        stored = fk.read(path, key, "kept LSH and ITQ rows")
        if stored is not None:
            kept = stored["map"]
            return {m: {int(b): float(v) for b, v in r.items()} for m, r in kept.items()}, True
    feats, cached = features(record, split, config, cache)
    rows = classical_rows(feats, record, split, sizes.bits, seed, top_k)
    if path is not None:
        fk.write(path, key, {"map": rows, "machine": machine()})
    return rows, cached


def run_seed(
    clean: DatasetRecord,
    work: Path,
    sizes: FashionSizes,
    seed: int,
    verbose: int = 0,
    keeps: Keeps | None = None,
) -> dict[str, Any]:
    """Every stage for one seed; returns its numbers, run folders and stage timings.
    ``keeps``: where finished stages are kept across sessions (``fashion_keep``)."""
    keeps = keeps or Keeps()
    folders = [k for k in (keeps.own, keeps.ablation) if k is not None]
    restored = sum(kept_inputs.restore_inputs(k, seed, work) for k in folders)
    if restored:
        print(f"[fashion] seed {seed}: {restored} kept backbone and stream files copied back")
    clock = StageClock(prefix=f"seed {seed}: ", tag="fashion", previous=_previous_seconds(work))
    prepared = prepare(clean, work, sizes, seed, clock)
    split, records, configs, backbone = (
        prepared.split,
        prepared.records,
        prepared.configs,
        prepared.backbone,
    )
    result: dict[str, Any] = {"seed": seed, "pretrain": backbone, "variants": {}}
    for variant in sizes.variants:
        config, record = configs[variant], records[variant]
        vsplit = variant_split(split, variant)
        manifests = ((keeps.own, fk.manifest_name(variant)), (keeps.ablation, kept_inputs.MANIFEST))
        for folder, name in manifests:
            if folder is not None:  # a devkit written again: its copied-back stream re-keyed
                run_name = config.segmentation.run_name
                kept_inputs.rekey_streams(folder, seed, work, config, name, run_name)
        with clock(f"{variant} segmentation") as stage:
            seg, made = segmentation(config, verbose)
            if not made:
                stage.reused()
        if keeps.own is not None:
            kept_inputs.save_inputs(keeps.own, seed, work, fk.seed_inputs(config))
            kept_inputs.save_manifest(keeps.own, seed, config, fk.manifest_name(variant))
        runs: dict[str, dict[int, Any]] = {m: {} for m in METHODS}
        for bits in sizes.bits:
            for method in METHODS:
                name = f"{variant} {method}-{bits}b"
                with clock(name) as stage:
                    row = kept_hashing(
                        config,
                        record,
                        vsplit,
                        method,
                        bits,
                        work / "masks" / variant,
                        verbose,
                        sizes,
                        keeps,
                    )
                    if "kept" in row:
                        clock.previous[name] = row["seconds"]
                    if row["reused"]:
                        stage.reused()
                runs[method][bits] = row
                keep_run(keeps, config, sizes, method, bits, row, clock.seconds[name])
                accuracy = row["query_accuracy"]
                source = f", kept, {row['kept']}" if "kept" in row else ""
                source = source or (", reused" if row["reused"] else "")
                print(
                    f"[fashion] seed {seed}: {variant} {method} {bits} bits MAP@{row['top_k']} "
                    f"{row['map']:.4f} (query accuracy "
                    f"{'-' if accuracy is None else f'{accuracy:.3f}'}{source})",
                    flush=True,
                )
        with clock(f"{variant} lsh+itq") as stage:
            top_k = runs["ssdh"][sizes.bits[0]]["top_k"]
            classical, cached = kept_classical(record, vsplit, config, sizes, work, top_k, keeps)
            if cached:  # the features are most of the stage's time
                stage.reused()
        first = runs["ssdh"][sizes.bits[0]]
        result["variants"][variant] = {
            "map": {
                **{m: {b: runs[m][b]["map"] for b in sizes.bits} for m in METHODS},
                **classical,
            },
            "query_accuracy": {
                m: {b: runs[m][b]["query_accuracy"] for b in sizes.bits} for m in METHODS
            },
            "runs": {m: {b: runs[m][b]["run"] for b in sizes.bits} for m in METHODS},
            "kept": {m: {b: runs[m][b].get("kept") for b in sizes.bits} for m in METHODS},
            "seg_mean_iou": float(seg["val_mean_iou"]),
            "chance": first["chance"],
            "top_k": first["top_k"],
            "num_queries": first["num_queries"],
            "num_gallery": first["num_gallery"],
        }
    result["seconds"] = clock.seconds
    write_json(work / "seed_results.json", json.loads(json.dumps(result)))
    return result


# ----------------------------------------------------------------------------- summary

ROWS = (*METHODS, *CLASSICAL)


def known_mean_std(values: Sequence[float | None]) -> dict[str, float] | None:
    """``mean_std`` of the values that are known (not None) with their count ``n``;
    None when none is."""
    known = [v for v in values if v is not None]
    return {**mean_std(known), "n": len(known)} if known else None


def summarize(per_seed: list[dict[str, Any]], sizes: FashionSizes) -> dict[str, Any]:
    """Mean ± std over seeds per variant, method and bits; paired ROL - SSDH; timings."""
    out: dict[str, Any] = {"seeds": [s["seed"] for s in per_seed], "bits": list(sizes.bits)}
    variants = {}
    for v in sizes.variants:
        rows = [s["variants"][v] for s in per_seed]
        variants[v] = {
            "map": {
                m: {str(b): mean_std([r["map"][m][b] for r in rows]) for b in sizes.bits}
                for m in ROWS
            },
            "query_accuracy": {
                m: {
                    str(b): known_mean_std([r["query_accuracy"][m][b] for r in rows])
                    for b in sizes.bits
                }
                for m in METHODS
            },
            "kept_runs": sum(
                r.get("kept", {}).get(m, {}).get(b) is not None
                for r in rows
                for m in METHODS
                for b in sizes.bits
            ),
            "rol_minus_ssdh": {
                str(b): {
                    **mean_std([r["map"]["rol"][b] - r["map"]["ssdh"][b] for r in rows]),
                    "rol_higher": sum(r["map"]["rol"][b] > r["map"]["ssdh"][b] for r in rows),
                    "seeds": len(rows),
                    "verdict": verdict(
                        [r["map"]["ssdh"][b] for r in rows], [r["map"]["rol"][b] for r in rows]
                    ),
                }
                for b in sizes.bits
            },
            "seg_mean_iou": mean_std([r["seg_mean_iou"] for r in rows]),
            "chance": rows[0]["chance"],
            "top_k": rows[0]["top_k"],
            "num_queries": rows[0]["num_queries"],
            "num_gallery": rows[0]["num_gallery"],
        }
    out["variants"] = variants
    out["pretrain_val_accuracy"] = mean_std([s["pretrain"]["val_accuracy"] for s in per_seed])
    stages = list(per_seed[0]["seconds"])
    out["stage_seconds"] = {
        k: mean_std([s["seconds"].get(k, 0.0) for s in per_seed]) for k in stages
    }
    out["sizes"] = asdict(sizes)
    out["per_seed"] = per_seed
    return out


NAMES = {
    "ssdh": "SSDH",
    "rol": "ROL",
    "lsh": "LSH (backbone features)",
    "itq": "ITQ (backbone features)",
}


def accuracy_cell(stat: dict[str, float] | None, n: int) -> str:
    """A query accuracy over seeds: ``pm``, "-" when unknown, and how many seeds it is
    over when fewer than ``n``."""
    if stat is None:
        return "-"
    count = int(stat.get("n", n))
    return pm(stat, count) + ("" if count == n else f" ({count} of {n} seeds)")


def results_markdown(summary: dict[str, Any], wall_seconds: float) -> str:
    """``results.md``: per variant the MAP table, ROL - SSDH, accuracy, mIoU; timings."""
    n = len(summary["seeds"])
    bits = summary["bits"]
    spread = seeds_phrase(summary["seeds"])
    lines = ["# make fashion: SSDH, ROL, LSH and ITQ on Fashion-MNIST, clean and in scenes", ""]
    for variant, v in summary["variants"].items():
        lines += [
            f"## {variant}",
            "",
            f"MAP@{v['top_k']} ({spread}); {v['num_queries']} queries against "
            f"{v['num_gallery']} gallery images; chance (a random ranking) {v['chance']:.3f}.",
            "",
            *map_table({NAMES[m]: v["map"][m] for m in ROWS}, bits, n),
        ]
        diff = v["rol_minus_ssdh"]
        lines += [
            "| ROL - SSDH (ROL higher / seeds) | "
            + " | ".join(
                f"{d['mean']:+.3f} ({d['rol_higher']}/{d['seeds']})"
                for d in (diff[str(b)] for b in bits)
            )
            + " |",
            "",
            *(f"- {b} bits: {diff[str(b)]['verdict']}" for b in bits),
            "",
            "Class head's accuracy on the queries: "
            + "; ".join(
                f"{m.upper()} {b} bits {accuracy_cell(v['query_accuracy'][m][str(b)], n)}"
                for m in METHODS
                for b in bits
            )
            + ". Published test accuracies on the clean test items (the classifiers "
            "trained on all 60,000): "
            + "; ".join(f"{k} {a:.3f}" for k, a in PUBLISHED_ACCURACY.items())
            + ".",
            "",
            f"Segmentation stream (val mean IoU, set-aside images): {pm(v['seg_mean_iou'], n)}.",
            "",
        ]
        if v.get("kept_runs"):
            lines += [
                f"{v['kept_runs']} of {len(METHODS) * len(bits) * n} deep runs were taken "
                "from a keep folder (trained in an earlier session; `--keep`, "
                "`--ablation-keep`); a run kept by the ablation has no query accuracy.",
                "",
            ]
    paper = PAPER_TABLE2["cifar10"]
    lines += [
        "For orientation only (another data set, at 224 px with ImageNet weights): the "
        "paper's CIFAR-10 MAP@1000 (Table 2) is "
        + "; ".join(
            f"{NAMES[m]} " + ", ".join(f"{paper[m][b] / 100:.3f}" for b in bits if b in paper[m])
            for m in METHODS
        )
        + f" at {', '.join(str(b) for b in bits if b in paper['ssdh'])} bits.",
        "",
        f"Pre-trained backbone (held-out sixth of the 5,000 clean training items): "
        f"{pm(summary['pretrain_val_accuracy'], n)} accuracy.",
        "",
        "## Stage times (seconds per seed)",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {k} | {format_seconds(s, n)} |" for k, s in summary["stage_seconds"].items()),
        "",
        f"Wall time: {wall_seconds:.0f} s. A reused stage shows the time of the call that made it.",
        "",
    ]
    return "\n".join(lines)


def scenes_figure(scenes: DatasetRecord, split: Split, count: int = 12):
    """The first ``count`` query scenes with their class and object mask (a Figure)."""
    chosen = scenes.index_of(split.query[:count])
    masks = [(np.asarray(scenes.object_masks[i]) == 1).astype(np.float32) for i in chosen]
    return viz.plot_examples(
        [np.asarray(scenes.images[i]) for i in chosen],
        [scenes.class_names[int(scenes.labels[i])] for i in chosen],
        masks,
    )


def figure_seed(per_seed: list[dict[str, Any]], variant: str, bits: int) -> dict | None:
    """The first seed whose SSDH and ROL runs at ``bits`` have their models in the work
    folder (a run taken from a keep has none); None when no seed's have."""
    for seed in per_seed:
        runs = seed["variants"][variant]["runs"]
        if all(fk.has_model(runs[m][bits]) for m in METHODS):
            return seed
    return None


def write_figures(out_dir: Path, summary: dict[str, Any], work: Path | None = None) -> None:
    """Per variant: MAP against bits, the top-10 strips and the ROL masks (the first seed
    whose longest-code runs are in the work folder); with the first seed's ``work``
    folder, ``scenes_examples.png``."""
    if work is not None and (work / "fashion_scenes" / "meta.json").is_file():
        scenes = load_fashion_scenes(work / "fashion_scenes")
        split = load_split(work / "split_fashion_scenes.json", scenes)
        viz.save(scenes_figure(scenes, split), out_dir / "scenes_examples.png")
    for variant, v in summary["variants"].items():
        series = {
            NAMES[m]: {int(b): (s["mean"], s["std"]) for b, s in v["map"][m].items()} for m in ROWS
        }
        viz.save(
            viz.plot_map_vs_bits(series, chance=v["chance"], title=f"{variant}: MAP@{v['top_k']}"),
            out_dir / f"map_vs_bits_{variant}.png",
        )
        bits = max(summary["bits"])
        first = figure_seed(summary["per_seed"], variant, bits)
        if first is None:
            print(
                f"[fashion] {variant}: no seed's {bits}-bit runs are in the work folder (kept "
                f"rows only), so rol_masks_{variant}.png and retrieval_top10_{variant}.png "
                "are not made"
            )
            continue
        runs = first["variants"][variant]["runs"]
        ssdh_run, rol_run = runs["ssdh"][bits], runs["rol"][bits]
        viz.save(rol_masks_figure(rol_run), out_dir / f"rol_masks_{variant}.png")
        fig = retrieval_figure(ssdh_run, rol_run, first["seed"], v["top_k"], bits)
        viz.save(fig, out_dir / f"retrieval_top10_{variant}.png")


def run_fashion(
    out_dir: str | Path = "results/fashion",
    work_dir: str | Path = "runs/fashion",
    data_root: str | Path = DEFAULT_ROOT,
    seeds: Sequence[int] = (0,),
    quick: bool = False,
    sizes: FashionSizes | None = None,
    verbose: int = 0,
    keep_dir: str | Path | None = None,
    ablation_keep_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Runs every stage per seed (reusing finished ones), then writes the results.

    Args:
        out_dir: where ``results.md``, ``results.json`` and the figures go.
        work_dir: per seed ``<work_dir>/seed<k>/``: split, scenes, devkits, backbone, runs.
        data_root: the folder holding the four IDX files.
        seeds: one full pipeline per seed.
        quick: ``QUICK`` sizes (the tests' tiny IDX fixture).
        sizes: explicit sizes (overrides ``quick``).
        verbose: Keras progress output of the segmentation and hashing fits.
        keep_dir: a folder that outlives the session (``fashion_keep``): each seed's
            backbone and streams, each finished deep run's row, the LSH and ITQ rows.
            A later session with an empty work folder trains only what is not kept.
        ablation_keep_dir: ``ablate --keep``'s folder for ``fashion_scenes`` (or
            ``fashion_mnist``): its backbones and streams are copied back too, and its
            SSDH and paper-ROL runs are taken when its key for them is the run asked for.
    """
    if not seeds:
        raise InputError("seeds is empty: give at least one seed")
    wall = Stopwatch()
    sizes = sizes or (QUICK if quick else FashionSizes())
    unknown = [v for v in sizes.variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    for variant in sizes.variants:
        get_dataset_spec(variant)
    out_dir, work_dir = check_folder_target(out_dir), Path(work_dir)  # before any run
    keeps = Keeps(
        None if keep_dir is None else check_folder_target(keep_dir),
        None if ablation_keep_dir is None else Path(ablation_keep_dir),
        quick=sizes.profile == QUICK.profile,
    )
    if keeps.ablation is not None and not keeps.ablation.is_dir():
        raise InputError(f"{keeps.ablation}: no such folder (the ablation's --keep folder)")
    clean = load_fashion_mnist(data_root)
    print(clean.summary())
    per_seed = [
        run_seed(clean, work_dir / f"seed{s}", sizes, int(s), verbose, keeps) for s in seeds
    ]
    summary = summarize(per_seed, sizes)
    write_figures(out_dir, summary, work_dir / f"seed{seeds[0]}")
    summary["wall_seconds"] = round(wall(), 1)
    atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=1, default=float) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(summary, summary["wall_seconds"]))
    print(f"[fashion] results in {out_dir}/ (results.md, results.json, figures)")
    print(f"[fashion] wall time {summary['wall_seconds']:.0f} s")
    return summary
