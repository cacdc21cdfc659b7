"""The benchmark scripts at tiny sizes: every method gives our results; tables render."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is not installed; `pytest` alone misses it
    sys.path.insert(0, str(REPO))

from benchmarks import bench_map, bench_search, run_all  # noqa: E402


def test_search_benchmark_methods_agree_with_ours():
    methods = ["ours", "ours-numpy", "matmul"]
    try:
        import faiss  # noqa: F401

        methods += ["faiss-default", "faiss-64"]
    except ImportError:
        pass
    logs = []
    rows = bench_search.run(
        (3000,), bits=48, queries=20, k=50, repeats=1, methods=tuple(methods), log=logs.append
    )
    assert [r["method"] for r in rows] == methods
    assert all(r["same"] in ("reference", "yes") for r in rows), rows
    table = bench_search.table(rows)
    assert "popcount floor" in table and "| 3,000 | ours |" in table


def test_map_benchmark_and_goal_lines():
    row = bench_map.run(gallery=2000, queries=30, top_k=100, repeats=1)
    assert 0 <= row["map"] <= 1 and row["min_s"] > 0
    assert "MAP@100" in bench_map.table(row)
    memory = run_all.memory_per_code(n=1000)
    assert [(r["bits"], r["index_bytes"], r["file_bytes"]) for r in memory] == [
        (12, 8, 2),
        (48, 8, 6),
        (64, 8, 8),
        (128, 16, 16),
    ]
    lines = run_all.goals([], row, [], memory)
    assert "goal <= 0.5 s" in lines and "index memory per code: met" in lines


def test_search_benchmark_codes_have_zero_padding():
    packed = bench_search.random_packed(100, 44, seed=0)
    assert not (packed[:, -1] & 0x0F).any()
