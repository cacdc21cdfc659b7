"""Loading the project's ``.keras`` files safely, with every custom class registered.

Imports ``rol_hashing.models`` only (its layers, losses and metrics register on import).
Checkpoints also hold the hashing optimiser, ``CaffeSGD``: the training code that loads
them imports ``rol_hashing.training.optim``, which registers it.
"""

from __future__ import annotations

from pathlib import Path

import keras

import rol_hashing.models  # noqa: F401  (registers the layers, losses and metrics)


def load_model(path: str | Path, compile: bool = False) -> keras.Model:
    """Loads a model, checkpoint or segmentation stream with ``safe_mode=True``.

    Args:
        path: a ``.keras`` file written by this package.
        compile: also restore loss, metrics and optimizer state (checkpoints).

    Raises:
        FileNotFoundError: the file is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return keras.saving.load_model(path, safe_mode=True, compile=compile)
