"""Every figure of the package (matplotlib, no pyplot state), in one colour scheme.

Reliability masks, feature energy, retrieval comparisons (the paper's Fig. 3), the
search strip, precision curves, MAP against bits, Table 2, and training curves.
Every ``plot_*`` function takes plain arrays and returns a
``matplotlib.figure.Figure``; ``save`` writes one to a PNG atomically. In a notebook,
``display(fig)`` shows it. Images are uint8 RGB arrays (H, W, 3) as ``deprocess_vgg``
returns them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rol_hashing.io import save_figure

# The one colour scheme: relevance frames, and one colour per method.
RELEVANT, IRRELEVANT, UNKNOWN, QUERY = "#1a9641", "#d7191c", "#999999", "#000000"
METHOD_COLOURS = {"ssdh": "#4575b4", "rol": "#d73027"}
RELEVANCE_MARKS = {True: "  \u2713", False: "  \u2717", None: ""}


def save(fig: Figure, out_png: str | Path, dpi: int = 100) -> Path:
    """Writes ``fig`` to ``out_png`` (temporary file, then rename)."""
    return save_figure(fig, out_png, dpi=dpi)


def image_sheet(
    tiles: Sequence[np.ndarray], per_row: int, gap: int = 4, scale: int = 1
) -> np.ndarray:
    """Equal-sized uint8 RGB tiles (H, W, 3) on a white sheet, ``per_row`` a row, ``gap``
    pixels apart, each pixel repeated ``scale`` times a side: (rows*(H+gap)+gap, ...)."""
    h, w, _ = tiles[0].shape
    rows = -(-len(tiles) // per_row)
    sheet = np.full((rows * (h + gap) + gap, per_row * (w + gap) + gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        y, x = gap + (k // per_row) * (h + gap), gap + (k % per_row) * (w + gap)
        sheet[y : y + h, x : x + w] = tile
    return sheet.repeat(scale, axis=0).repeat(scale, axis=1)


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _frame(ax, colour: str, width: float = 3.0) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def _relevance_colour(relevant: bool | None) -> str:
    return UNKNOWN if relevant is None else (RELEVANT if relevant else IRRELEVANT)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``image`` (H, W, 3) uint8 tinted red where ``mask`` (h, w) in [0, 1] is high."""
    h, w = image.shape[:2]
    if mask.shape != (h, w):
        rows = np.arange(h) * mask.shape[0] // h
        cols = np.arange(w) * mask.shape[1] // w
        mask = mask[rows][:, cols]
    red = np.zeros_like(image, dtype=np.float32)
    red[..., 0] = 255
    weight = alpha * np.clip(mask, 0, 1)[..., None]
    return (image * (1 - weight) + red * weight).astype(np.uint8)


def plot_rol_masks(
    images: np.ndarray,
    probs: np.ndarray,
    masks: np.ndarray,
    masks_grid: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    classes_shown: int = 2,
    background_index: int = 0,
) -> Figure:
    """One row per image: the input, its most likely object classes' probability maps,
    R at full resolution, R at the feature grid, and R over the image.

    Args:
        images: (B, S, S, 3) uint8.
        probs: (B, S, S, N) segmentation probabilities.
        masks: (B, S, S) reliability mask R.
        masks_grid: (B, h, w) R at the ROL's feature grid, optional.
        class_names: N names (index 0 = background), optional.
        classes_shown: per-class maps shown per image (the classes with most mass).
    """
    b, n = len(images), probs.shape[-1]
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(n)]
    shown = min(classes_shown, n - 1)
    cols = 1 + shown + 2 + (masks_grid is not None)
    fig = Figure(figsize=(1.9 * cols, 1.9 * b + 0.3))
    axes = fig.subplots(b, cols, squeeze=False)
    for i in range(b):
        mass = probs[i].reshape(-1, n).sum(0)
        mass[background_index] = -1
        top = np.argsort(-mass, kind="stable")[:shown]
        panels = [(images[i], "input", None)]
        panels += [(probs[i, ..., c], f"P({names[c]})", "viridis") for c in top]
        panels.append((masks[i], "R", "magma"))
        if masks_grid is not None:
            g = masks_grid[i]
            panels.append((g, f"R at {g.shape[0]}x{g.shape[1]}", "magma"))
        panels.append((overlay(images[i], masks[i]), "R on image", None))
        for ax, (data, title, cmap) in zip(axes[i], panels, strict=True):
            if cmap is None:
                ax.imshow(data)
            else:
                ax.imshow(data, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if i == 0 or title.startswith("P("):
                ax.set_title(title, fontsize=8)
            _off(ax)
    fig.tight_layout()
    return fig


def plot_feature_energy(images: np.ndarray, before: np.ndarray, after: np.ndarray) -> Figure:
    """Per image: the input and the last conv map's energy before and after the ROL.

    ``before``/``after``: (B, h, w) mean squared activations; both panels of an image
    share one colour scale, so what the ROL removes shows as darkening.
    """
    b = len(images)
    fig = Figure(figsize=(5.7, 1.9 * b + 0.3))
    axes = fig.subplots(b, 3, squeeze=False)
    for i in range(b):
        top = float(max(before[i].max(), after[i].max(), 1e-12))
        axes[i, 0].imshow(images[i])
        axes[i, 1].imshow(before[i], cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
        axes[i, 2].imshow(after[i], cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
        kept = float(after[i].sum() / max(before[i].sum(), 1e-12))
        axes[i, 2].set_xlabel(f"{kept:.0%} of the energy kept", fontsize=7)
        for ax, title in zip(axes[i], ("input", "block5_conv3", "after ROL"), strict=True):
            if i == 0:
                ax.set_title(title, fontsize=8)
            _off(ax)
    fig.tight_layout()
    return fig


def plot_retrieval_comparison(
    query: np.ndarray,
    rows: Mapping[str, Sequence[tuple[np.ndarray, bool | None]]],
    title: str = "",
) -> Figure:
    """The paper's Fig. 3 layout: the query on the left, one row of top-k per method.

    Args:
        query: (H, W, 3) uint8 query image.
        rows: method name -> ranked ``(image, relevant)`` pairs; relevant ones get a
            green frame, irrelevant ones red, unknown grey.
    """
    k = max(len(r) for r in rows.values())
    fig = Figure(figsize=(1.25 * (k + 1.4), 1.35 * len(rows) + 0.4))
    grid = fig.add_gridspec(len(rows), k + 1, width_ratios=[1.4] + [1] * k)
    q = fig.add_subplot(grid[:, 0])
    q.imshow(query)
    q.set_title("query", fontsize=9)
    _off(q)
    for r, (method, ranked) in enumerate(rows.items()):
        hits = sum(bool(rel) for _, rel in ranked)
        for j in range(k):
            ax = fig.add_subplot(grid[r, j + 1])
            _off(ax)
            if j >= len(ranked):
                ax.axis("off")
                continue
            image, relevant = ranked[j]
            ax.imshow(image)
            _frame(ax, _relevance_colour(relevant))
            if j == 0:
                ax.set_ylabel(f"{method}\n{hits}/{len(ranked)}", fontsize=9)
            if r == 0:
                ax.set_title(str(j + 1), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_precision_curves(curves: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Precision@k against k (k = 1..len) for each method."""
    fig = Figure(figsize=(5, 3.4))
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("precision@k")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_map_vs_bits(
    results: Mapping[str, Mapping[int, float | tuple[float, float]]],
    chance: float | None = None,
    title: str = "MAP@1000 against code length",
) -> Figure:
    """MAP against bits per method; values are a MAP or (mean, std) over seeds."""
    fig = Figure(figsize=(5, 3.4))
    ax = fig.add_subplot()
    for name, by_bits in results.items():
        bits = sorted(by_bits)
        values = [by_bits[b] if isinstance(by_bits[b], tuple) else (by_bits[b], 0.0) for b in bits]
        mean = np.array([v[0] for v in values])
        std = np.array([v[1] for v in values])
        ax.errorbar(bits, mean, yerr=std, marker="o", capsize=3, label=name)
    if chance is not None:
        ax.axhline(chance, color=UNKNOWN, linestyle=":", label="chance")
    ax.set_xlabel("bits")
    ax.set_ylabel("MAP")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_search_strip(
    query: np.ndarray,
    results: Sequence[tuple[np.ndarray, int, int, bool | None]],
    thumb_inches: float = 1.6,
) -> Figure:
    """The query, then each result as a thumbnail titled with its rank and distance and
    framed green (relevant), red (not relevant) or grey (unknown).

    Args:
        query: (H, W, 3) uint8.
        results: ``(image, rank, distance, relevant)`` per result, nearest first.
    """
    panels = [(query, "query", QUERY)]
    for image, rank, distance, relevant in results:
        title = f"#{rank}  d={distance}{RELEVANCE_MARKS[relevant]}"
        panels.append((image, title, _relevance_colour(relevant)))
    fig = Figure(figsize=(thumb_inches * len(panels), thumb_inches * 1.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (image, title, colour) in zip(axes, panels, strict=True):
        ax.imshow(image)
        ax.set_title(title, fontsize=8)
        _off(ax)
        _frame(ax, colour, width=4)
    fig.tight_layout()
    return fig


def plot_table2(
    ours: Mapping[str, Mapping[int, float]],
    paper: Mapping[str, Mapping[int, float]],
    names: Mapping[str, str],
    ticks: Sequence[int],
    title: str,
) -> Figure:
    """MAP (%) against code length per method: ours solid, the paper's dashed.

    Args:
        ours, paper: method -> {bits: MAP in percent}; a method missing from ``ours``
            is not drawn.
        names: method -> legend name.
        ticks: the code lengths marked on the x axis.
    """
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for method, colour in METHOD_COLOURS.items():
        mine = sorted(ours.get(method, {}).items())
        if not mine:
            continue
        x, y = zip(*mine, strict=True)
        ax.plot(x, y, "o-", color=colour, label=f"{names[method]}, ours")
        theirs = sorted(paper.get(method, {}).items())
        if theirs:
            px, py = zip(*theirs, strict=True)
            ax.plot(px, py, "s--", color=colour, alpha=0.6, label=f"{names[method]}, paper")
    ax.set_xlabel("code length (bits)")
    ax.set_ylabel("MAP (%)")
    ax.set_xticks(sorted(ticks))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(columns: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Every logged quantity of a ``log.csv`` (as columns) against the epoch: losses on
    the left, metrics on the right; the 0-based ``epoch`` column is the x axis."""
    columns = dict(columns)
    epochs = [e + 1 for e in columns.pop("epoch", [])]
    columns.pop("learning_rate", None)
    # Only series that hold a number: a column that is empty or all NaN is left out.
    columns = {k: v for k, v in columns.items() if np.isfinite(np.asarray(v, float)).any()}
    groups = [
        (g, label)
        for g, label in (
            ({k: v for k, v in columns.items() if "loss" in k}, "loss"),
            ({k: v for k, v in columns.items() if "loss" not in k}, "metric"),
        )
        if g
    ]
    fig = Figure(figsize=(5 * max(1, len(groups)), 3.6))
    axes = fig.subplots(1, max(1, len(groups)), squeeze=False)[0]
    for ax, (group, label) in zip(axes, groups, strict=False):
        for key, values in sorted(group.items()):
            ax.plot(epochs[: len(values)], values, marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_ablation(
    labels: Sequence[str], means: Sequence[float], stds: Sequence[float], groups: Sequence[str]
) -> Figure:
    """MAP (mean ± std over seeds) per ablation variant, one bar each, SSDH rows in the
    SSDH colour, ROL rows in the ROL colour; groups are separated by a gap."""
    fig = Figure(figsize=(max(6.0, 0.42 * len(labels) + 1.5), 4.2))
    ax = fig.add_subplot()
    x, pos, previous = [], 0.0, None
    for group in groups:
        pos += 0.8 if previous is not None and group != previous else 0.0
        x.append(pos)
        pos += 1.0
        previous = group
    colours = [METHOD_COLOURS["ssdh" if lab.startswith("ssdh") else "rol"] for lab in labels]
    ax.bar(x, means, yerr=stds, color=colours, capsize=2, width=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("MAP@1000")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Ablation: MAP per variant (mean ± std over seeds)")
    fig.tight_layout()
    return fig


def plot_ap_vs_mask_quality(iou: np.ndarray, ap_diff: np.ndarray) -> Figure:
    """Per query: AP of ROL minus AP of SSDH against the IoU of its ``R > 0.5`` with
    the ground-truth object."""
    fig = Figure(figsize=(5, 3.6))
    ax = fig.add_subplot()
    ax.scatter(iou, ap_diff, s=6, alpha=0.5, color=METHOD_COLOURS["rol"])
    ax.axhline(0, color=UNKNOWN, linestyle=":")
    ax.set_xlabel("mask quality: IoU of R > 0.5 with the object")
    ax.set_ylabel("AP(ROL) - AP(SSDH)")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_examples(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    masks: Sequence[np.ndarray] | None = None,
    per_row: int = 6,
) -> Figure:
    """A grid of (H, W, 3) uint8 images with a title each; with ``masks`` ((H, W) in
    [0, 1], e.g. the object mask) a second row per row shows them as an overlay."""
    rows = -(-len(images) // per_row)
    height = 2 if masks is not None else 1
    fig = Figure(figsize=(1.6 * per_row, 1.75 * rows * height))
    for k, (image, title) in enumerate(zip(images, titles, strict=True)):
        r, c = divmod(k, per_row)
        ax = fig.add_subplot(rows * height, per_row, r * height * per_row + c + 1)
        ax.imshow(image)
        ax.set_title(title, fontsize=7)
        _off(ax)
        if masks is not None:
            ax = fig.add_subplot(rows * height, per_row, (r * height + 1) * per_row + c + 1)
            ax.imshow(overlay(image, masks[k]))
            ax.set_title("object mask", fontsize=6)
            _off(ax)
    fig.tight_layout()
    return fig
