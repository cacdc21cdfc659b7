"""Summaries shared by the experiments: mean ± std over seeds, and ROL against SSDH paired
by seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std"}`` of per-seed values (sample std; 0 for one value)."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def verdict(ssdh: Sequence[float], rol: Sequence[float]) -> str:
    """ROL against SSDH at one code length from per-seed MAPs (paired by seed).

    With several seeds a mean difference within one standard deviation of the
    per-seed differences is called "no clear difference"; with one seed there is
    no spread, so the sign is reported as such.
    """
    diff = np.asarray(rol, float) - np.asarray(ssdh, float)
    mean = float(diff.mean())
    if len(diff) == 1:
        who = "ROL higher" if mean > 0 else ("SSDH higher" if mean < 0 else "equal")
        return f"{who} by {abs(mean):.3f} (one seed, no spread)"
    spread = float(diff.std(ddof=1))
    wins = int((diff > 0).sum())
    if abs(mean) <= spread:
        return (
            f"no clear difference: ROL - SSDH = {mean:+.3f} ± {spread:.3f}, "
            f"ROL higher in {wins}/{len(diff)} seeds"
        )
    who = "ROL beats SSDH" if mean > 0 else "SSDH beats ROL"
    return f"{who}: ROL - SSDH = {mean:+.3f} ± {spread:.3f}, ROL higher in {wins}/{len(diff)} seeds"


def pm(stat: dict[str, float], n: int) -> str:
    """``mean ± std`` to 3 decimals, or the mean alone for one seed (``n``)."""
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if n > 1 else f"{stat['mean']:.3f}"


def format_seconds(stat: dict[str, float], n: int) -> str:
    """Seconds as ``mean ± std`` to 1 decimal, or the mean alone for one seed."""
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if n > 1 else f"{stat['mean']:.1f}"


def seeds_phrase(seeds: Sequence[int]) -> str:
    """How a table's numbers were made: "mean ± std over seeds 0, 1, 2" or "one seed (0),
    no spread"."""
    if len(seeds) > 1:
        return "mean ± std over seeds " + ", ".join(map(str, seeds))
    return f"one seed ({seeds[0]}), no spread"


def map_table(
    rows: Mapping[str, Mapping[str, dict[str, float]]], bits: Sequence[int], n: int
) -> list[str]:
    """Markdown lines of a MAP table: one row per name, ``rows[name][str(bits)]`` a
    ``mean_std`` cell (``pm`` with ``n`` seeds), one column per code length."""
    lines = [
        "| method | " + " | ".join(f"{b} bits" for b in bits) + " |",
        "|---|" + "---|" * len(bits),
    ]
    for name, cells in rows.items():
        lines.append(f"| {name} | " + " | ".join(pm(cells[str(b)], n) for b in bits) + " |")
    return lines
