"""The ablation's variants, its pre-registered grid (docs/ablation.md) and the decision
rule: summaries over seeds, paired changes, the factors' verdicts and the questions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rol_hashing.errors import InputError
from rol_hashing.experiments.report import mean_std
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.layout import hashing_run_name

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
# Always run: every comparison is paired with its group's SSDH, and the mask-quality
# figure compares the paper's ROL with SSDH per query.
ALWAYS_RUN = ("ssdh", "rol-predicted-soft")


def select_variants(grid: Sequence[Variant], names: Sequence[str] | None) -> list[Variant]:
    """The grid's variants named in ``names``, in grid order, with each one's group SSDH
    and ``ALWAYS_RUN``; the whole grid when ``names`` is None.

    Raises:
        InputError: a name that is not a variant of ``grid`` (the valid names listed).
    """
    if names is None:
        return list(grid)
    known = [v.name for v in grid]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"unknown ablation variant(s) {', '.join(unknown)}: this grid has {', '.join(known)}"
        )
    wanted = set(names) | set(ALWAYS_RUN)
    wanted |= {group_baseline(v, grid).name for v in grid if v.name in wanted}
    return [v for v in grid if v.name in wanted]


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
    (
        "ROL grid (2x input: twice the ROL grid's side)",
        "rol-predicted-soft-2x-input",
        "ssdh-2x-input",
    ),
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

    ``gap`` = mean over (seed, bits) of SSDH - ROL (predicted, soft, the profile's schedule).
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
