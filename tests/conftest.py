"""Test-wide settings: quiet TensorFlow, deterministic seeds, eager steps."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite's runs are tiny (one to a few steps each), where tracing a VGG16 step into a
# graph takes seconds and running it milliseconds: tests run Keras steps eagerly, and so
# do the CLI processes they start (ROL_HASHING_RUN_EAGERLY, rol_hashing/quiet.py). Tests
# marked `graph` run the traced steps that users' runs take (test_training.py,
# test_pretrain_resume.py).
os.environ["ROL_HASHING_RUN_EAGERLY"] = "1"

import keras  # noqa: E402
import pytest  # noqa: E402
from helpers import graph_steps  # noqa: E402

from rol_hashing.quiet import ENV_EAGER, apply_run_mode  # noqa: E402

apply_run_mode()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(autouse=True)
def _run_mode(request, monkeypatch):
    """Eager steps, or traced ones for a test marked ``graph`` (and its subprocesses)."""
    if request.node.get_closest_marker("graph") is None:
        yield
        return
    monkeypatch.setenv(ENV_EAGER, "0")
    with graph_steps():
        yield


# ---- tiny trained runs, shared by every test that needs a finished run -----------

TINY_RUN_MODEL = {"input_size": 32, "width": 0.125, "batch_norm": False, "pooling": "flatten"}
TINY_RUN_BITS = 12


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict:
    """A generated data set and tiny trained runs (~15-30 s on two cores, once a session).

    Returns a dict:
        data_root: the generated data set (240 images, 4 classes, 64x64).
        runs_dir: the runs folder.
        seg_run: the segmentation run folder (``model.keras`` inside).
        runs: ``{"ssdh": path, "rol": path}``, 12-bit hashing run folders (1 epoch).
        overrides: the ``load_config`` overrides of ``experiments/generated.yaml``
            (profile ``cpu``) that reproduce these runs' config.
        bits: 12.

    Tests may write into the run folders (codes, metrics, index); a test that breaks
    files must work on a copy.
    """
    from pathlib import Path

    from rol_hashing.data.generated import make_generated_dataset
    from rol_hashing.training.config import load_config
    from rol_hashing.training.hashing import train_hashing
    from rol_hashing.training.segmentation import train_segmentation

    base = tmp_path_factory.mktemp("tiny_runs")
    gen, runs = base / "gen", base / "runs"
    make_generated_dataset(gen, num_images=240, num_seg_images=80, image_size=64, num_classes=4)
    overrides = {
        "data_root": str(gen),
        "runs_dir": str(runs),
        "segmentation": {"data_root": str(gen / "VOCdevkit" / "VOC2012"), "epochs": 1},
        "hashing": {  # the plain route (tests/helpers.py PLAIN_SOLVER)
            "optimizer": "sgd",
            "warmup_epochs": 0,
            "augment": "none",
            "epochs": 1,
            "segmentation_model": str(runs / "generated-seg" / "model.keras"),
            "learning_rate": 1e-2,
            "learning_rate_after_drop": 1e-3,
        },
        "model": {**TINY_RUN_MODEL, "backbone_weights": "none"},
    }
    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "experiments" / "generated.yaml", "cpu", overrides)
    keras.utils.set_random_seed(0)
    seg = train_segmentation(cfg, overwrite=True, verbose=0)
    hashing = {
        m: train_hashing(cfg, m, TINY_RUN_BITS, overwrite=True, verbose=0).path
        for m in ("ssdh", "rol")
    }
    return {
        "data_root": gen,
        "runs_dir": runs,
        "seg_run": seg.path,
        "runs": hashing,
        "overrides": overrides,
        "bits": TINY_RUN_BITS,
    }
