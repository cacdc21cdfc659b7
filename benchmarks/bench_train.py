"""Training throughput at the cpu profile: SSDH, ROL with the stream live, ROL with cached masks.

Each method trains in its own process (so each peak RSS is its own) on a generated
data set, with the cpu profile of ``experiments/generated.yaml`` (64x64 inputs,
width 0.25, batch 32); the segmentation stream ROL needs is trained for one epoch
first (its quality does not matter for speed). Epoch 0 holds graph tracing and is
not timed; the later epochs give images per second (train images / epoch seconds)
and seconds per epoch, min and median. ``setup`` is everything else of the process
(imports, data, model building, for ``rol-cached`` computing the masks once).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
METHODS = ("ssdh", "rol-live", "rol-cached")


def _config(work: Path, epochs: int) -> Any:
    from rol_hashing.training.config import load_config

    runs = work / "runs"
    return load_config(
        REPO / "experiments" / "generated.yaml",
        "cpu",
        {
            "data_root": str(work / "data"),
            "runs_dir": str(runs),
            "segmentation": {"data_root": str(work / "data" / "VOCdevkit/VOC2012"), "epochs": 1},
            "hashing": {
                "epochs": epochs,
                "segmentation_model": str(runs / "generated-seg" / "model.keras"),
            },
        },
    )


def child(mode: str, work: Path, epochs: int) -> dict[str, Any]:
    """Runs in a fresh process: one training; returns its timings and peak RSS."""
    start = time.perf_counter()
    import keras

    from rol_hashing.training.hashing import train_hashing
    from rol_hashing.training.segmentation import train_segmentation

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t)

    config = _config(work, epochs)
    keras.utils.set_random_seed(0)
    clock = EpochClock()
    if mode == "seg":
        run = train_segmentation(config, verbose=0, callbacks=[clock])
        info = {}
    else:
        method = "ssdh" if mode == "ssdh" else "rol"
        run = train_hashing(
            config,
            method,
            48,
            mask_cache=mode == "rol-cached",
            run_dir=work / "runs" / mode,
            verbose=0,
            callbacks=[clock],
        )
        info = json.loads((run.path / "train_info.json").read_text())
    total = time.perf_counter() - start
    return {
        "mode": mode,
        "epoch_seconds": clock.seconds,
        "train_images": info.get("train_images"),
        "total_seconds": total,
        "setup_seconds": total - sum(clock.seconds),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB: VmHWM on Linux (``ru_maxrss`` survives
    exec, so a child started by a large parent would report the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spawn(mode: str, work: Path, epochs: int) -> dict[str, Any]:
    out = work / f"{mode}.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_train", "--child", mode]
    cmd += ["--work", str(work), "--epochs", str(epochs), "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return json.loads(out.read_text())


def run(images: int = 1200, epochs: int = 3, log=print) -> list[dict[str, Any]]:
    """Trains each method once; one row per method."""
    from rol_hashing.data.generated import make_generated_dataset

    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        work = Path(tmp)
        make_generated_dataset(work / "data", num_images=images, num_seg_images=64)
        seg = _spawn("seg", work, epochs)
        log(f"segmentation stream (1 epoch): {seg['total_seconds']:.0f} s")
        rows = []
        for mode in METHODS:
            result = _spawn(mode, work, epochs)
            timed = result["epoch_seconds"][1:] or result["epoch_seconds"]
            n = result["train_images"]
            result["epoch_min_s"] = min(timed)
            result["epoch_median_s"] = sorted(timed)[len(timed) // 2]
            result["images_per_s"] = n / result["epoch_min_s"]
            rows.append(result)
            log(
                f"{mode}: {result['epoch_min_s']:.1f} s/epoch (median "
                f"{result['epoch_median_s']:.1f}), {result['images_per_s']:.0f} images/s, "
                f"{n} images, peak RSS {result['peak_rss_mb']:.0f} MB"
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per method seconds per epoch, images/s, ratio to SSDH, peak RSS."""
    ssdh = next((r for r in rows if r["mode"] == "ssdh"), None)
    lines = [
        "| method | s/epoch min | s/epoch median | images/s | time vs SSDH | setup s "
        "| peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['epoch_min_s'] / ssdh['epoch_min_s']:.2f}x" if ssdh else ""
        lines.append(
            f"| {r['mode']} | {r['epoch_min_s']:.2f} | {r['epoch_median_s']:.2f} "
            f"| {r['images_per_s']:.0f} | {ratio} | {r['setup_seconds']:.0f} "
            f"| {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200, help="generated images (half train)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (first untimed)")
    parser.add_argument("--child", choices=("seg", *METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.out.write_text(json.dumps(child(args.child, args.work, args.epochs)))
        return
    print(table(run(args.images, args.epochs)))


if __name__ == "__main__":
    main()
