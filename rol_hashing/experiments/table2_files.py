"""The files of the paper's Table 2 for one data set (``rol_hashing.experiments.table2``
trains and evaluates the runs): the paper's numbers, one row per (bits, method), and the
``.csv``, ``.md`` and ``.png`` written from the rows. Imports neither TensorFlow nor Keras.

- ``.csv``: one row per (bits, method): ``bits, method, top_k, map_ours_pct,
  map_paper_pct, delta_pct, run`` (percent, as the paper prints; ``map_paper_pct``
  and ``delta_pct`` empty where the paper has no number);
- ``.md``: the same table, and per code length whether ROL beat SSDH here and in the
  paper;
- ``.png``: MAP against code length, both methods, the paper's numbers dashed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rol_hashing import viz
from rol_hashing.constants import PAPER_BITS
from rol_hashing.errors import InputError, printable
from rol_hashing.io import atomic_write_text, save_figure

# Table 2 of the paper, MAP@1000 in percent exactly as printed. "folders" is the
# paper's private "Terrorist related dataset" (our class-folder format); "rol" is the
# column the paper calls "Proposed".
PAPER_TABLE2: dict[str, dict[str, dict[int, float]]] = {
    "folders": {
        "ssdh": {12: 55.93, 24: 68.00, 32: 69.05, 48: 69.13},
        "rol": {12: 60.16, 24: 68.71, 32: 70.94, 48: 72.13},
    },
    "voc2012": {
        "ssdh": {12: 56.83, 24: 66.27, 32: 70.30, 48: 69.55},
        "rol": {12: 62.44, 24: 64.36, 32: 68.98, 48: 71.65},
    },
    "cifar10": {
        "ssdh": {12: 40.25, 24: 69.27, 32: 76.46, 48: 76.59},
        "rol": {12: 51.95, 24: 70.80, 32: 75.60, 48: 78.48},
    },
    "awa2": {
        "ssdh": {12: 57.16, 24: 73.83, 32: 79.08, 48: 83.91},
        "rol": {12: 60.80, 24: 77.30, 32: 81.11, 48: 83.71},
    },
}
METHOD_NAMES = {"ssdh": "SSDH", "rol": "ROL (proposed)"}
CSV_COLUMNS = ("bits", "method", "top_k", "map_ours_pct", "map_paper_pct", "delta_pct", "run")


# The paper's "folders" column is its private set: a user's own folders are another
# data set, so those numbers are not put beside theirs.
PRIVATE_SETS = frozenset({"folders"})


def paper_map(dataset: str, method: str, bits: int) -> float | None:
    """The paper's MAP@1000 in percent, or None where Table 2 has no number."""
    return PAPER_TABLE2.get(dataset, {}).get(method, {}).get(bits)


def comparable_paper_map(dataset: str, method: str, bits: int) -> float | None:
    """``paper_map`` where the paper's data set is the same as ours, else None."""
    return None if dataset in PRIVATE_SETS else paper_map(dataset, method, bits)


@dataclass(frozen=True)
class Table2Row:
    """One cell pair of the table: our MAP@top_k and the paper's MAP@1000 (percent)."""

    bits: int
    method: str
    top_k: int
    map_ours: float
    map_paper: float | None
    run: Path

    @property
    def delta(self) -> float | None:
        return None if self.map_paper is None else self.map_ours - self.map_paper


@dataclass(frozen=True)
class Table2Result:
    """The rows and the three files written."""

    dataset: str
    profile: str
    rows: list[Table2Row]
    md: Path
    csv: Path
    png: Path


def table2_stem(dataset: str, profile: str) -> str:
    """``table2_<dataset>`` for the paper profile, ``table2_<dataset>_<profile>`` otherwise."""
    return f"table2_{dataset}" if profile == "paper" else f"table2_{dataset}_{profile}"


def write_table2(
    rows: Sequence[Table2Row], dataset: str, profile: str, results_dir: str | Path
) -> Table2Result:
    """Writes the ``.csv``, ``.md`` and ``.png`` of ``rows``; returns their paths."""
    if not rows:
        raise InputError("no rows to tabulate")
    out = Path(results_dir)
    stem = table2_stem(dataset, profile)
    csv_path, md_path, png_path = (out / f"{stem}.{ext}" for ext in ("csv", "md", "png"))
    atomic_write_text(csv_path, table2_csv(rows))
    atomic_write_text(md_path, table2_markdown(rows, dataset, profile))
    save_figure(table2_figure(rows, dataset, profile), png_path)
    return Table2Result(dataset, profile, list(rows), md_path, csv_path, png_path)


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def table2_csv(rows: Sequence[Table2Row]) -> str:
    """CSV text with ``CSV_COLUMNS`` (percent values, empty where the paper has none)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            (
                r.bits,
                r.method,
                r.top_k,
                _pct(r.map_ours),
                _pct(r.map_paper),
                _pct(r.delta, signed=True),
                str(r.run),
            )
        )
    return buf.getvalue()


def _verdict(ours: dict[str, Table2Row], dataset: str, bits: int) -> str:
    """Plain words on whether ROL beat SSDH at ``bits``, here and in the paper."""
    if "rol" not in ours or "ssdh" not in ours:
        return "only one method evaluated here"
    diff = ours["rol"].map_ours - ours["ssdh"].map_ours
    if diff > 0:
        here = f"ROL beat SSDH here by {diff:.2f} points"
    elif diff < 0:
        here = f"ROL did not beat SSDH here (SSDH ahead by {-diff:.2f} points)"
    else:
        here = "ROL and SSDH tied here"
    paper_rol = comparable_paper_map(dataset, "rol", bits)
    paper_ssdh = comparable_paper_map(dataset, "ssdh", bits)
    if paper_rol is None or paper_ssdh is None:
        return here + "; the paper has no number for this data set"
    paper_diff = paper_rol - paper_ssdh
    paper = "beat" if paper_diff > 0 else "did not beat"
    return f"{here}; in the paper ROL {paper} SSDH ({paper_diff:+.2f} points)"


def table2_markdown(rows: Sequence[Table2Row], dataset: str, profile: str) -> str:
    """The table beside the paper's, and a verdict per code length (control characters
    in the data set or profile name escaped)."""
    ks = sorted({r.top_k for r in rows})
    k_text = "/".join(str(k) for k in ks)
    lines = [
        f"# Table 2 on {dataset} (profile {profile})",
        "",
        f"MAP@{k_text} in percent, ours beside the paper's Table 2 (MAP@1000); delta = ours "
        "minus the paper's.",
        "",
        f"| bits | method | ours MAP@{k_text} | paper MAP@1000 | delta |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.bits} | {METHOD_NAMES[r.method]} | {_pct(r.map_ours)} | "
            f"{_pct(r.map_paper) or 'n/a'} | {_pct(r.delta, signed=True) or 'n/a'} |"
        )
    lines += ["", "Per code length:", ""]
    for b in sorted({r.bits for r in rows}):
        ours = {r.method: r for r in rows if r.bits == b}
        lines.append(f"- {b} bits: {_verdict(ours, dataset, b)}.")
    notes = []
    if any(k < 1000 for k in ks):
        notes.append(
            f"The gallery holds fewer than 1000 images, so MAP is taken over the top {k_text}."
        )
    if profile != "paper":
        notes.append(
            f"Profile {profile!r} trains smaller models for fewer epochs than the paper; "
            "its numbers are not comparable with the paper's."
        )
    if dataset in PRIVATE_SETS:
        notes.append(
            "The paper's Table 2 numbers for class folders are for its private "
            '"Terrorist related" set, another data set than yours, so they are not shown.'
        )
    elif dataset not in PAPER_TABLE2:
        notes.append(f"The paper reports no results for {dataset!r}.")
    if notes:
        lines += ["", *notes]
    lines.append("")
    return "\n".join(printable(line) for line in lines)


def table2_figure(rows: Sequence[Table2Row], dataset: str, profile: str):
    """A matplotlib Figure: MAP (%) against code length, ours solid, the paper's dashed."""
    ours: dict[str, dict[int, float]] = {}
    for r in rows:
        ours.setdefault(r.method, {})[r.bits] = r.map_ours
    paper = {} if dataset in PRIVATE_SETS else PAPER_TABLE2.get(dataset, {})
    shown = {r.bits for r in rows} | (set(PAPER_BITS) if paper else set())
    return viz.plot_table2(
        ours,
        paper,
        METHOD_NAMES,
        sorted(shown),
        f"Table 2: {dataset} ({profile})",
    )
