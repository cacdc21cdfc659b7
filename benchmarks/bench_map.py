"""MAP@1000 for 1000 queries over a 59,000-code gallery (CIFAR-10's sizes), 48 bits.

Codes are clustered like trained ones: 10 classes, each a random centre code with
20% of its bits flipped per item; labels are the classes. Times
``rol_hashing.metrics.mean_average_precision`` (ranking by ``HammingIndex``).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks.common import time_repeats
from rol_hashing.evaluation import mean_average_precision


def clustered_codes(
    n: int, bits: int, classes: int, flip: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """bool codes (n, bits) and labels (n,) around one random centre per class."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).random((classes, bits)) > 0.5
    labels = rng.integers(0, classes, n)
    return centres[labels] ^ (rng.random((n, bits)) < flip), labels


def run(
    gallery: int = 59_000, queries: int = 1000, bits: int = 48, top_k: int = 1000, repeats: int = 3
) -> dict[str, Any]:
    """Seconds for MAP@top_k (min, median) and the MAP itself."""
    g_codes, g_labels = clustered_codes(gallery, bits, 10, 0.2, seed=1)
    q_codes, q_labels = clustered_codes(queries, bits, 10, 0.2, seed=2)
    mean_average_precision(q_codes[:2], q_labels[:2], g_codes, g_labels, top_k)  # warm up
    timing, value = time_repeats(
        lambda: mean_average_precision(q_codes, q_labels, g_codes, g_labels, top_k), repeats
    )
    return {
        "gallery": gallery,
        "queries": queries,
        "bits": bits,
        "top_k": top_k,
        "min_s": timing.min,
        "median_s": timing.median,
        "map": value,
        "repeats": repeats,
    }


def table(row: dict[str, Any]) -> str:
    """Markdown: one line."""
    return "\n".join(
        [
            "| task | s min | s median | goal | MAP |",
            "|---|---:|---:|---:|---:|",
            f"| MAP@{row['top_k']}, {row['queries']} queries x {row['gallery']:,} codes, "
            f"{row['bits']} bits | {row['min_s']:.3f} | {row['median_s']:.3f} | <= 0.5 s "
            f"| {row['map']:.4f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(table(run(repeats=args.repeats)))


if __name__ == "__main__":
    main()
