"""SSDH's E1 and E2 against hand computation."""

import keras
import numpy as np
import pytest

from rol_hashing.models import SSDHCodeLoss, ssdh_e1, ssdh_e2, ssdh_losses

H = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.8]], "float32")
# E1 = -(1/(2*2*3)) * (0.16 + 0.16 + 0 + 0.09 + 0.09 + 0.09) = -0.59 / 12
E1 = -0.59 / 12
# mean_k h = [0.5, 0.4]; E2 = (1/(2*2)) * (0 + 0.01) = 0.0025
E2 = 0.0025


def test_e1_and_e2_by_hand():
    assert float(ssdh_e1(H)) == pytest.approx(E1, rel=1e-6)
    assert float(ssdh_e2(H)) == pytest.approx(E2, rel=1e-5)


def test_code_loss_is_alpha_e1_plus_beta_e2():
    dummy = np.zeros_like(H)
    assert float(SSDHCodeLoss()(dummy, H)) == pytest.approx(E1 + E2, rel=1e-5)
    assert float(SSDHCodeLoss(alpha=2.0, beta=0.5)(dummy, H)) == pytest.approx(
        2 * E1 + 0.5 * E2, rel=1e-5
    )


def test_e1_is_lowest_for_binary_outputs():
    binary = np.array([[1.0, 0.0, 1.0, 0.0]], "float32")
    undecided = np.full((1, 4), 0.5, "float32")
    assert float(ssdh_e1(binary)) == pytest.approx(-0.125)
    assert float(ssdh_e1(undecided)) == 0.0
    assert float(ssdh_e2(binary)) == 0.0


def test_loss_config_round_trip():
    loss = SSDHCodeLoss(alpha=0.3, beta=0.7)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, SSDHCodeLoss)
    assert (restored.alpha, restored.beta) == (0.3, 0.7)


def test_loss_dict():
    single = ssdh_losses()
    multi = ssdh_losses(multilabel=True)
    assert set(single) == {"class", "hash"}
    assert isinstance(single["class"], keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(multi["class"], keras.losses.BinaryCrossentropy)
