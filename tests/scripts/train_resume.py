"""Subprocess body for the resume and tf.distribute tests (isolates global TF settings).

usage: train_resume.py MODE DATA_ROOT OUT_DIR
  MODE = resume      : uninterrupted vs interrupted-at-epoch-2-and-resumed; prints max |dw|
  MODE = resume-levers: the same with the cpu recipe's levers (VGG16-BN, GAP, AdamW with a
                       warm-up, crops, colour and mirrors)
  MODE = mirrored    : one epoch under MirroredStrategy on 2 logical CPUs; prints replicas
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

mode, data_root, out = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
if mode.startswith("resume"):
    tf.config.experimental.enable_op_determinism()

import keras  # noqa: E402

from rol_hashing.quiet import apply_run_mode  # noqa: E402
from rol_hashing.training.config import load_config  # noqa: E402
from rol_hashing.training.hashing import train_hashing  # noqa: E402

apply_run_mode()  # eager steps under ROL_HASHING_RUN_EAGERLY=1 (tests/conftest.py)

LEVER_HASHING = {
    "optimizer": "adam",
    "warmup_epochs": 1,
    "augment": "crop_colour",
    "augment_mirror": True,
}


def config(runs_dir: str, epochs: int):
    cfg = load_config(
        "experiments/generated.yaml",
        "cpu",
        {
            "data_root": data_root,
            "runs_dir": runs_dir,
            # "resume": the plain route (tests/helpers.py); "resume-levers": the recipe
            "model": {
                "input_size": 32,
                "width": 0.125,
                "backbone_weights": "none",
                "batch_norm": False,
                "pooling": "flatten",
            },
            "hashing": {
                "optimizer": "sgd",
                "warmup_epochs": 0,
                "augment": "none",
                "epochs": epochs,
                "batch_size": 16,
                "learning_rate": 1e-2,
                "learning_rate_after_drop": 1e-3,
            },
        },
    )
    if mode == "resume-levers":
        cfg.model.batch_norm, cfg.model.pooling = True, "gap"
        for key, value in LEVER_HASHING.items():
            setattr(cfg.hashing, key, value)
        cfg.hashing.learning_rate, cfg.hashing.learning_rate_after_drop = 1e-3, 1e-4
    return cfg


class StopAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch + 1}")


def weights(run):
    model = keras.saving.load_model(run.model, safe_mode=True)
    return model.get_weights()


if mode.startswith("resume"):
    keras.utils.set_random_seed(0)
    straight = train_hashing(config(f"{out}/a", 3), "ssdh", 12, verbose=0)
    keras.utils.set_random_seed(0)
    try:
        train_hashing(config(f"{out}/b", 3), "ssdh", 12, verbose=0, callbacks=[StopAtEpoch(1)])
        raise SystemExit("the interrupting callback did not fire")
    except KeyboardInterrupt:
        pass
    keras.utils.set_random_seed(123)  # resuming must not depend on the process's seed
    resumed = train_hashing(config(f"{out}/b", 3), "ssdh", 12, verbose=0, resume=True)
    diff = max(
        float(np.abs(a - b).max()) for a, b in zip(weights(straight), weights(resumed), strict=True)
    )
    print(f"MAXDIFF {diff}")
elif mode == "mirrored":
    cfg = config(f"{out}/m", 1)
    run = train_hashing(cfg, "ssdh", 12, verbose=0, strategy="mirrored")
    print(f"REPLICAS {tf.distribute.MirroredStrategy().num_replicas_in_sync}")
    print(f"MODEL {run.model.is_file()}")
