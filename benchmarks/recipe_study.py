"""Which cpu recipe learns clutter and small sets? The pre-registered study of docs/recipe.md.

Four cells: two families (Fashion-MNIST test items in photo scenes; the own-images
check's digits on textured backgrounds) at 100 and 300 training images per class, each
with 100 queries and 500 gallery images per class (the training images are part of the
gallery, as in the paper's CIFAR-10 protocol). Fashion items come from the t10k part
only, so the generic backbone (all 60,000 training items) never saw a query.

Each recipe is a set of levers (``LEVERS``, in the declared order); the study measures
the cumulative recipes R0 (today's cpu route) ... R6, then the chosen recipe without
each of its levers, and applies the rule of docs/recipe.md. SSDH at 48 bits, seed 0.
Every (recipe, cell) result is a small JSON file in ``benchmarks/recipe_cells/``, kept
in the repository and reused when its key (content digests, not paths or mtimes) is
the one asked for: the study resumes across sessions and machines. The generic backbone
is shipped in ``weights/`` with its sidecar (``make generic-backbone`` makes it again).
R0-R4 were measured before the cells were kept in the repository; their numbers, as the
closing note of that session reported them, are in ``recipe_cells/recorded.json`` and
stand for them unless ``--remeasure`` is given (docs/recipe.md, "Recorded cells").

    python -m benchmarks.recipe_study --work runs/recipe      # make recipe-study
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.common import machine
from benchmarks.own_images_check import _font, render_digit
from rol_hashing.data.fashion import DEFAULT_ROOT, load_fashion_mnist
from rol_hashing.data.fashion_sets import load_fashion_scenes, split_sha256, write_scenes
from rol_hashing.data.fileio import read_json
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.splits import Split
from rol_hashing.errors import InputError
from rol_hashing.freshness import (
    array_digest,
    file_digest,
    make_key,
    records_parts,
    text_digest,
)
from rol_hashing.io import atomic_write_text, write_json

QUERY_PER_CLASS = 100
GALLERY_PER_CLASS = 500
SET_ASIDE_PER_CLASS = 200  # fashion: for a segmentation stream (the ROL check)
SIZES = (100, 300)
FAMILIES = ("fashion_scenes", "digits")
BITS = 48
SEED = 0
PRETRAIN_EPOCHS = 15
PRETRAIN_LR = 5e-4
GENERIC_EPOCHS = 5
# With "gap", the generic backbone is made once, at 64 px: its fc1 fits any input size
# (with "flatten" it is made at the model's size).
GENERIC_SIZE = 64
# The rule's margins (docs/recipe.md): a recipe within TIE of the best that trains
# faster wins; a lever whose removal costs less than TIE is dropped.
TIE = 0.01
# Committed: the cells' results (and the recorded R0-R4), and the generic backbone.
CELLS_DIR = Path(__file__).resolve().parent / "recipe_cells"
GENERIC_DIR = Path(__file__).resolve().parent.parent / "weights"
RECORDED_FILE = "recorded.json"


@dataclass(frozen=True)
class Lever:
    """One change to today's cpu route: config overrides and where the backbone comes from."""

    name: str
    why: str
    model: dict = field(default_factory=dict)
    hashing: dict = field(default_factory=dict)
    generic_backbone: bool = False


# The declared order: R_k is R0 plus the first k levers.
LEVERS: tuple[Lever, ...] = (
    Lever("batch_norm", "VGG16-BN: BatchNormalization after every conv", {"batch_norm": True}),
    Lever("gap", "global average pooling before fc1", {"pooling": "gap"}),
    Lever(
        "adam_15",
        "AdamW 1e-3 with a 1-epoch warm-up, 15 epochs, 1e-4 from epoch 11",
        hashing={
            "optimizer": "adam",
            "learning_rate": 1e-3,
            "warmup_epochs": 1,
            "epochs": 15,
            "lr_drop_epoch": 10,
            "learning_rate_after_drop": 1e-4,
        },
    ),
    Lever(
        "augment",
        "random crops (60-100 % of the area) and colour changes, in pre-training too",
        hashing={"augment": "crop_colour"},
    ),
    Lever(
        "generic",
        "a generic backbone pre-trained once on all 60,000 Fashion-MNIST training items "
        "instead of on the cell's own training images",
        generic_backbone=True,
    ),
    Lever("input_96", "input 96 px instead of 64", {"input_size": 96}),
)
LEVER_NAMES = tuple(lever.name for lever in LEVERS)


def recipe_name(levers: tuple[str, ...]) -> str:
    """``"R0"`` for none, ``"R3"`` for the first three, else ``"+a+b"`` joined names."""
    for k in range(len(LEVERS) + 1):
        if tuple(levers) == LEVER_NAMES[:k]:
            return f"R{k}"
    return "+".join(levers) if levers else "R0"


# ----------------------------------------------------------------------------- data


def _per_class_split(
    ids: list[str], labels: np.ndarray, rng: np.random.Generator, set_aside: int = 0
) -> dict[str, dict[int, list[str]]]:
    """Per class, seeded: query, gallery (of which the first n train) and set aside."""
    parts: dict[str, dict[int, list[str]]] = {"query": {}, "gallery": {}, "set_aside": {}}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        need = QUERY_PER_CLASS + GALLERY_PER_CLASS + set_aside
        if len(members) < need:
            raise InputError(f"class {c} has {len(members)} images, the study needs {need}")
        q, g = QUERY_PER_CLASS, QUERY_PER_CLASS + GALLERY_PER_CLASS
        parts["query"][int(c)] = [ids[k] for k in members[:q]]
        parts["gallery"][int(c)] = [ids[k] for k in members[q:g]]
        parts["set_aside"][int(c)] = [ids[k] for k in members[g:need]]
    return parts


def cell_split(parts: dict, n: int, dataset: str) -> Split:
    """The split of one cell: n training images per class, taken from its gallery."""
    classes = sorted(parts["query"])
    return Split(
        dataset=dataset,
        seed=SEED,
        train=tuple(i for c in classes for i in parts["gallery"][c][:n]),
        query=tuple(i for c in classes for i in parts["query"][c]),
        gallery=tuple(i for c in classes for i in parts["gallery"][c]),
        set_aside=tuple(i for c in classes for i in parts["set_aside"][c]),
    )


@dataclass
class Family:
    """A family's record (hashing images), its per-class parts and the pre-training pool."""

    name: str
    record: DatasetRecord
    parts: dict
    pretrain_record: DatasetRecord  # own pre-training: clean items (fashion) or the images


def fashion_family(work: Path, data_root: str | Path) -> Family:
    """t10k items: 100 query + 500 gallery (+200 set aside) per class, in photo scenes."""
    clean = load_fashion_mnist(data_root)
    test = np.array([i.startswith("t10k/") for i in clean.ids])
    keep = np.flatnonzero(test)
    rng = np.random.default_rng([SEED, 41])
    ids = [clean.ids[k] for k in keep]
    parts = _per_class_split(ids, clean.labels[keep], rng, SET_ASIDE_PER_CLASS)
    wanted = [i for part in parts.values() for members in part.values() for i in members]
    pos = np.sort(clean.index_of(wanted))
    chosen = [clean.ids[k] for k in pos]
    sub = dataclasses.replace(
        clean,
        labels=clean.labels[pos],
        ids=list(chosen),
        images=clean.images[pos],
        object_masks=None if clean.object_masks is None else clean.object_masks[pos],
        predefined_split=None,
    )
    split = cell_split(parts, max(SIZES), "fashion_scenes")
    root = write_scenes(sub, split, work / "data" / "fashion_scenes", 64, SEED)
    return Family("fashion_scenes", load_fashion_scenes(root), parts, sub)


def digits_family(work: Path) -> Family:
    """The own-images check's digits (80 px), 600 per class as class folders."""
    root = work / "data" / "digits"
    per_class = QUERY_PER_CLASS + GALLERY_PER_CLASS
    done = root / "done.json"
    made = make_key("digits_data", per_class=per_class, seed=SEED, size=80)
    if _reuse(done, made) is None:
        font = _font()
        for d in range(10):
            folder = root / str(d)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image, _ = render_digit(np.random.default_rng([SEED, 1, d, i]), d, 80, font)
                Image.fromarray(image).save(folder / f"d{d}_{i:04d}.png")
        write_json(done, {"key": made})
    record = load_class_folders(root)
    rng = np.random.default_rng([SEED, 43])
    parts = _per_class_split(record.ids, record.labels, rng)
    return Family("digits", record, parts, record)


# ----------------------------------------------------------------------------- runs


# R0 pinned: the cpu profiles' values of every key a lever sets, as they were when the
# study was declared (docs/recipe.md), so that R0 stays "today's cpu route" (and the
# kept cells' keys stay fresh) after the chosen recipe becomes the profiles' default.
R0_MODEL = {"input_size": 64, "width": 0.25, "batch_norm": False, "pooling": "flatten"}
R0_HASHING = {
    "optimizer": "sgd",
    "learning_rate": 1e-3,
    "warmup_epochs": 0,
    "epochs": 5,
    "learning_rate_after_drop": 1e-4,
    "augment": "none",
    "batch_size": 32,
}
R0_LR_DROP = {"fashion_scenes": 4, "folders": 20}  # folders: no drop within 5 epochs


def lever_settings(levers: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model, hashing)`` settings of R0 with ``levers``' overrides applied, in the
    declared order (no paths, no learning-rate drop unless a lever sets one)."""
    model: dict[str, Any] = dict(R0_MODEL)
    hashing: dict[str, Any] = dict(R0_HASHING)
    for lever in LEVERS:
        if lever.name in levers:
            model |= lever.model
            hashing |= lever.hashing
    return model, hashing


def cell_config(
    family: str, data_root: str | Path, levers: tuple[str, ...], cell_dir: Path, backbone: str
):
    """The cpu profile of ``family`` (its name) with the levers' overrides, pointed at
    the family's data and the cell's folders."""
    from rol_hashing.training.config import load_config

    experiment = "fashion_scenes" if family == "fashion_scenes" else "folders"
    model, hashing = lever_settings(levers)
    model |= {"backbone_weights": backbone}
    hashing = {"lr_drop_epoch": R0_LR_DROP[experiment]} | hashing  # a lever's drop wins
    overrides = {
        "data_root": str(data_root),
        "runs_dir": str(cell_dir / "runs"),
        "seed": SEED,
        "split_file": str(cell_dir / "split.json"),
        "model": model,
        "hashing": hashing,
    }
    return load_config(experiment, "cpu", overrides)


def backbone_key(config, pool: str) -> dict:
    """What a pre-trained backbone depends on (its file is reused when this matches)."""
    m, h = config.model, config.hashing
    return {
        "pool": pool,
        "vgg": m.vgg,
        "input_size": m.input_size,
        "width": m.width,
        "batch_norm": m.batch_norm,
        "pooling": m.pooling,
        "augment": h.augment,
        "mirror": h.augment_mirror,
        "epochs": PRETRAIN_EPOCHS,
        "learning_rate": PRETRAIN_LR,
        "turns": False,
        "seed": SEED,
    }


def content_parts(record: DatasetRecord, indices: np.ndarray) -> dict:
    """Ids, labels and the images' *content* of ``record[indices]``: array bytes, or each
    file's SHA-256 (not its mtime, as ``records_parts`` has it), so that a committed cell
    stays fresh on a machine that wrote the same images again."""
    idx = np.asarray(indices, np.int64)
    if record.images is not None:
        pixels = array_digest(np.asarray(record.images)[idx])
    else:
        pixels = text_digest([file_digest(record.paths[int(k)]) for k in idx])
    return {
        "ids": text_digest([record.ids[int(k)] for k in idx]),
        "labels": array_digest(np.asarray(record.labels)[idx]),
        "pixels": pixels,
    }


def _reuse(path: Path, key: dict) -> dict | None:
    """The stored result at ``path`` when its key is ``key`` (``reuse.fresh_result``)."""
    from rol_hashing.experiments.reuse import fresh_result  # lazy: TensorFlow

    return fresh_result(path, key, "study result")


def _timed(make) -> dict[str, Any]:
    """``make()``'s report with the seconds it took."""
    start = time.perf_counter()
    result = make()
    return {"seconds": round(time.perf_counter() - start, 1), **result}


def own_backbone(family: Family, config, split: Split, out: Path) -> tuple[Path, float]:
    """Pre-trains on the cell's training items (fashion: their clean versions); reused
    by the freshness rule (``experiments.reuse.backbone``). Returns the file and the
    seconds its making took (a recipe's cost counts its pre-training, reused or not)."""
    from rol_hashing.experiments import reuse
    from rol_hashing.training.pretrain import pretrain_on_record

    pool = family.pretrain_record
    indices = pool.index_of(split.train)
    key = make_key(
        "backbone",
        **backbone_key(config, f"{family.name}:{len(split.train)}"),
        **records_parts(pool, indices),
    )
    report, _ = reuse.backbone(
        out,
        key,
        lambda: _timed(
            lambda: pretrain_on_record(
                pool,
                indices,
                out,
                config,
                SEED,
                epochs=PRETRAIN_EPOCHS,
                learning_rate=PRETRAIN_LR,
                verbose=0,
                turns_and_mirrors=False,
                augment=config.hashing.augment,
            )
        ),
    )
    return out, float(report["seconds"])


def generic_backbone(
    config,
    out: Path,
    data_root: str | Path,
    make: bool = True,
    levers: tuple[str, ...] = (),
) -> tuple[Path, float]:
    """Pre-trains once on all 60,000 Fashion-MNIST training items (streamed), at
    ``GENERIC_SIZE`` px with "gap"; returns the file and the seconds its making took.
    ``make`` False: a missing or stale file is an error naming the command that makes
    it (``levers``: the recipe's, for that command) instead of being made here."""
    from rol_hashing.experiments import reuse
    from rol_hashing.training.pretrain import pretrain_on_record

    if config.model.pooling == "gap":  # fc1 sees channel means: one file for every size
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, input_size=GENERIC_SIZE)
        )
    clean = load_fashion_mnist(data_root)
    train = np.flatnonzero([i.startswith("train/") for i in clean.ids])
    key = make_key(
        "backbone",
        **(backbone_key(config, "fashion_mnist:train60000") | {"epochs": GENERIC_EPOCHS}),
        **records_parts(clean, train),
    )

    def making() -> dict[str, Any]:
        if not make:
            raise InputError(
                f"{out} is missing or stale (its sidecar's key or digest does not match) and "
                f"this study makes no backbone (--no-make): make it with "
                f"`{generic_command(levers)}`"
            )
        print(f"[recipe] generic backbone: {len(train)} items, {GENERIC_EPOCHS} epochs", flush=True)
        return pretrain_on_record(
            clean,
            train,
            out,
            config,
            SEED,
            epochs=GENERIC_EPOCHS,
            learning_rate=PRETRAIN_LR,
            verbose=2,
            turns_and_mirrors=False,
            stream=True,
            augment=config.hashing.augment,
            resume=True,  # after the last finished epoch of an interrupted making
        )

    report, _ = reuse.backbone(out, key, lambda: _timed(making))
    return out, float(report["seconds"])


def run_cell(
    family: Family,
    n: int,
    levers: tuple[str, ...],
    work: Path,
    data_root: str | Path,
    cells: Path | None = None,
    generic_dir: Path | None = None,
    measure_missing: bool = True,
    make_backbones: bool = True,
) -> dict[str, Any] | None:
    """One recipe on one cell: pre-training (unless generic), SSDH 48 bits, evaluation
    (``measure_missing`` False: only a kept, fresh result, else None).

    The result is ``<cells>/<recipe>__<cell>.json`` (default ``<work>/cells``), the
    generic backbone ``<generic_dir>/generic_fashion60k_<arch>.h5`` (default
    ``<work>/backbones``); runs, data and own backbones stay under ``work``."""
    from rol_hashing.evaluation.evaluate import evaluate_run
    from rol_hashing.training.hashing import train_hashing

    name = recipe_name(levers)
    cell = f"{family.name}_{n}"
    cells = work / "cells" if cells is None else Path(cells)
    result_path = cells / f"{name}__{cell}.json"
    cell_dir = work / "cells" / f"{name}__{cell}"
    split = cell_split(family.parts, n, family.record.name)
    config = cell_config(family.name, family.record.root, levers, cell_dir, "none")
    settings = config.to_dict()
    for path_key in ("data_root", "runs_dir", "split_file"):
        settings.pop(path_key)
    settings["model"].pop("backbone_weights")
    settings["hashing"].pop("segmentation_model")
    key = make_key(
        "recipe_cell",
        levers=list(levers),
        cell=cell,
        bits=BITS,
        seed=SEED,
        config=settings,  # what the levers and the profile resolve to
        counts=[QUERY_PER_CLASS, GALLERY_PER_CLASS, len(split.train)],
        split_sha256=split_sha256(split),
        backbone=backbone_key(config, "generic" if "generic" in levers else cell)
        | ({"generic_epochs": GENERIC_EPOCHS} if "generic" in levers else {}),
        **content_parts(family.record, family.record.index_of(split.query + split.gallery)),
    )
    if stored := _reuse(result_path, key):
        return stored
    if not measure_missing:
        return None
    cell_dir.mkdir(parents=True, exist_ok=True)
    split.save(cell_dir / "split.json")
    if "generic" in levers:
        folder = work / "backbones" if generic_dir is None else Path(generic_dir)
        backbone, generic_seconds = generic_backbone(
            config, folder / generic_name(config), data_root, make_backbones, levers
        )
        pre_seconds = 0.0  # the one-off generic backbone is reported apart
    else:
        weights_name = f"own_{cell}_" + "_".join(_arch(config)) + ".h5"
        backbone, pre_seconds = own_backbone(
            family, config, split, work / "backbones" / weights_name
        )
        generic_seconds = 0.0
    config = cell_config(family.name, family.record.root, levers, cell_dir, str(backbone))
    start = time.perf_counter()
    run = train_hashing(config, "ssdh", BITS, overwrite=True, verbose=0, record=family.record)
    train_seconds = round(time.perf_counter() - start, 1)
    metrics = evaluate_run(run.path, verbose=0, record=family.record)
    out = {
        "key": key,
        "recipe": name,
        "cell": cell,
        "map": float(metrics["map_at_k"]),
        "chance": float(metrics["chance"]),
        "top_k": int(metrics["top_k"]),
        "queries": int(metrics["num_queries"]),
        "gallery": int(metrics["num_gallery"]),
        "pretrain_seconds": pre_seconds,
        "generic_seconds": generic_seconds,
        "hashing_seconds": train_seconds,
        "backbone": str(backbone.name) if "generic" in levers else str(backbone),
        "machine": machine(),  # numbers move between CPUs: the table says where
    }
    write_json(result_path, out)
    print(
        f"[recipe] {name} {cell}: MAP@{out['top_k']} {out['map']:.3f} (chance "
        f"{out['chance']:.3f}; pretrain {pre_seconds:.0f} s, hashing {train_seconds:.0f} s)",
        flush=True,
    )
    return out


def generic_name(config) -> str:
    """The generic backbone's file name: ``generic_fashion60k_bn_gap_crop_colour.h5``
    (with "gap" the input size is left out: one file serves every size)."""
    arch = _arch(config)[1 if config.model.pooling == "gap" else 0 :]
    return "generic_fashion60k_" + "_".join(arch) + ".h5"


def _arch(config) -> tuple:
    m, h = config.model, config.hashing
    return (
        f"s{m.input_size}",
        "bn" if m.batch_norm else "nobn",
        m.pooling,
        h.augment,
    )


# ----------------------------------------------------------------------------- the rule


def score(rows: dict[str, dict[str, Any]]) -> float:
    """S: the mean MAP over the cells of one recipe."""
    return float(np.mean([r["map"] for r in rows.values()]))


def cost(rows: dict[str, dict[str, Any]]) -> float:
    """Training seconds of one recipe over the cells (own pre-training + hashing; the
    generic backbone's one-off cost is reported apart)."""
    return float(sum(r["pretrain_seconds"] + r["hashing_seconds"] for r in rows.values()))


def choose(table: dict[str, dict[str, dict[str, Any]]], cumulative: list[str]) -> str:
    """Rule step 2: the best cumulative recipe by S; a faster one within TIE wins."""
    best = max(cumulative, key=lambda r: score(table[r]))
    close = [r for r in cumulative if score(table[r]) >= score(table[best]) - TIE]
    return min(close, key=lambda r: cost(table[r]))


@dataclass(frozen=True)
class Where:
    """Where the study keeps things: ``work`` (data, runs, own backbones; not kept),
    ``cells`` (results, kept), ``generic_dir`` (the generic backbone, shipped)."""

    work: Path
    data_root: str | Path
    cells: Path = CELLS_DIR
    generic_dir: Path = GENERIC_DIR
    remeasure: frozenset[str] = frozenset()  # recorded recipes to measure anyway ("all")
    # False: a recipe whose generic backbone is not made yet waits (another process, or
    # a later session, makes it with make generic-backbone WITHOUT=...) instead of the
    # study making it itself.
    make_backbones: bool = True
    # False (--report): nothing is trained; the table holds the recipes whose cells are
    # all kept, and the rule goes as far as they take it.
    measure: bool = True


def load_recorded(cells: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``recipe -> cell -> row`` of ``<cells>/recorded.json`` (``{}`` when absent): cells
    measured before their files were kept, as the closing note that reported them has
    them. A row holds the MAP and, as its cost, the recipe's total over its cells split
    evenly (the note gave totals only); ``"recorded"`` names the source."""
    path = Path(cells) / RECORDED_FILE
    if not path.is_file():
        return {}
    content = read_json(path, "recorded recipe cells")
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name, entry in content["recipes"].items():
        maps = entry["map"]
        share = float(entry["cost_seconds"]) / len(maps)
        table[name] = {
            cell: {
                "recipe": name,
                "cell": cell,
                "map": float(value),
                "chance": float(content["chance"]),
                "pretrain_seconds": 0.0,
                "generic_seconds": 0.0,
                "hashing_seconds": share,
                "recorded": f"{content['source']} (measured by {entry['commit']})",
            }
            for cell, value in maps.items()
        }
    return table


def measure(
    recipes: dict[str, tuple[str, ...]],
    families: dict[str, Family],
    where: Where,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every recipe on every cell: a kept cell file is reused, a recorded recipe stands
    for its cells when one of its cell files is missing (unless ``where.remeasure``
    names it, or "all"), the rest is measured (``where.measure`` False: a recipe with a
    cell not kept is left out of the table)."""
    recorded = {} if "all" in where.remeasure else load_recorded(where.cells)
    recorded = {k: v for k, v in recorded.items() if k not in where.remeasure}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name, levers in recipes.items():
        cells = [f"{family.name}_{n}" for family in families.values() for n in SIZES]
        kept = all((where.cells / f"{name}__{c}.json").is_file() for c in cells)
        if name in recorded and not kept and set(recorded[name]) == set(cells):
            print(f"[recipe] {name}: recorded ({next(iter(recorded[name].values()))['recorded']})")
            table[name] = recorded[name]
            continue
        # --no-make: a recipe whose generic backbone is not made reads its kept cells only
        measure_missing = where.measure and (where.make_backbones or generic_ready(levers, where))
        rows = {
            f"{family.name}_{n}": run_cell(
                family,
                n,
                levers,
                where.work,
                where.data_root,
                where.cells,
                where.generic_dir,
                measure_missing,
                where.make_backbones,
            )
            for family in families.values()
            for n in SIZES
        }
        if all(row is not None for row in rows.values()):
            table[name] = rows
    return table


def study(where: Where, upto: int | None = None) -> dict[str, Any]:
    """Steps 1-3 of docs/recipe.md; returns everything measured and the choice. When a
    step lacks a recipe (``--report``: a cell not kept; ``--no-make``: a generic
    backbone not made), it stops there with ``"waiting"`` and ``"unmeasured"``."""
    work = where.work
    families = {
        "fashion_scenes": fashion_family(work, where.data_root),
        "digits": digits_family(work),
    }
    k_max = len(LEVERS) if upto is None else upto
    cumulative = {f"R{k}": LEVER_NAMES[:k] for k in range(k_max + 1)}
    table = measure(cumulative, families, where)
    out: dict[str, Any] = {"levers": {lv.name: lv.why for lv in LEVERS}, "recipes": {}}
    out["recipes"] = {name: list(levers) for name, levers in cumulative.items()}
    if missing := _missing(cumulative, table, where):
        return out | {"table": table} | missing
    if upto is not None:  # R0..R<upto> only: no choice yet
        out["table"] = table
        return out
    chosen = choose(table, list(cumulative))
    out["chosen_by_step_2"] = chosen
    levers = cumulative[chosen]
    # step 3: the chosen recipe without each of its levers
    without = {f"{chosen}-{lv}": tuple(x for x in levers if x != lv) for lv in levers}
    out["recipes"] |= {k: list(v) for k, v in without.items()}
    same = {k: _named(v, cumulative) for k, v in without.items()}  # R6-input_96 is R5
    pending = {k: v for k, v in without.items() if same[k] not in table}
    # Those whose backbone is already made first (the order changes no cell's result):
    # a session that ends while a generic backbone is being made has measured the rest.
    order = sorted(pending, key=lambda k: not generic_ready(pending[k], where))
    table |= measure({k: pending[k] for k in order}, families, where)
    if missing := _missing({k: pending[k] for k in order}, table, where):
        return out | {"table": table} | missing
    loss = {}
    for lv, name in zip(levers, without, strict=True):
        rows = table[name if name in table else same[name]]
        loss[lv] = score(table[chosen]) - score(rows)
    dropped = tuple(lv for lv in levers if loss[lv] < TIE)
    final = chosen
    if dropped:
        lean = tuple(lv for lv in levers if lv not in dropped)
        # one lever dropped: the lean recipe is that leave-one-out, already measured
        lean_name = _named(lean, cumulative | without)
        if lean_name not in table:
            table |= measure({lean_name: lean}, families, where)
            if missing := _missing({lean_name: lean}, table, where):
                return out | {"table": table, "removal_loss": loss} | missing
        if score(table[lean_name]) >= score(table[chosen]) - TIE:
            final = lean_name
            out["recipes"][lean_name] = list(lean)
    out |= {
        "table": table,
        "scores": {r: score(rows) for r, rows in table.items()},
        "costs": {r: cost(rows) for r, rows in table.items()},
        "removal_loss": loss,
        "dropped": list(dropped),
        "final": final,
        "final_levers": list(out["recipes"].get(final, levers)),
    }
    return out


def _named(levers: tuple[str, ...], known: dict[str, tuple[str, ...]]) -> str:
    """The name of the ``known`` recipe with these ``levers`` (R6 less input_96 is R5),
    else ``recipe_name(levers)``."""
    return next((k for k, v in known.items() if v == levers), recipe_name(levers))


def _missing(
    recipes: dict[str, tuple[str, ...]], table: dict[str, Any], where: Where
) -> dict[str, Any]:
    """``{"waiting": {recipe: {file, command}}, "unmeasured": [recipe]}`` of the
    ``recipes`` not in ``table`` (empty when all are): a recipe waits when this study
    makes no backbone and its generic backbone is not made, else it is unmeasured."""
    absent = {k: v for k, v in recipes.items() if k not in table}
    if not absent:
        return {}
    waiting = {
        name: {
            "file": generic_name(_generic_config(levers, where)),
            "command": generic_command(levers),
        }
        for name, levers in absent.items()
        if not where.make_backbones and not generic_ready(levers, where)
    }
    return {"waiting": waiting, "unmeasured": [k for k in absent if k not in waiting]}


def generic_command(levers: tuple[str, ...]) -> str:
    """The make command that makes the generic backbone of ``levers`` (R5 or R6 less
    some levers): ``make generic-backbone WITHOUT="gap" OF=R6``."""
    of = "R6" if "input_96" in levers else "R5"
    base = LEVER_NAMES[: int(of[1:])]
    gone = " ".join(lv for lv in base if lv not in levers)
    return (
        "make generic-backbone"
        + (f' WITHOUT="{gone}"' if gone else "")
        + (" OF=R6" if of == "R6" else "")
    )


def results_markdown(result: dict[str, Any]) -> str:
    """The study's table (recipes x cells), S, cost and the rule's steps."""
    table = result["table"]
    if not table:
        return (
            f"## Recipe study ({time.strftime('%Y-%m-%d')})\n\nNo recipe has all its cells yet"
            f" (not measured: {', '.join(result.get('unmeasured', [])) or 'none'}).\n"
        )
    cells = list(next(iter(table.values())))
    chance = next(iter(next(iter(table.values())).values()))["chance"]
    lines = [
        f"## Recipe study ({time.strftime('%Y-%m-%d')}): SSDH MAP@1000 at {BITS} bits, seed {SEED}",
        "",
        f"Cells: family_n = n training images per class; {QUERY_PER_CLASS} queries and "
        f"{GALLERY_PER_CLASS} gallery images per class; chance {chance:.3f}.",
        "",
        "| recipe | levers | " + " | ".join(cells) + " | S | cost (s) |",
        "|---|---|" + "---|" * len(cells) + "---|---|",
    ]
    for name, rows in table.items():
        lever_text = ", ".join(result["recipes"].get(name, [])) or (
            "(none: today's cpu route)" if name == "R0" else name
        )
        mark = " (recorded)" if any("recorded" in r for r in rows.values()) else ""
        lines.append(
            f"| {name}{mark} | {lever_text} | "
            + " | ".join(f"{rows[c]['map']:.3f}" for c in cells)
            + f" | {score(rows):.3f} | {cost(rows):.0f} |"
        )
    by_source: dict[str, list[str]] = {}  # one source, each recipe with its commit
    for name, rows in table.items():
        text = next((r["recorded"] for r in rows.values() if "recorded" in r), None)
        if text is not None:
            source, _, commit = text.rpartition(" (measured by ")
            mark = f"{name} by {commit.rstrip(')')[:7]}" if source else name
            by_source.setdefault(source or text, []).append(mark)
    if by_source:
        lines += [
            "",
            "Recorded rows (no cell file; cost split evenly over the cells): "
            + "; ".join(f"{src}: {', '.join(marks)}" for src, marks in by_source.items())
            + ".",
        ]
    machines = sorted(
        {r["machine"] for rows in table.values() for r in rows.values() if "machine" in r}
    )
    if machines:
        lines += ["", "Measured on: " + "; ".join(machines) + "."]
    generic = {
        r["backbone"]: r["generic_seconds"]
        for rows in table.values()
        for r in rows.values()
        if r.get("generic_seconds")
    }
    if generic:
        lines += [
            "",
            "The generic backbones' one-off making (not in any cost): "
            + "; ".join(f"{name} {seconds:.0f} s" for name, seconds in sorted(generic.items()))
            + ".",
        ]
    if "final" not in result and (result.get("waiting") or result.get("unmeasured")):
        text = (
            [f"Step 2 chose {result['chosen_by_step_2']}."] if "chosen_by_step_2" in result else []
        )
        if result.get("waiting"):
            text.append(
                "Waiting for generic backbones not made yet: "
                + "; ".join(
                    f"{r} needs {w['file']} (`{w['command']}`)"
                    for r, w in result["waiting"].items()
                )
                + "."
            )
        if result.get("unmeasured"):
            text.append("Not measured yet: " + ", ".join(result["unmeasured"]) + ".")
        lines += ["", " ".join(text)]
    if "final" in result:
        lines += [
            "",
            f"Step 2 chose {result['chosen_by_step_2']}. Removal losses (S of the chosen "
            "minus S without the lever): "
            + ", ".join(f"{k} {v:+.3f}" for k, v in result["removal_loss"].items())
            + f". Dropped (loss < {TIE}): {', '.join(result['dropped']) or 'none'}. "
            f"Final recipe: {result['final']} = {', '.join(result['final_levers'])}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/recipe", help="data, runs and own backbones")
    p.add_argument("--data-root", default=str(DEFAULT_ROOT), help="Fashion-MNIST's IDX files")
    p.add_argument(
        "--upto",
        type=int,
        choices=range(len(LEVERS) + 1),
        default=None,
        help="measure R0..R<k> only (a partial session)",
    )
    p.add_argument("--cells", default=str(CELLS_DIR), help="the cells' results (kept)")
    p.add_argument(
        "--generic-dir", default=str(GENERIC_DIR), help="where the generic backbone is (shipped)"
    )
    p.add_argument(
        "--remeasure",
        nargs="+",
        default=[],
        metavar="RECIPE",
        help="measure these recorded recipes again (R4 ..., or all)",
    )
    p.add_argument(
        "--generic-only",
        action="store_true",
        help="only make (or check) the generic backbone of the levers R5 uses",
    )
    p.add_argument(
        "--without",
        nargs="+",
        default=[],
        metavar="LEVER",
        help="with --generic-only: the levers of --of less these (a leave-one-out's backbone)",
    )
    p.add_argument(
        "--of",
        default="R5",
        help="with --generic-only: the recipe (R5 or R6) --without is taken from",
    )
    p.add_argument(
        "--no-make",
        action="store_true",
        help="measure only the recipes whose generic backbone is made; the rest wait",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="train nothing: the table of the kept cells, the rule as far as they take it",
    )
    p.add_argument("--results", default="benchmarks/recipe_results", help="results .md/.json")
    args = p.parse_args(argv)
    where = Where(
        Path(args.work),
        args.data_root,
        Path(args.cells),
        Path(args.generic_dir),
        frozenset(args.remeasure),
        make_backbones=not (args.no_make or args.report),
        measure=not args.report,
    )
    if args.generic_only:
        path, seconds = make_generic(where, tuple(args.without), args.of)
        print(f"[recipe] generic backbone {path} ({seconds:.0f} s to make)")
        return 0
    start = time.perf_counter()
    result = study(where, args.upto)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    text = results_markdown(result)
    print(text)
    atomic_write_text(Path(args.results + ".md"), text)
    write_json(Path(args.results + ".json"), json.loads(json.dumps(result)))
    return 0


def _generic_config(levers: tuple[str, ...], where: Where):
    """The digits cell's config of ``levers`` (only its model and augmentation matter
    to the generic backbone; the data root is not read)."""
    digits = where.work / "data" / "digits"
    return cell_config("digits", digits, levers, where.work / "cells" / "generic", "none")


def generic_ready(levers: tuple[str, ...], where: Where) -> bool:
    """True unless ``levers`` use a generic backbone whose file is not made yet (a
    file and its sidecar; their freshness is checked when a cell uses them)."""
    if "generic" not in levers:
        return True
    out = Path(where.generic_dir) / generic_name(_generic_config(levers, where))
    return out.is_file() and out.with_suffix(".json").is_file()


def make_generic(where: Where, without: tuple[str, ...] = (), of: str = "R5") -> tuple[Path, float]:
    """The generic backbone of the cumulative recipe ``of`` (R5 or R6: those with the
    "generic" lever) less the levers ``without`` (a leave-one-out's), made unless its
    file and sidecar are there and fresh; an interrupted making resumes after its last
    finished epoch."""
    first = LEVER_NAMES.index("generic") + 1
    bases = {f"R{k}": LEVER_NAMES[:k] for k in range(first, len(LEVERS) + 1)}
    if of not in bases:
        raise InputError(
            f"--of takes a recipe with the generic lever ({', '.join(bases)}), not {of!r}"
        )
    unknown = sorted(set(without) - set(bases[of]))
    if unknown or "generic" in without:
        raise InputError(
            f"--without takes levers of {of} other than generic, not {unknown or ['generic']}"
        )
    levers = tuple(lv for lv in bases[of] if lv not in without)
    config = _generic_config(levers, where)
    return generic_backbone(config, where.generic_dir / generic_name(config), where.data_root)


if __name__ == "__main__":
    raise SystemExit(main())
