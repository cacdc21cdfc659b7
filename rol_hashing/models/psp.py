"""The local-level stream: a PSP module (Zhao et al.) on VGG16's ``block4_conv3``.

Table 1 of the paper, at input 224 and width 1 (a 28x28x512 input):

| bin | pool (= stride) | after pooling | up-sampling | crop | branch out |
|---|---|---|---|---|---|
| 1 | 28 | 1x1x128 | x28 | - | 28x28x128 |
| 2 | 14 | 2x2x128 | x14 | - | 28x28x128 |
| 3 | 9 | 3x3x128 | x10 | Cropping2D 1x1 (30->28) | 28x28x128 |
| 4 | 7 | 4x4x128 | x7 | - | 28x28x128 |

Stack: Concatenate(block4_conv3, 4 branches) -> 28x28x1024. Table 1 prints
"Up-sample x2" and "x4" for bins 2 and 4; from 2x2 and 4x4 maps those cannot
reach 28x28, and only x14 and x7 give the table's own 28x28x1024 stack, so we
use x14 and x7 (readings §1.2). At other sizes the same rule derives everything:
pool = floor(h / bin), out = floor(h / pool), up = ceil(h / out), crop = out*up - h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers

from rol_hashing.errors import InputError
from rol_hashing.models.vgg import check_backbone_args, scaled, vgg16_features

PSP_BINS: tuple[int, ...] = (1, 2, 3, 4)
SEG_HEAD_FILTERS = 512
MIN_PSP_INPUT = max(PSP_BINS)


@dataclass(frozen=True)
class PSPBranch:
    """Geometry of one PSP branch on an h x h feature map."""

    bin: int
    pool: int
    pooled: int
    upsample: int
    crop: tuple[int, int]


def psp_geometry(h: int, bins: tuple[int, ...] = PSP_BINS) -> list[PSPBranch]:
    """Derives pool size, pooled size, up-sampling factor and crop per bin.

    Args:
        h: side of the square ``block4_conv3`` map (28 at input 224).

    Raises:
        ValueError: ``h`` is smaller than the largest bin (4).
    """
    if h < max(bins):
        raise InputError(
            f"PSP needs a block4_conv3 map of at least {max(bins)}x{max(bins)} (bins {bins}); "
            f"got {h}x{h}. block4_conv3 is input_size/8, so input_size must be >= "
            f"{8 * max(bins)} (and a multiple of 32): 32, 64, 96, ..., 224."
        )
    branches = []
    for b in bins:
        pool = h // b
        pooled = h // pool
        up = math.ceil(h / pooled)
        excess = pooled * up - h
        branches.append(PSPBranch(b, pool, pooled, up, (excess // 2, excess - excess // 2)))
    return branches


def psp_module(features: keras.KerasTensor, bins: tuple[int, ...] = PSP_BINS) -> keras.KerasTensor:
    """Pyramid pooling on (B, h, h, N): returns the (B, h, h, 2N) stack ``psp_concat``.

    Each branch: AveragePooling2D (pool = stride = floor(h/bin), 'valid') ->
    Conv 1x1 with N/4 filters, no bias -> BatchNorm -> ReLU -> bilinear
    UpSampling2D -> Cropping2D when the up-sampled map overshoots h.
    """
    h = int(features.shape[1])
    n = int(features.shape[-1])
    branches = [features]
    for i, g in enumerate(psp_geometry(h, bins), start=1):
        x = layers.AveragePooling2D(g.pool, strides=g.pool, padding="valid", name=f"psp_pool{i}")(
            features
        )
        x = layers.Conv2D(max(1, n // 4), 1, use_bias=False, name=f"psp_conv{i}")(x)
        x = layers.BatchNormalization(name=f"psp_bn{i}")(x)
        x = layers.ReLU(name=f"psp_relu{i}")(x)
        x = layers.UpSampling2D(g.upsample, interpolation="bilinear", name=f"psp_up{i}")(x)
        if any(g.crop):
            x = layers.Cropping2D((g.crop, g.crop), name=f"psp_crop{i}")(x)
        branches.append(x)
    return layers.Concatenate(axis=-1, name="psp_concat")(branches)


def build_segmentation_model(
    num_classes: int = 21,
    vgg: str = "C",
    input_size: int = 224,
    width: float = 1.0,
    name: str = "psp_segmentation",
    batch_norm: bool = False,
) -> keras.Model:
    """VGG16 (to ``block4_conv3``) + PSP + head: the paper's local-level stream.

    Head (readings §1.2): Conv 3x3 512*width + BN + ReLU, Conv 1x1 to ``num_classes``
    (``seg_logits``), bilinear up-sampling x8, softmax over classes.

    Args:
        num_classes: classes including background at index 0 (VOC: 21).
        vgg: VGG16 configuration, "C" (default) or "D".
        input_size: square input side S (224 in the paper), multiple of 32.
        width: channel multiplier (1.0 in the paper).
        batch_norm: a VGG16-BN backbone (``model.batch_norm``).

    Returns:
        Model (B, S, S, 3) preprocessed images -> (B, S, S, num_classes) probabilities.
    """
    check_backbone_args(vgg, input_size, width)
    if num_classes < 2:
        raise InputError(f"num_classes must be >= 2 (background + objects), got {num_classes}.")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    features = vgg16_features(inputs, vgg, width, stop_at="block4_conv3", batch_norm=batch_norm)[
        "block4_conv3"
    ]
    x = psp_module(features)
    x = layers.Conv2D(
        scaled(SEG_HEAD_FILTERS, width), 3, padding="same", use_bias=False, name="psp_head_conv"
    )(x)
    x = layers.BatchNormalization(name="psp_head_bn")(x)
    x = layers.ReLU(name="psp_head_relu")(x)
    x = layers.Conv2D(num_classes, 1, name="seg_logits")(x)
    factor = input_size // int(x.shape[1])
    x = layers.UpSampling2D(factor, interpolation="bilinear", name="seg_upsample")(x)
    outputs = layers.Softmax(axis=-1, name="seg_probs")(x)
    return keras.Model(inputs, outputs, name=name)


def check_segmentation_stream(model: keras.Model, source: object, input_size: int) -> None:
    """InputError naming ``source`` unless ``model`` is a segmentation stream for
    ``input_size``: one image input (B, S, S, 3) with S = ``input_size`` and one per-pixel
    output (B, S, S, C) of C >= 2 class probabilities."""
    if isinstance(model.output, dict) or len(model.outputs) != 1 or isinstance(model.input, dict):
        found = sorted(model.output) if isinstance(model.output, dict) else len(model.outputs)
        raise InputError(
            f"{source}: not a segmentation model (expected one image input and one "
            f"per-pixel output, found outputs {found}); give the model.keras of a train-seg run"
        )
    shape_in, shape_out = tuple(model.input.shape), tuple(model.output.shape)
    if len(shape_in) != 4 or len(shape_out) != 4 or shape_out[1:3] != shape_in[1:3]:
        raise InputError(
            f"{source}: not a segmentation model (input {shape_in}, output {shape_out}; "
            "expected (B, S, S, 3) -> (B, S, S, C))"
        )
    if shape_in[1:3] != (input_size, input_size) or shape_in[3] != 3 or shape_out[3] < 2:
        raise InputError(
            f"{source}: a segmentation model of {shape_in[1]}x{shape_in[2]} inputs with "
            f"{shape_out[3]} classes; this run needs {input_size}x{input_size} RGB inputs and at "
            "least 2 classes (train the stream at the run's model.input_size)"
        )
