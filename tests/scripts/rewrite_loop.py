"""Subprocess body for the killed-mid-write tests: rewrites one file forever.

usage: rewrite_loop.py KIND FOLDER
  KIND = split | index | codes | table | checkpoint
Version n of the file is written through the package's own writer; "WROTE n" is
printed after each. The parent sets ROL_HASHING_FAULT so that the process stops at a
fault point of the atomic writer (rol_hashing.faults), and kills it there with SIGKILL.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

kind, folder = sys.argv[1], Path(sys.argv[2])
start = int(sys.argv[3]) if len(sys.argv) > 3 else 0


def sizes(n: int) -> int:
    """Alternating small and large versions, so a kill often lands mid-write."""
    return 2000 + (n % 3) * 30000


def write(n: int) -> None:
    rng = np.random.default_rng(n)
    if kind == "split":
        from rol_hashing.data.splits import Split

        m = sizes(n)
        ids = tuple(f"class_{i % 7}/img_{i:06d}_v{n}.jpg" for i in range(m))
        Split("folders", n, ids[: m // 2], ids[m // 2 : m // 2 + 10], ids[m // 2 + 10 :]).save(
            folder / "split.json"
        )
    elif kind == "index":
        from rol_hashing.retrieval.index import HammingIndex

        index = HammingIndex(48)
        index.add(rng.random((sizes(n), 48)) > 0.5)
        index.save(folder / "index.npz")
    elif kind == "codes":
        from rol_hashing.retrieval.codes import save_codes

        m = sizes(n)
        save_codes(folder / "codes.npz", rng.random((m, 32)) > 0.5, np.arange(m), np.full(m, n))
    elif kind == "table":
        from rol_hashing.experiments.table2_files import Table2Row, write_table2

        rows = [
            Table2Row(b, method, 1000, float(n % 100), 50.0, folder / "run")
            for b in (12, 24, 32, 48)[: 1 + n % 4]
            for method in ("ssdh", "rol")
        ]
        write_table2(rows, "cifar10", "cpu", folder)
    elif kind == "checkpoint":
        write_checkpoint(n)
    else:
        raise SystemExit(f"unknown kind {kind!r}")


_model = None


def write_checkpoint(n: int) -> None:
    global _model
    import keras

    from rol_hashing.io import atomic_save_model
    from rol_hashing.training.checkpoints import save_checkpoint
    from rol_hashing.training.layout import Run

    if _model is None:
        inputs = keras.Input((64,))
        x = keras.layers.Dense(512, name="wide")(inputs)
        _model = keras.Model(inputs, keras.layers.Dense(4, name="out")(x))
        _model.compile(optimizer="sgd", loss="mse")
    _model.get_layer("out").bias.assign(np.full(4, float(n), np.float32))
    run = Run(folder)
    save_checkpoint(_model, run, n + 1)
    atomic_save_model(_model, run.model)


n = start
while True:
    write(n)
    print(f"WROTE {n}", flush=True)
    n += 1
