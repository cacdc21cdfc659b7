"""The cpu recipe's levers (docs/recipe.md): VGG16-BN, global average pooling, AdamW
with a warm-up, and training-time crops and colour changes that keep a cached mask
aligned with its image."""

import numpy as np
import pytest

from rol_hashing.errors import InputError
from rol_hashing.models import (
    build_hashing_model,
    build_segmentation_model,
    build_vgg16,
    load_vgg16_imagenet_weights,
    save_vgg16_weights_h5,
)
from rol_hashing.saving import load_model
from rol_hashing.training.augment import augment_batch, batch_seed
from rol_hashing.training.config import ConfigError, parse_config
from rol_hashing.training.optim import CaffeSGD, hashing_optimizer, scheduled_learning_rate

SMALL = {"input_size": 64, "width": 0.125}


def test_vgg16_bn_puts_batch_norm_between_each_conv_and_its_relu():
    model = build_vgg16("C", batch_norm=True, **SMALL)
    names = [layer.name for layer in model.layers]
    i = names.index("block5_conv3")
    assert names[i + 1 : i + 3] == ["block5_conv3_bn", "block5_conv3_relu"]
    assert model.get_layer("block5_conv3").activation.__name__ == "linear"
    assert sum(n.endswith("_bn") for n in names) == 13
    plain = build_vgg16("C", **SMALL)
    assert not any(n.endswith("_bn") for n in (layer.name for layer in plain.layers))


def test_gap_feeds_fc1_the_channel_means():
    flat = build_hashing_model("ssdh", 12, 5, **SMALL)
    gap = build_hashing_model("ssdh", 12, 5, pooling="gap", **SMALL)
    channels = flat.get_layer("block5_conv3").filters
    assert gap.get_layer("fc1").kernel.shape[0] == channels
    assert flat.get_layer("fc1").kernel.shape[0] == channels * 2 * 2  # 64 px -> 2 x 2


def test_rol_on_a_bn_backbone_multiplies_after_block5s_relu():
    seg = build_segmentation_model(3, batch_norm=True, **SMALL)
    model = build_hashing_model("rol", 12, 5, segmentation_model=seg, batch_norm=True, **SMALL)
    rol = model.get_layer("rol")
    sources = {t._keras_history[0].name for t in rol._inbound_nodes[0].input_tensors}
    assert "block5_conv3_relu" in sources


@pytest.mark.parametrize("method", ["ssdh", "rol"])
def test_lever_models_survive_keras_save_load(tmp_path, method):
    seg = build_segmentation_model(3, batch_norm=True, **SMALL) if method == "rol" else None
    model = build_hashing_model(
        method, 12, 5, segmentation_model=seg, batch_norm=True, pooling="gap", **SMALL
    )
    # move the BN statistics off their defaults so a lost one would show
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.3, "float32"))
    x = np.random.default_rng(0).normal(0, 50, (2, 64, 64, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    for key in ("hash", "class"):
        np.testing.assert_array_equal(
            model.predict(x, verbose=0)[key], again.predict(x, verbose=0)[key]
        )


def test_a_bn_backbone_file_round_trips_and_refuses_the_wrong_model(tmp_path):
    source = build_vgg16("C", include_top=True, classes=4, batch_norm=True, pooling="gap", **SMALL)
    bn = source.get_layer("block3_conv1_bn")
    bn.moving_variance.assign(np.full(bn.moving_variance.shape, 2.5, "float32"))
    path = save_vgg16_weights_h5(source, tmp_path / "bn.h5")
    target = build_hashing_model("ssdh", 12, 4, batch_norm=True, pooling="gap", **SMALL)
    report = load_vgg16_imagenet_weights(target, path)
    assert "block3_conv1_bn" in report.loaded and "fc1" in report.loaded
    np.testing.assert_array_equal(target.get_layer("block3_conv1_bn").moving_variance, 2.5)
    with pytest.raises(InputError, match=r"bn\.h5: a VGG16-BN backbone.*batch_norm: true"):
        load_vgg16_imagenet_weights(build_hashing_model("ssdh", 12, 4, **SMALL), path)
    plain = save_vgg16_weights_h5(build_vgg16("C", **SMALL), tmp_path / "plain.h5")
    with pytest.raises(InputError, match=r"plain\.h5: a VGG16 backbone without Batch"):
        load_vgg16_imagenet_weights(target, plain)
    flat_top = build_vgg16("C", include_top=True, classes=4, batch_norm=True, **SMALL)
    flat = save_vgg16_weights_h5(flat_top, tmp_path / "flat.h5")
    with pytest.raises(InputError, match=r"flat\.h5: layer 'fc1'.*model\.pooling"):
        load_vgg16_imagenet_weights(target, flat)


def test_warm_up_rises_linearly_then_the_paper_step():
    rates = [scheduled_learning_rate(e, 1e-3, 6, 1e-4, warmup_epochs=3) for e in range(1, 9)]
    np.testing.assert_allclose(rates, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    assert scheduled_learning_rate(1, 1e-3, 6, 1e-4) == 1e-3  # no warm-up: the paper's


def test_optimizers_by_name():
    assert isinstance(hashing_optimizer("sgd", 1e-3, 0.9, 5e-4), CaffeSGD)
    adam = hashing_optimizer("adam", 1e-3, 0.9, 5e-4)
    assert type(adam).__name__ == "AdamW" and float(adam.weight_decay) == pytest.approx(5e-4)


@pytest.mark.parametrize(
    "key, value",
    [
        (("model", "pooling"), "mean"),
        (("hashing", "optimizer"), "rmsprop"),
        (("hashing", "augment"), "flip"),
        (("hashing", "warmup_epochs"), -1),
        (("model", "batch_norm"), "yes"),
    ],
)
def test_lever_keys_are_checked(key, value):
    with pytest.raises(ConfigError, match=".".join(key)):
        parse_config({key[0]: {key[1]: value}}, source="x.yaml")


def test_augmentation_is_a_function_of_seed_epoch_and_batch():
    x = np.random.default_rng(0).normal(0, 50, (3, 32, 32, 3)).astype("float32")
    a, _ = augment_batch(x, batch_seed(0, 1, 2), "crop_colour", mirror=True)
    b, _ = augment_batch(x, batch_seed(0, 1, 2), "crop_colour", mirror=True)
    c, _ = augment_batch(x, batch_seed(0, 2, 2), "crop_colour", mirror=True)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.numpy() - c.numpy()).mean() > 1.0
    none, _ = augment_batch(x, batch_seed(0, 1, 2), "none")
    np.testing.assert_array_equal(none, x)
    pixels = a.numpy() + np.array([103.939, 116.779, 123.68], "float32")
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3  # kept in pixel range


def test_a_cached_mask_is_cropped_and_mirrored_with_its_image():
    rng = np.random.default_rng(1)
    masks = rng.uniform(0, 1, (8, 4, 4, 1)).astype("float32")
    # each image is its mask, blown up 16x: a crop of one must be the crop of the other
    images = np.repeat(np.repeat(masks, 16, axis=1), 16, axis=2)
    images = np.repeat(images, 3, axis=3) * 100.0
    out, out_masks = augment_batch(images, batch_seed(3, 0, 0), "crop", True, masks)
    assert out_masks.shape == masks.shape
    pooled = out.numpy()[..., :1].reshape(8, 4, 16, 4, 16, 1).mean(axis=(2, 4)) / 100.0
    for k in range(8):
        assert np.corrcoef(pooled[k].ravel(), out_masks.numpy()[k].ravel())[0, 1] > 0.8
    assert not np.allclose(out_masks, masks)  # the crops did change the masks


def test_hashing_inputs_augment_training_epochs_only(tiny_runs):
    from rol_hashing.data.generated import load_generated
    from rol_hashing.training.inputs import HashingInputs

    record = load_generated(tiny_runs["data_root"])
    idx = np.arange(16)
    masks = np.random.default_rng(0).uniform(0, 1, (16, 2, 2, 1)).astype("float32")
    plain = HashingInputs(record, idx, 32, 8, 12, seed=0, masks=masks)
    aug = HashingInputs(record, idx, 32, 8, 12, seed=0, masks=masks, augment="crop")
    first = next(iter(aug.dataset(0)))[0]
    again = next(iter(aug.dataset(0)))[0]
    unaug = next(iter(plain.dataset(0)))[0]
    np.testing.assert_array_equal(first["image"], again["image"])
    assert np.abs(first["image"].numpy() - unaug["image"].numpy()).mean() > 0.5
    ordered = next(iter(aug.dataset(0, shuffle=False)))[0]
    np.testing.assert_array_equal(
        ordered["image"], next(iter(plain.dataset(0, shuffle=False)))[0]["image"]
    )
