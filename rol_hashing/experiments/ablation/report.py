"""The ablation's report: ``results.md`` and its figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rol_hashing import viz
from rol_hashing.experiments.ablation.grid import GROUPS, Variant
from rol_hashing.experiments.report import pm
from rol_hashing.io import save_figure


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
    behind = gap["gap"] > 0  # ROL behind SSDH: a gap for the factors to explain
    lines += [
        "## Decision rule",
        "",
        f"Gap to explain: SSDH - ROL (predicted, soft, the profile's schedule) = "
        f"{gap['gap']:+.3f} (mean of {gap['gap_pairs']} seed x bits pairs). A factor "
        "explains it when its change closes at least half of it with the same sign in 5 "
        "of 6 pairs (all pairs when fewer)."
        + (
            ""
            if behind
            else " Here the ROL is not behind SSDH, so there is no gap to explain: the "
            "table shows each factor's change, and no factor can explain a gap."
        ),
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
            if behind
            else "no gap to explain (the ROL is level with or ahead of SSDH)."
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
