"""Importing TensorFlow without its start-up lines on a CPU machine.

TensorFlow's C++ side writes to the process's stderr before Python's logging exists
(oneDNN notes, "failed call to cuInit", "Could not find cuda drivers"), and
``TF_CPP_MIN_LOG_LEVEL`` does not silence all of them. ``quiet_tensorflow`` imports
TensorFlow and Keras and touches the devices with file descriptor 2 pointed at
``/dev/null``, then restores it, so later warnings and errors still show. Python
exceptions are unaffected. ``ROL_HASHING_TF_LOGS=1`` keeps the lines.

``ROL_HASHING_RUN_EAGERLY=1`` runs Keras's training and prediction steps eagerly, without
tracing them into graphs: for debugging, and for runs of a few steps (the test suite's
tiny runs), where tracing a VGG16 step costs seconds and the steps themselves do not.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress

ENV_KEEP = "ROL_HASHING_TF_LOGS"
ENV_EAGER = "ROL_HASHING_RUN_EAGERLY"
# TensorFlow's note on every tf.data function made while functions run eagerly
_EAGER_DATA_NOTE = "Even though the `tf.config.experimental_run_functions_eagerly` option"


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Points file descriptor 2 itself at /dev/null (what C++ writes to), whatever
    Python's ``sys.stderr`` is (a Jupyter kernel replaces it but captures fd 2)."""
    with suppress(AttributeError, OSError, ValueError):  # a replaced or closed stderr
        sys.stderr.flush()
    fd = 2
    saved = os.dup(fd)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)


def quiet_tensorflow() -> None:
    """Imports TensorFlow and Keras and initialises the devices without start-up lines."""
    if os.environ.get(ENV_KEEP) == "1" or "tensorflow" in sys.modules:
        apply_run_mode()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_devnull():
        # lazy: the point of this module is to import them with stderr silenced
        import keras
        import tensorflow as tf

        tf.config.list_physical_devices()
        keras.ops.convert_to_numpy(keras.ops.ones(1))
    apply_run_mode()


def apply_run_mode() -> None:
    """Runs TensorFlow functions eagerly when ``ROL_HASHING_RUN_EAGERLY=1`` (and silences
    TensorFlow's note that tf.data functions are still traced)."""
    if os.environ.get(ENV_EAGER) != "1":
        return
    import tensorflow as tf  # lazy: only when the switch is on; this module imports TF late

    warnings.filterwarnings("ignore", message=_EAGER_DATA_NOTE, category=UserWarning)
    tf.config.run_functions_eagerly(True)
