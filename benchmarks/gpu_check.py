"""GPU check: the paper-profile SSDH and ROL models train at batch 40, 224x224, on one card.

The paper trained on one 8 GB card. For each model (``ssdh``; ``rol``, the frozen
segmentation stream live; ``rol-cached``, masks fed as an input) this builds the
paper-profile network (VGG16 config C, width 1.0, 48 bits, 10 classes), compiles it
with SGD + the SSDH losses, runs one untimed step (compilation), then times
``--steps`` training steps on random data, and reports the peak accelerator memory.
Each model runs in its own process, so each peak is its own and an out-of-memory
error stops only that model. ``--limit-gb 8`` caps the memory the backend may use
(TensorFlow: a logical device limit; JAX: ``XLA_PYTHON_CLIENT_MEM_FRACTION`` from
the card's total), so "fits in 8 GB" is tested rather than guessed.

Backend-agnostic: only keras, numpy and ``rol_hashing.models`` are imported (plus the
backend's own memory query), so it runs with ``KERAS_BACKEND=jax`` on machines without
TensorFlow::

    KERAS_BACKEND=jax python benchmarks/gpu_check.py --limit-gb 8
    python benchmarks/gpu_check.py --input-size 32 --width 0.125 --steps 2   # smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODELS = ("ssdh", "rol", "rol-cached")
REPO = Path(__file__).resolve().parents[1]


def _total_gpu_gb() -> float | None:
    """Memory of GPU 0 from nvidia-smi, in GB, or None."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return float(out.split()[0]) / 1024
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _limit_memory(backend: str, limit_gb: float | None) -> None:
    """Caps accelerator memory before the backend starts (TF after import, JAX by env)."""
    if not limit_gb:
        return
    if backend == "jax":
        total = _total_gpu_gb()
        if total:
            os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{min(1.0, limit_gb / total):.4f}"
    elif backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU")[:1]:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(limit_gb * 1024))]
            )


def _device_and_peak(backend: str) -> tuple[str, float | None]:
    """(device description, peak accelerator memory in GB or None on CPU)."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        peak = stats.get("peak_bytes_in_use") if stats else None
        return f"{device.platform}: {device.device_kind}", peak / 1e9 if peak else None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu", None
        details = tf.config.experimental.get_device_details(gpus[0])
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        return f"gpu: {details.get('device_name', 'GPU')}", peak / 1e9
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return "cpu", None
        return f"gpu: {torch.cuda.get_device_name(0)}", torch.cuda.max_memory_allocated() / 1e9
    return backend, None


def one(model_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Builds, compiles and times one model (in this process)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    _limit_memory(backend, args.limit_gb)
    import keras
    import numpy as np

    from rol_hashing.models import (
        build_hashing_model,
        build_segmentation_model,
        rol_feature_size,
        ssdh_losses,
    )

    keras.utils.set_random_seed(0)
    method = "ssdh" if model_name == "ssdh" else "rol"
    live_rol = model_name == "rol"
    model = build_hashing_model(
        method,
        args.bits,
        args.classes,
        segmentation_model=build_segmentation_model(input_size=args.input_size, width=args.width)
        if live_rol
        else None,
        input_size=args.input_size,
        width=args.width,
        mask_input=model_name == "rol-cached",
    )
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss=ssdh_losses(), jit_compile="auto"
    )
    rng = np.random.default_rng(0)
    b, s = args.batch, args.input_size
    x: Any = rng.normal(size=(b, s, s, 3)).astype("float32")
    if model_name == "rol-cached":
        side = rol_feature_size(s)
        x = {"image": x, "mask": rng.random((b, side, side, 1)).astype("float32")}
    y = {
        "class": rng.integers(0, args.classes, b),
        "hash": np.zeros((b, args.bits), "float32"),
    }
    start = time.perf_counter()
    model.train_on_batch(x, y)  # compiles
    first = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    device, peak = _device_and_peak(backend)
    return {
        "model": model_name,
        "backend": backend,
        "device": device,
        "batch": b,
        "input_size": s,
        "width": args.width,
        "params_m": model.count_params() / 1e6,
        "first_step_s": first,
        "step_min_s": min(times),
        "step_median_s": sorted(times)[len(times) // 2],
        "images_per_s": b / min(times),
        "peak_gb": peak,
        "loss": float(np.ravel(loss)[0]),
    }


def _spawn(model_name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", model_name]
    for key in ("input_size", "width", "batch", "steps", "bits", "classes", "limit_gb"):
        value = getattr(args, key)
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    oom = any("RESOURCE_EXHAUSTED" in t or "out of memory" in t.lower() for t in tail)
    return {"model": model_name, "error": "out of memory" if oom else " / ".join(tail)}


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """Markdown section: the card, the settings and one line per model."""
    ok = [r for r in rows if "error" not in r]
    device = ok[0]["device"] if ok else "?"
    backend = ok[0]["backend"] if ok else os.environ.get("KERAS_BACKEND", "tensorflow")
    limit = f", memory capped at {args.limit_gb} GB" if args.limit_gb else ""
    lines = [
        f"gpu_check ({datetime.date.today()}, {platform.node()}): {device}, "
        f"KERAS_BACKEND={backend}, batch {args.batch}, {args.input_size}x{args.input_size}, "
        f"width {args.width}, {args.steps} timed steps{limit}",
        "",
        "| model | params (M) | step s min | step s median | images/s | first step s "
        "| peak memory GB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} | | | | | |")
            continue
        peak = f"{r['peak_gb']:.2f}" if r["peak_gb"] is not None else "n/a (no GPU)"
        lines.append(
            f"| {r['model']} | {r['params_m']:.1f} | {r['step_min_s']:.3f} "
            f"| {r['step_median_s']:.3f} | {r['images_per_s']:.1f} | {r['first_step_s']:.1f} "
            f"| {peak} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--limit-gb", type=float, default=None, help="cap on GPU memory")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--results", type=Path, help="append the table to this markdown file")
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args)))
        return
    rows = []
    for name in args.models:
        rows.append(_spawn(name, args))
        print(json.dumps(rows[-1]), flush=True)
    text = table(rows, args)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write(f"\n### GPU check\n\n{text}\n")


if __name__ == "__main__":
    main()
