"""The benchmark scripts at tiny sizes: every method gives our results; tables render."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
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


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_model_on_cpu(tmp_path):
    """The GPU check at a tiny size on CPU: each model trains its steps in its own process."""
    import subprocess

    results = tmp_path / "results.md"
    cmd = [
        sys.executable,
        str(BENCH / "gpu_check.py"),
        "--input-size",
        "32",
        "--width",
        "0.125",
        "--batch",
        "2",
        "--steps",
        "2",
        "--results",
        str(results),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["model"] for r in rows] == ["ssdh", "rol", "rol-cached"]
    for row in rows:
        assert "error" not in row, row
        assert row["images_per_s"] > 0 and np.isfinite(row["loss"])
    assert row["params_m"] > 0
    text = results.read_text()
    assert text.startswith("\n### GPU check") and text.count("| rol") == 2
