"""``make demo``: the verdict rule, the summary, and the quick demo end to end (slow)."""

import json

import pytest

from rol_hashing.experiments.demo import QUICK, DemoSizes, results_markdown, summarize
from rol_hashing.experiments.report import verdict


def _seed_result(seed: int, ssdh: float, rol: float) -> dict:
    return {
        "seed": seed,
        "map": {"ssdh": {12: ssdh, 48: ssdh + 0.1}, "rol": {12: rol, 48: rol + 0.1}},
        "top_k": 1000,
        "num_queries": 120,
        "num_gallery": 1080,
        "seg_mean_iou": 0.5,
        "seg_pixel_accuracy": 0.9,
        "pretrain": {"val_accuracy": 0.8},
        "seconds": {"data": 1.0, "pretrain": 2.0},
        "runs": {},
    }


def test_verdict_one_seed_reports_the_sign_only():
    assert verdict([0.5], [0.6]).startswith("ROL higher by 0.100")
    assert verdict([0.6], [0.5]).startswith("SSDH higher by 0.100")


def test_verdict_several_seeds_pairs_by_seed():
    assert verdict([0.5, 0.6, 0.7], [0.6, 0.7, 0.8]).startswith("ROL beats SSDH")
    assert verdict([0.6, 0.7, 0.8], [0.5, 0.6, 0.7]).startswith("SSDH beats ROL")
    # +0.1, -0.1, +0.02: the mean difference is inside the spread.
    assert verdict([0.5, 0.6, 0.7], [0.6, 0.5, 0.72]).startswith("no clear difference")


def test_summary_means_and_markdown():
    sizes = DemoSizes(num_classes=6)
    summary = summarize([_seed_result(0, 0.4, 0.5), _seed_result(1, 0.6, 0.7)], sizes)
    assert summary["map"]["rol"]["12"]["mean"] == pytest.approx(0.6)
    assert summary["map"]["ssdh"]["48"]["std"] == pytest.approx(0.1414, abs=1e-3)
    assert summary["chance"] == pytest.approx(1 / 6)
    text = results_markdown(summary, 100.0)
    assert "| SSDH | 0.500 ± 0.141 | 0.600 ± 0.141 |" in text
    assert "ROL beats SSDH" in text and "12 bits" in text and "48 bits" in text


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    from rol_hashing.cli.main import main

    out, work = tmp_path / "out", tmp_path / "work"
    code = main(["demo", "--quick", "--out", str(out), "--work-dir", str(work)])
    assert code == 0
    for name in (
        "results.md",
        "results.json",
        "map_vs_bits.png",
        "rol_masks.png",
        "retrieval_top10.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["bits"] == list(QUICK.bits)
    for method in ("ssdh", "rol"):
        for bits in QUICK.bits:  # the table holds each run's own metrics.json
            run = work / "seed0" / "runs" / f"generated-{method}-{bits}b"
            metrics = json.loads((run / "metrics.json").read_text())
            assert results["map"][method][str(bits)]["mean"] == metrics["map_at_k"]
    seg = json.loads((work / "seed0" / "runs" / "generated-seg" / "metrics.json").read_text())
    assert results["seg_mean_iou"]["mean"] == seg["val_mean_iou"]
    # a second demo reuses every fresh file (docs/freshness.md) and reports the same numbers
    assert main(["demo", "--quick", "--out", str(out), "--work-dir", str(work)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["map"] == results["map"] and again["seg_mean_iou"] == results["seg_mean_iou"]
    text = (out / "results.md").read_text()
    assert "| SSDH |" in text and "| ROL |" in text
    assert all(f"{b} bits" in text for b in QUICK.bits)
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
