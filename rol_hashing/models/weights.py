"""Loading the Keras ImageNet VGG16 ``.h5`` files by layer name (never downloading).

The files are the ones ``keras.applications.VGG16(weights="imagenet")`` fetches:
``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` (with fc1/fc2/predictions) and
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``. Both use the legacy Keras
HDF5 layout (a group per layer, ``layer_names`` and ``weight_names`` attributes);
a whole model saved as ``.h5`` (weights under ``model_weights``) is read too.

For config C, the 1x1 layers ``block3_conv3``, ``block4_conv3`` and
``block5_conv3`` take the centre tap ``kernel[1, 1]`` of D's 3x3 kernels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np

from rol_hashing.errors import InputError
from rol_hashing.io import atomic_path
from rol_hashing.models.vgg import BN_SUFFIX, VGG16_BLOCKS

WEIGHTS_DIR = Path("weights")
IMAGENET_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_TOP = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_CONV_LAYERS = tuple(f"block{b}_conv{i}" for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1))
# VGG16-BN's BatchNormalization layers (``model.batch_norm``): gamma, beta, moving mean
# and variance, stored like any other layer.
VGG16_BN_LAYERS = tuple(name + BN_SUFFIX for name in VGG16_CONV_LAYERS)
VGG16_WEIGHT_LAYERS = (*VGG16_CONV_LAYERS, *VGG16_BN_LAYERS, "fc1", "fc2")
BN_WEIGHT_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass
class WeightLoadReport:
    """What ``load_vgg16_imagenet_weights`` did: layer names per outcome."""

    path: Path
    loaded: list[str] = field(default_factory=list)
    centre_tap: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)} VGG16 layers from {self.path}"]
        if self.centre_tap:
            parts.append(f"centre tap of 3x3 for {', '.join(self.centre_tap)}")
        if self.resampled:
            parts.append(f"resampled to the finer grid: {', '.join(self.resampled)}")
        if self.not_in_file:
            parts.append(f"not in file (left as initialised): {', '.join(self.not_in_file)}")
        return "; ".join(parts)


def default_weights_path(include_top: bool, weights_dir: str | Path = WEIGHTS_DIR) -> Path:
    """The file in ``weights/`` a model needs: with fc1/fc2 or the no-top file."""
    return Path(weights_dir) / (IMAGENET_TOP if include_top else IMAGENET_NOTOP)


def _read_h5_layers(path: Path) -> dict[str, list[np.ndarray]]:
    """Reads ``{layer_name: [kernel, bias, ...]}`` from a legacy Keras HDF5 file.

    Raises:
        ValueError: naming ``path`` when it is not such a file (damaged, another
            layout, or weights that are not plain numeric arrays).
    """
    try:
        out = _read_h5_layers_unchecked(path)
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise InputError(f"{path}: not a readable Keras HDF5 weights file ({err})") from None
    for name, arrays in out.items():
        if any(a.dtype.kind not in "fiu" for a in arrays):
            raise InputError(f"{path}: layer {name!r} holds weights that are not numeric arrays")
        bad = sum(int(np.size(a) - np.count_nonzero(np.isfinite(a))) for a in arrays)
        if bad:
            raise InputError(
                f"{path}: layer {name!r} holds {bad} NaN or infinite weight(s); "
                "the file is damaged (make it again, e.g. `make pretrain`)"
            )
    return out


def _read_h5_layers_unchecked(path: Path) -> dict[str, list[np.ndarray]]:
    with h5py.File(path, "r") as f:
        root = f.get("model_weights", f)
        names = [
            n.decode() if isinstance(n, bytes) else n for n in root.attrs.get("layer_names", [])
        ]
        names = names or list(root.keys())
        out: dict[str, list[np.ndarray]] = {}
        for name in names:
            if name not in root:
                continue
            group = root[name]
            weight_names = [
                n.decode() if isinstance(n, bytes) else n
                for n in group.attrs.get("weight_names", [])
            ]
            out[name] = [np.asarray(group[w]) for w in weight_names]
    return out


def _find_layer(model: keras.Model, name: str) -> keras.layers.Layer | None:
    """Finds a layer by name: the model's own layers first, then nested models'."""
    for layer in model.layers:
        if layer.name == name:
            return layer
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found = _find_layer(layer, name)
            if found is not None:
                return found
    return None


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> list[str]:
    """Copies weights between like-named layers (nested models matched by name too).

    Used to move a hashing model between its cached-mask and live forms. Returns
    the names of the layers copied; a like-named layer of another shape is an error.
    """
    copied = []
    source_layers = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        other = source_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        if isinstance(layer, keras.Model) and isinstance(other, keras.Model):
            copied += [f"{layer.name}/{n}" for n in copy_weights_by_name(other, layer)]
            continue
        layer.set_weights(other.get_weights())
        copied.append(layer.name)
    return copied


def _resample_fc1(kernel: np.ndarray, target: tuple[int, ...], channels: int) -> np.ndarray | None:
    """fc1's kernel for a larger input: each row of the stored ``block5_pool`` grid
    repeated over its (f x f) block of the model's finer grid, divided by f^2.

    fc1 on the finer map then equals the stored fc1 on its f x f average pool, so a
    backbone pre-trained at one input size starts fc1 where it was, at a multiple of
    that size. ``channels``: block5's filters. None when the shapes do not allow it.
    """
    rows, units = kernel.shape
    rows_t, units_t = target
    side = int(round((rows / channels) ** 0.5))
    side_t = int(round((rows_t / channels) ** 0.5))
    if (
        units != units_t
        or side * side * channels != rows
        or side_t * side_t * channels != rows_t
        or side_t % side
    ):
        return None
    f = side_t // side
    grid = kernel.reshape(side, side, channels, units)
    fine = np.repeat(np.repeat(grid, f, axis=0), f, axis=1) / float(f * f)
    return fine.reshape(rows_t, units).astype(kernel.dtype)


def load_vgg16_imagenet_weights(model: keras.Model, path: str | Path) -> WeightLoadReport:
    """Loads VGG16 ImageNet weights into ``model``'s like-named layers.

    Args:
        model: any model with VGG16-named layers (``build_vgg16``, the segmentation
            or hashing models; nested models are searched).
        path: a Keras VGG16 ``.h5`` file (see ``weights/README.md``).

    Returns:
        A ``WeightLoadReport`` listing what was loaded.

    Raises:
        FileNotFoundError: the file is missing (the message says where to put it).
        ValueError: a weight's shape does not fit (e.g. ``width != 1``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG16 ImageNet weights not found: {path}. Put the Keras file "
            f"'{path.name}' into the weights/ folder (see weights/README.md), or pass "
            "--backbone-weights none to train from scratch. Nothing is downloaded."
        )
    try:
        stored = _read_h5_layers(path)
    except OSError as err:
        raise InputError(f"{path} is not a readable Keras HDF5 weights file: {err}") from err
    _check_batch_norm(model, stored, path)
    report = WeightLoadReport(path=path)
    for name in VGG16_WEIGHT_LAYERS:
        layer = _find_layer(model, name)
        if layer is None:
            continue
        if name not in stored or not stored[name]:
            report.not_in_file.append(name)
            continue
        values = list(stored[name])
        target = [tuple(v.shape) for v in layer.get_weights()]
        kernel = values[0]
        if (
            kernel.ndim == 4
            and len(target)
            and target[0][:2] == (1, 1)
            and kernel.shape[:2] == (3, 3)
        ):
            values[0] = kernel[1:2, 1:2]
            report.centre_tap.append(name)
        block5 = _find_layer(model, "block5_conv3")
        if name == "fc1" and block5 is not None and values[0].shape != target[0]:
            resampled = _resample_fc1(values[0], target[0], int(block5.filters))
            if resampled is not None:
                values[0] = resampled
                report.resampled.append(name)
        got = [tuple(v.shape) for v in values]
        if got != target:
            raise InputError(
                f"{path}: layer '{name}' holds weights of shapes {got}, the model expects "
                f"{target}. ImageNet weights fit only width=1.0 (and input_size=224 for fc1); "
                "a pre-trained backbone fits the model.width, model.vgg and model.pooling "
                "it was made with."
            )
        layer.set_weights(values)
        report.loaded.append(name)
    if not report.loaded:
        raise InputError(
            f"{path}: no VGG16 layer (block1_conv1 ... fc2) of the model is in the file."
        )
    return report


def _check_batch_norm(model: keras.Model, stored: dict, path: Path) -> None:
    """InputError when the file and the model disagree on VGG16-BN: conv weights
    trained with BatchNormalization are wrong without it, and the reverse."""
    in_file = any(name in stored for name in VGG16_BN_LAYERS)
    in_model = any(_find_layer(model, n) is not None for n in VGG16_BN_LAYERS)
    if in_file == in_model or not any(
        _find_layer(model, n) is not None and n in stored for n in VGG16_CONV_LAYERS
    ):
        return
    if in_file:
        raise InputError(
            f"{path}: a VGG16-BN backbone (BatchNormalization after each conv), the model "
            "has none; set model.batch_norm: true in the experiment profile to use it"
        )
    raise InputError(
        f"{path}: a VGG16 backbone without BatchNormalization, the model is VGG16-BN "
        "(model.batch_norm: true); pre-train a VGG16-BN backbone (rol-hashing pretrain "
        "with the same model settings) or set model.batch_norm: false"
    )


# The group of a pre-trained backbone file that says what it was trained on (not a layer:
# it is not in ``layer_names``, so the Keras loader and ours skip it).
PROVENANCE_GROUP = "rol_hashing_provenance"


def save_vgg16_weights_h5(
    model: keras.Model, path: str | Path, provenance: dict | None = None
) -> Path:
    """Writes ``model``'s VGG16 layers (block*_conv*, their ``_bn`` layers for VGG16-BN,
    fc1, fc2) in the Keras ImageNet ``.h5`` layout, so ``load_vgg16_imagenet_weights``
    (and ``--backbone-weights``) read it like the official files. Written to a temporary
    file, then renamed.

    ``provenance``: what the weights were trained on, kept in the same file (so the two
    cannot disagree): ``{"dataset": name, "root": folder, "ids": [image ids], ...}``; the
    ids go in a dataset, the rest in a JSON attribute (``read_provenance``).
    """
    path = Path(path)
    layers = [(n, _find_layer(model, n)) for n in VGG16_WEIGHT_LAYERS]
    layers = [(n, layer) for n, layer in layers if layer is not None and layer.weights]
    if not layers:
        raise InputError(f"{model.name} has no VGG16 layer to save")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if provenance is not None:
            group = f.create_group(PROVENANCE_GROUP)
            meta = {k: v for k, v in provenance.items() if k != "ids"}
            group.attrs["meta"] = json.dumps(meta, sort_keys=True)
            ids = [str(i) for i in provenance.get("ids", [])]
            group.create_dataset("ids", data=ids, dtype=h5py.string_dtype())
        f.attrs["layer_names"] = [n.encode() for n, _ in layers]
        f.attrs["backend"] = keras.backend.backend().encode()
        f.attrs["keras_version"] = keras.__version__.encode()
        for name, layer in layers:
            group = f.create_group(name)
            kinds = BN_WEIGHT_NAMES if name.endswith(BN_SUFFIX) else ("kernel", "bias")
            names = [f"{name}/{w}:0".encode() for w in kinds][: len(layer.weights)]
            group.attrs["weight_names"] = names
            for weight_name, value in zip(names, layer.get_weights(), strict=True):
                group.create_dataset(weight_name.decode(), data=value)
    return path


def read_provenance(path: str | Path) -> dict | None:
    """What a backbone ``.h5`` written by ``save_vgg16_weights_h5`` was trained on
    (``{"dataset", "root", "ids", ...}``); None for a file without it (the official Keras
    files, older backbones). InputError names a file whose record is damaged."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        group = f.get(PROVENANCE_GROUP)
        if group is None:
            return None
        try:
            meta = json.loads(group.attrs["meta"])
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in group["ids"][...]]
        except (KeyError, ValueError, TypeError) as err:
            raise InputError(f"{path}: its {PROVENANCE_GROUP} record is damaged ({err})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: its {PROVENANCE_GROUP} record is not a JSON object")
    return {**meta, "ids": ids}
