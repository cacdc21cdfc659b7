"""VGG16 backbones, configurations C and D (Simonyan & Zisserman, Table 1).

Config C (the paper's choice, its ref. [21]) has 13 conv + 3 FC weight layers
where ``block3_conv3``, ``block4_conv3`` and ``block5_conv3`` are 1x1
convolutions; config D is the familiar all-3x3 VGG16 of ``keras.applications``.
Layer names are exactly those of ``keras.applications.VGG16`` so that the Keras
ImageNet ``.h5`` files load by name.

Inputs are expected already preprocessed the Keras VGG16 way (RGB->BGR, ImageNet
mean subtracted); the data pipeline does this once, the models never do.
"""

from __future__ import annotations

import keras
from keras import layers

from rol_hashing.constants import POOLINGS
from rol_hashing.errors import InputError

# (block, number of convs, filters at width 1.0)
VGG16_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (1, 2, 64),
    (2, 2, 128),
    (3, 3, 256),
    (4, 3, 512),
    (5, 3, 512),
)
# Layers that are 1x1 in configuration C (the last conv of blocks 3, 4 and 5).
CONFIG_C_1X1: frozenset[str] = frozenset({"block3_conv3", "block4_conv3", "block5_conv3"})
FC_UNITS = 4096
VALID_CONFIGS = ("C", "D")
# Every spatial tap is an exact divisor of the input: 5 poolings of stride 2.
INPUT_STRIDE = 32
# VGG16-BN (torchvision's vgg16_bn): conv -> BatchNorm -> ReLU; the BN layer of
# ``block1_conv1`` is ``block1_conv1_bn``.
BN_SUFFIX = "_bn"


def scaled(units: int, width: float) -> int:
    """Channel count ``units * width``, rounded, at least 1."""
    return max(1, int(round(units * width)))


def kernel_size(layer_name: str, vgg: str) -> int:
    """Kernel size (1 or 3) of a VGG16 conv layer in configuration ``vgg``."""
    return 1 if vgg == "C" and layer_name in CONFIG_C_1X1 else 3


def check_backbone_args(vgg: str, input_size: int, width: float) -> None:
    """Raises ValueError for an unknown VGG variant, an unusable input size or width."""
    if vgg not in VALID_CONFIGS:
        raise InputError(f"VGG16 config (vgg) must be one of {VALID_CONFIGS}, got {vgg!r}.")
    if width <= 0:
        raise InputError(f"width must be > 0 (1.0 is the paper's VGG16), got {width}.")
    if input_size < INPUT_STRIDE or input_size % INPUT_STRIDE:
        raise InputError(
            f"input_size must be a multiple of {INPUT_STRIDE} and at least {INPUT_STRIDE} "
            f"(VGG16 halves it five times), got {input_size}. Valid sizes: 32, 64, 96, ..., "
            "224 (the paper's), 256, ..."
        )


def vgg16_features(
    x: keras.KerasTensor,
    vgg: str = "C",
    width: float = 1.0,
    stop_at: str = "block5_pool",
    kernel_initializer: str = "glorot_uniform",
    batch_norm: bool = False,
) -> dict[str, keras.KerasTensor]:
    """Applies VGG16's convolutional layers to ``x`` and returns every tap by name.

    Args:
        x: (B, S, S, 3) preprocessed images.
        vgg: the VGG16 configuration, "C" or "D".
        width: channel multiplier (1.0 in the paper).
        stop_at: name of the last layer to build (e.g. "block4_conv3" for PSP).
        kernel_initializer: of every conv layer (Keras' default; "he_normal" lets the
            deep ReLU stack train from scratch, as in the demo's pre-training).
        batch_norm: VGG16-BN: each conv is followed by BatchNormalization
            (``<conv>_bn``) and then its ReLU (``<conv>_relu``).

    Returns:
        Dict from layer name (``block1_conv1`` ... ``block5_pool``) to its output
        (after the ReLU, also with ``batch_norm``);
        ``block4_conv3`` is (B, S/8, S/8, 512*width), ``block5_conv3`` (B, S/16, S/16,
        512*width), ``block5_pool`` (B, S/32, S/32, 512*width).
    """
    taps: dict[str, keras.KerasTensor] = {}
    for block, n_convs, filters in VGG16_BLOCKS:
        for i in range(1, n_convs + 1):
            name = f"block{block}_conv{i}"
            k = kernel_size(name, vgg)
            x = layers.Conv2D(
                scaled(filters, width),
                k,
                padding="same",
                activation=None if batch_norm else "relu",
                kernel_initializer=kernel_initializer,
                name=name,
            )(x)
            if batch_norm:
                x = layers.BatchNormalization(name=name + BN_SUFFIX)(x)
                x = layers.Activation("relu", name=name + "_relu")(x)
            taps[name] = x
            if name == stop_at:
                return taps
        name = f"block{block}_pool"
        x = layers.MaxPooling2D(2, strides=2, name=name)(x)
        taps[name] = x
        if name == stop_at:
            return taps
    if stop_at not in taps:
        raise InputError(
            f"Unknown VGG16 layer {stop_at!r}; names are block1_conv1 ... block5_pool."
        )
    return taps


def vgg16_top(
    x: keras.KerasTensor,
    width: float = 1.0,
    dropout: float = 0.0,
    kernel_initializer: str = "glorot_uniform",
    pooling: str = "flatten",
) -> keras.KerasTensor:
    """Flatten (or global average pooling) + fc1 + fc2 (VGG's fc6/fc7, 4096*width ReLU
    units each).

    Args:
        x: (B, h, w, C) output of ``block5_pool``.
        dropout: rate of the Dropout after each FC layer (0.5 in SSDH, 0 in VGG16's
            inference graph).
        kernel_initializer: of fc1 and fc2.
        pooling: "flatten" (VGG16: fc1 sees h*w*C values) or "gap" (layer ``gap``:
            the C channel means).

    Returns:
        (B, 4096*width) output of ``fc2`` (after its dropout, if any).
    """
    if pooling not in POOLINGS:
        raise InputError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    if pooling == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
    for name, drop_name in (("fc1", "fc1_dropout"), ("fc2", "fc2_dropout")):
        x = layers.Dense(
            scaled(FC_UNITS, width),
            activation="relu",
            kernel_initializer=kernel_initializer,
            name=name,
        )(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=drop_name)(x)
    return x


def build_vgg16(
    vgg: str = "C",
    input_size: int = 224,
    width: float = 1.0,
    include_top: bool = False,
    classes: int = 1000,
    name: str | None = None,
    kernel_initializer: str = "glorot_uniform",
    batch_norm: bool = False,
    pooling: str = "flatten",
) -> keras.Model:
    """Builds VGG16 (config C or D) as a functional model.

    Args:
        vgg: "C" (three 1x1 layers, the paper's default) or "D" (all 3x3, as
            ``keras.applications.VGG16``).
        input_size: side S of the square input (224 in the paper).
        width: channel multiplier (1.0 in the paper); fc1/fc2 scale with it.
        include_top: add flatten, fc1, fc2 and the ``predictions`` softmax layer.
        classes: units of ``predictions`` when ``include_top``.
        name: model name, default ``vgg16_c`` / ``vgg16_d``.
        kernel_initializer: of the conv and fc layers (default Keras'; "he_normal"
            trains from scratch more readily).
        batch_norm: VGG16-BN (a BatchNormalization between each conv and its ReLU).
        pooling: with the top, "flatten" (VGG16) or "gap" before fc1.

    Returns:
        Model (B, S, S, 3) -> (B, S/32, S/32, 512*width) (``block5_pool``), or
        (B, classes) with the top. 13 conv layers, plus 3 Dense with the top.

    Example:
        >>> model = build_vgg16("C", input_size=64, width=0.25)
        >>> model.output.shape
        (None, 2, 2, 128)
    """
    check_backbone_args(vgg, input_size, width)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = vgg16_features(
        inputs, vgg, width, kernel_initializer=kernel_initializer, batch_norm=batch_norm
    )["block5_pool"]
    if include_top:
        x = vgg16_top(x, width, kernel_initializer=kernel_initializer, pooling=pooling)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=name or f"vgg16_{vgg.lower()}")
