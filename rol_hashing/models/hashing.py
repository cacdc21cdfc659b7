"""The classification stream with hashing (SSDH head), with or without the ROL.

``method="ssdh"``: VGG16 -> block5_pool -> flatten -> fc1 (fc6) 4096 ReLU +
Dropout 0.5 -> fc2 (fc7) 4096 ReLU + Dropout 0.5 -> ``hash`` Dense(K, sigmoid)
-> ``class`` Dense(C) on the hash output (SSDH classifies from the latent layer).

``method="rol"``: the same, with the frozen segmentation stream run on the same
image and the Reliability Object Layer multiplying ``block5_conv3`` (default;
the reading of "the last feature map" in docs/readings.md §1.3) or ``block5_pool``.

With ``mask_input=True`` the model takes the reliability mask R as a second
input ("mask", (B, h, w, 1) at the ROL's feature grid) instead of running the
segmentation stream: the cached-mask training path. Layer names are shared, so
weights move between the two forms by name.
"""

from __future__ import annotations

import keras
from keras import layers

from rol_hashing.constants import METHODS
from rol_hashing.errors import InputError
from rol_hashing.models.rol import ReliabilityObjectLayer
from rol_hashing.models.vgg import check_backbone_args, vgg16_features, vgg16_top

ROL_TAPS = ("block5_conv3", "block5_pool")


def rol_feature_size(input_size: int, rol_at: str = "block5_conv3") -> int:
    """Side of the feature grid the ROL multiplies: S/16 (block5_conv3) or S/32."""
    return input_size // (16 if rol_at == "block5_conv3" else 32)


def _check_hashing_args(method: str, bits: int, num_classes: int, rol_at: str) -> None:
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}.")
    if not isinstance(bits, int) or bits < 1:
        raise InputError(
            f"bits must be a positive integer (the paper: 12, 24, 32, 48), got {bits!r}."
        )
    if num_classes < 2:
        raise InputError(f"num_classes must be >= 2, got {num_classes}.")
    if rol_at not in ROL_TAPS:
        raise InputError(f"rol_at must be one of {ROL_TAPS}, got {rol_at!r}.")


def build_hashing_model(
    method: str = "rol",
    bits: int = 48,
    num_classes: int = 10,
    segmentation_model: keras.Model | None = None,
    multilabel: bool = False,
    vgg: str = "C",
    input_size: int = 224,
    width: float = 1.0,
    rol_at: str = "block5_conv3",
    mask_input: bool = False,
    background_index: int = 0,
    dropout: float = 0.5,
    rol_form: str = "soft",
    name: str | None = None,
    batch_norm: bool = False,
    pooling: str = "flatten",
) -> keras.Model:
    """Builds the SSDH hashing model, with the ROL for ``method="rol"``.

    Args:
        method: "rol" (the paper's) or "ssdh" (the baseline).
        bits: code length K (12, 24, 32 or 48 in Table 2).
        num_classes: C, the classifier's classes.
        segmentation_model: the trained segmentation stream for "rol" (from
            ``train-voc-seg``); it is embedded and frozen. Required for "rol" without
            ``mask_input`` (pass ``build_segmentation_model(...)`` for an untrained one,
            to inspect the architecture).
        multilabel: sigmoid classifier (multi-hot labels, VOC) instead of softmax.
        vgg, input_size, width: the VGG16 backbone (readings §1.1).
        rol_at: "block5_conv3" (default) or "block5_pool".
        mask_input: take R as an input "mask" instead of running the stream.
        background_index: background channel of the segmentation output.
        dropout: rate after fc1 and fc2 (0.5 in SSDH).
        rol_form: the ROL's mask form, "soft" (the paper's), "binary" or "normalized".
        batch_norm: VGG16-BN backbone (the ROL multiplies after block5_conv3's ReLU).
        pooling: "flatten" (the paper's) or "gap" before fc1.

    Returns:
        Model: (B, S, S, 3) images (or {"image", "mask"} with ``mask_input``) ->
        {"hash": (B, bits) sigmoid, "class": (B, num_classes) probabilities}.
    """
    _check_hashing_args(method, bits, num_classes, rol_at)
    check_backbone_args(vgg, input_size, width)
    image = keras.Input((input_size, input_size, 3), name="image")
    inputs: keras.KerasTensor | dict = image
    taps = vgg16_features(image, vgg, width, stop_at=rol_at, batch_norm=batch_norm)
    x = taps[rol_at]
    if method == "rol":
        if mask_input:
            side = rol_feature_size(input_size, rol_at)
            mask = keras.Input((side, side, 1), name="mask")
            inputs = {"image": image, "mask": mask}
            rol = ReliabilityObjectLayer(
                background_index, mask_given=True, form=rol_form, name="rol"
            )
            x = rol([mask, x])
        else:
            if segmentation_model is None:
                raise InputError(
                    "method 'rol' needs its segmentation stream: pass segmentation_model= "
                    "(the train-seg run's model.keras, loaded), or mask_input=True to feed R; "
                    "an untrained stream is build_segmentation_model(...), given explicitly"
                )
            seg = segmentation_model
            if tuple(seg.input_shape[1:3]) != (input_size, input_size):
                raise InputError(
                    f"The segmentation model takes {seg.input_shape[1:3]} inputs, the hashing "
                    f"model {input_size}x{input_size}; train both at the same input_size."
                )
            seg.trainable = False
            probs = seg(image, training=False)
            rol = ReliabilityObjectLayer(
                background_index=background_index, form=rol_form, name="rol"
            )
            x = rol([probs, x])
    if rol_at == "block5_conv3":
        x = layers.MaxPooling2D(2, strides=2, name="block5_pool")(x)
    x = vgg16_top(x, width, dropout=dropout, pooling=pooling)
    h = layers.Dense(bits, activation="sigmoid", name="hash")(x)
    c = layers.Dense(num_classes, activation="sigmoid" if multilabel else "softmax", name="class")(
        h
    )
    return keras.Model(inputs, {"hash": h, "class": c}, name=name or f"{method}_{bits}b")


def hashing_model_shape(model: keras.Model, source: object) -> dict[str, int | str]:
    """What a loaded hashing model is: ``{"method", "bits", "classes", "input_size"}``
    (``method`` "rol" when it holds a ``ReliabilityObjectLayer``).

    Raises:
        InputError: naming ``source`` (the model file), when ``model`` is not a hashing
            model (no "hash" and "class" outputs, e.g. a segmentation model).
    """
    outputs = model.output if isinstance(model.output, dict) else {}
    if set(outputs) != {"hash", "class"}:
        raise InputError(
            f"{source}: not a hashing model (expected the outputs 'hash' and 'class', found "
            f"{sorted(outputs) or [getattr(t, 'name', '?') for t in model.outputs]})"
        )
    image = model.input["image"] if isinstance(model.input, dict) else model.input
    has_rol = any(isinstance(layer, ReliabilityObjectLayer) for layer in model.layers)
    return {
        "method": "rol" if has_rol else "ssdh",
        "bits": int(outputs["hash"].shape[-1]),
        "classes": int(outputs["class"].shape[-1]),
        "input_size": int(image.shape[1]),
    }
