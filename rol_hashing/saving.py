"""Loading the project's ``.keras`` files safely, with every custom class registered.

Imports ``rol_hashing.models`` only (its layers, losses and metrics register on import).
Checkpoints also hold the hashing optimiser, ``CaffeSGD``: the training code that loads
them imports ``rol_hashing.training.optim``, which registers it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

import rol_hashing.models  # noqa: F401  (registers the layers, losses and metrics)
from rol_hashing.errors import InputError


def load_model(path: str | Path, compile: bool = False) -> keras.Model:
    """Loads a model, checkpoint or segmentation stream with ``safe_mode=True``.

    Args:
        path: a ``.keras`` file written by this package.
        compile: also restore loss, metrics and optimizer state (checkpoints).

    Raises:
        FileNotFoundError: the file is missing.
        InputError: the file is not a loadable model (damaged, or another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as err:
        # Keras reports a damaged archive as "File not found" or a bare ValueError.
        raise InputError(
            f"{path} is not a loadable .keras model of this package "
            f"({type(err).__name__}: {str(err)[:300]})"
        ) from err
