"""The one shared test helper: layers and models (after keras-hub's TestCase), and
subprocesses killed on purpose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import nbformat
import numpy as np
from PIL import Image

from rol_hashing.notebooks import count_figures

# A tiny configuration that still exercises every layer: 32x32 inputs, 1/16 width
# (VGG filters 4..32, fc 256, PSP branches 8 filters on a 4x4 block4_conv3 map).
TINY = {"input_size": 32, "width": 1 / 16}
# The plain route (R0: VGG16-C without batch normalisation, flattened fc6, SGD without a
# warm-up) for tests that check the pipeline's wiring, not the cpu recipe: the recipe's
# VGG16-BN and AdamW make each tiny run about 3x slower to build, trace and save. The
# recipe's own layers and solver are tested in test_recipe_levers.py,
# test_cpu_recipe_defaults.py, the levers' resume test and the quick demo and ablation.
PLAIN_MODEL = {"batch_norm": False, "pooling": "flatten"}
PLAIN_SOLVER = {"optimizer": "sgd", "warmup_epochs": 0, "augment": "none"}


def random_images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """(batch, size, size, 3) float32 images in the VGG-preprocessed range."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-120.0, 130.0, (batch, size, size, 3)).astype("float32")


def as_numpy(outputs) -> dict[str, np.ndarray] | np.ndarray:
    """Model outputs (tensor or dict of tensors) as numpy."""
    if isinstance(outputs, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
    return keras.ops.convert_to_numpy(outputs)


def assert_outputs_equal(a, b, atol: float = 0.0) -> None:
    """Equal outputs (dicts compared key by key)."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0, err_msg=key)
    else:
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def run_layer_test(
    layer_cls: type[keras.layers.Layer],
    init_kwargs: dict,
    inputs,
    expected_output_shape: tuple,
) -> keras.layers.Layer:
    """Config round trip, registered serialisation, eager and symbolic output shapes."""
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert config[key] == value, key
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is layer_cls and restored.get_config() == config
    out = layer(inputs)
    assert tuple(out.shape) == tuple(expected_output_shape)
    if isinstance(inputs, list):
        symbolic = [keras.KerasTensor(x.shape, dtype="float32") for x in inputs]
    else:
        symbolic = keras.KerasTensor(inputs.shape, dtype="float32")
    assert tuple(layer_cls(**init_kwargs)(symbolic).shape) == tuple(expected_output_shape)
    return layer


def run_model_saving_test(model: keras.Model, inputs, tmp_path: Path) -> keras.Model:
    """``.keras`` save and safe-mode load give identical outputs; returns the loaded model."""
    path = Path(tmp_path) / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert_outputs_equal(
        as_numpy(model(inputs, training=False)), as_numpy(loaded(inputs, training=False))
    )
    assert len(loaded.weights) == len(model.weights)
    return loaded


@contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Yields ``proc``; afterwards it is killed if still running, waited for, pipes closed."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def graph_steps() -> Iterator[None]:
    """Keras steps traced into graphs, as users' runs take them, for a fixture (tests
    run them eagerly, tests/conftest.py; a test itself is marked ``graph``)."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(False)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(True)


def sigkill(proc: subprocess.Popen) -> None:
    """Kills ``proc`` with SIGKILL (no clean-up in the child) and checks that it died of it."""
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


REPO = Path(__file__).resolve().parents[1]


def start_cli(args: list[str], fault: str) -> subprocess.Popen:
    """``python -m rol_hashing *args`` in a subprocess that stops at the fault point
    ``fault`` (rol_hashing.faults); output and errors on one text pipe."""
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        ROL_HASHING_FAULT=fault,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "rol_hashing", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen, prefix: str) -> list[str]:
    """Reads the process's output until a line starts with ``prefix``; returns what it read.

    No deadline: the process either prints the line or ends (a stalled fault point ends
    itself after ROL_HASHING_FAULT_STALL_S).
    """
    seen = []
    while True:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError("the process ended early:\n" + "".join(seen[-40:]))
        seen.append(line)
        if line.startswith(prefix):
            return seen


NOTEBOOKS = REPO / "notebooks"
TF_START_UP = ("oneDNN", "cuInit", "cuda_", "I0000", "E0000")


def _check_executed(nb: nbformat.NotebookNode, min_figures: int) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert count_figures(nb) >= min_figures
    # no TensorFlow start-up lines (oneDNN, cuInit, CUDA) in any output
    text = " ".join("".join(o.get("text", "")) for c in code for o in c.outputs)
    assert not any(w in text for w in TF_START_UP), text[:500]


def check_notebooks_command(ssdh_run: Path, rol_run: Path, folder: Path) -> None:
    """``rol-hashing notebooks`` as ``make notebooks`` runs it: a separate process, output
    redirected to ``folder/log.txt``; both notebooks execute without errors and without
    TensorFlow start-up lines, show their figures and save them as PNG files, and the log
    holds no kernel transport warning."""
    out = folder / "out"
    env = {k: v for k, v in os.environ.items() if k != "ROL_HASHING_TF_LOGS"}
    argv = [sys.executable, "-m", "rol_hashing", "notebooks", "--out", str(out)]
    argv += ["--notebooks-dir", str(NOTEBOOKS)]
    argv += ["--ssdh-run", str(ssdh_run), "--rol-run", str(rol_run)]
    with open(folder / "log.txt", "w") as log:
        result = subprocess.run(argv, stdout=log, stderr=log, env=env, timeout=600)
    log_text = (folder / "log.txt").read_text()
    assert result.returncode == 0, log_text[-2000:]
    assert "without encryption" not in log_text  # the kernel talks over IPC, not TCP
    # rol_masks: >= 2 figures; top10: queries, the precision curves, wins and losses
    for name, min_figures in (("rol_masks.ipynb", 2), ("top10_retrievals.ipynb", 4)):
        nb = nbformat.read(out / name, as_version=4)
        _check_executed(nb, min_figures)
        written = sorted((out / "figures").glob(f"{Path(name).stem}_*.png"))
        assert len(written) == count_figures(nb)
        for path in written:
            with Image.open(path) as image:
                assert image.format == "PNG" and min(image.size) > 50
