"""``ROL_HASHING_RUN_EAGERLY``: the switch the suite runs its tiny runs under, and the
``graph`` marker that keeps users' traced steps under test (tests/conftest.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rol_hashing.quiet import ENV_EAGER, apply_run_mode


def _traces_of_one_fit() -> int:
    """The Python calls of a tiny model's train step over 2 epochs of 3 batches: one
    trace when steps are traced, one call per step when they run eagerly."""
    calls = []

    class Count(keras.layers.Layer):
        def call(self, x, training=None):
            if training:
                calls.append(1)
            return x

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(Count()(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((12, 4), "float32")
    model.fit(x, np.zeros((12, 2), "float32"), batch_size=4, epochs=2, verbose=0)
    return len(calls)


def test_the_switch_runs_steps_eagerly_only_when_set(monkeypatch):
    monkeypatch.setenv(ENV_EAGER, "0")
    tf.config.run_functions_eagerly(False)
    try:
        apply_run_mode()
        assert not tf.config.functions_run_eagerly()
        assert _traces_of_one_fit() == 1
        monkeypatch.setenv(ENV_EAGER, "1")
        apply_run_mode()
        assert tf.config.functions_run_eagerly()
        assert _traces_of_one_fit() == 6
    finally:
        tf.config.run_functions_eagerly(True)


@pytest.mark.graph
def test_a_graph_test_and_its_subprocesses_trace_their_steps():
    import os

    assert not tf.config.functions_run_eagerly() and os.environ[ENV_EAGER] == "0"
    assert _traces_of_one_fit() == 1


def test_other_tests_run_their_steps_eagerly():
    assert tf.config.functions_run_eagerly()
    assert _traces_of_one_fit() == 6
