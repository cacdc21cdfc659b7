"""One config object per experiment, read from a YAML file in ``experiments/``.

A file holds the paper's values at its top level and named ``profiles`` that
override them (``paper`` = no change, ``cpu`` = small ``input_size`` and
``width`` that train in minutes on two cores)::

    dataset: awa2
    data_root: data/Animals_with_Attributes2
    hashing: {epochs: 40, batch_size: 40}
    profiles:
      paper: {}
      cpu: {model: {input_size: 64, width: 0.25, backbone_weights: none}}

Loading validates every key and type: an unknown key or a wrong type is a
``ConfigError`` naming the key (``hashing.epochs``) and the file. The files hold only
what differs from the dataclass defaults below; they ship as package data
(``rol_hashing/configs/``, linked as the top-level ``experiments/``), so
``find_experiment("awa2")`` finds one by name from any working directory.

A hashing run's saved config also records its ``method`` and ``bits``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from rol_hashing.constants import (
    AUGMENTS,
    MASK_FORMS,
    MASK_SOURCES,
    METHODS,
    OPTIMIZERS,
    POOLINGS,
)
from rol_hashing.errors import InputError

PROFILES_KEY = "profiles"
# The experiment YAML files, shipped with the package.
EXPERIMENTS_PACKAGE = "rol_hashing"
EXPERIMENTS_FOLDER = "configs"


class ConfigError(InputError):
    """A config file or override that does not fit the schema."""


@dataclass
class ModelConfig:
    """The backbone and ROL (readings §1.1, §1.3); ``vgg`` is the VGG16 configuration, C or D."""

    vgg: str = "C"
    input_size: int = 224
    width: float = 1.0
    rol_at: str = "block5_conv3"
    background_index: int = 0
    # "auto": the Keras ImageNet file in weights/ (an error says which is missing);
    # "none": from scratch; otherwise a path to a VGG16-layout .h5 file.
    backbone_weights: str = "auto"
    # Where the ROL's mask R comes from (the ablation study, docs/ablation.md):
    # "predicted" (the segmentation stream, the paper), "oracle" (each image's
    # ground-truth object mask), "ones" (R = 1) or "shuffled" (another image's prediction).
    rol_mask: str = "predicted"
    # Its form: "soft" (the paper), "binary" (R > 0.5) or "normalized" (R / mean R).
    rol_form: str = "soft"
    # cpu-recipe levers (docs/recipe.md); the paper's VGG16 has neither.
    # VGG16-BN: a BatchNormalization between every conv and its ReLU.
    batch_norm: bool = False
    # How block5_pool enters fc1: "flatten" (the paper) or "gap" (global average pooling).
    pooling: str = "flatten"


@dataclass
class SegmentationConfig:
    """The PSP stream's training (readings §1.2): AdaGrad, 40 epochs, batch 64."""

    data_root: str = "data/VOCdevkit/VOC2012"
    train_split: str = "trainval"
    val_split: str = "val"
    epochs: int = 40
    batch_size: int = 64
    # AdaGrad's learning rate is not in the paper; 0.01 was Keras' default then.
    learning_rate: float = 0.01
    run_name: str = "voc2012-seg"


@dataclass
class HashingConfig:
    """The hashing stream's training (readings §1.4): SGD, 40 epochs, batch 40."""

    epochs: int = 40
    batch_size: int = 40
    learning_rate: float = 1e-3
    lr_drop_epoch: int = 20
    learning_rate_after_drop: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    alpha: float = 1.0
    beta: float = 1.0
    dropout: float = 0.5
    # The frozen segmentation stream for method "rol" (the train-voc-seg result).
    segmentation_model: str = "runs/voc2012-seg/model.keras"
    # cpu-recipe levers (docs/recipe.md); the paper's values are the defaults.
    # "sgd" (SSDH's solver, CaffeSGD) or "adam" (Keras' AdamW: weight_decay is its
    # decoupled decay, of every variable; momentum is not used).
    optimizer: str = "sgd"
    # Epochs over which the learning rate rises linearly to learning_rate (0: none).
    warmup_epochs: int = 0
    # Training-time augmentation: "none", "crop" (a random crop of 60-100 % of the area,
    # resized back) or "crop_colour" (plus brightness, contrast and channel gains).
    augment: str = "none"
    # Also mirror left-right at random (off: a mirrored glyph is another image).
    augment_mirror: bool = False


@dataclass
class ExperimentConfig:
    """Everything one experiment needs; ``load_config`` builds it from YAML."""

    dataset: str = "generated"
    data_root: str | None = None
    seed: int = 0
    runs_dir: str = "runs"
    split_file: str | None = None
    profile: str = "paper"
    # Set by the hashing trainer and saved in the run's config.yaml: "ssdh" or "rol",
    # and the code length. None in experiment files and segmentation runs.
    method: str | None = None
    bits: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    hashing: HashingConfig = field(default_factory=HashingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def absolute_paths(config: ExperimentConfig, base: str | Path | None = None) -> ExperimentConfig:
    """``config`` with every path made absolute against ``base`` (default: the current
    folder), as a run's ``config.yaml`` stores them: later commands then find the data,
    the segmentation stream and the backbone from any folder."""

    def absolute(value: str | None) -> str | None:
        if value is None or value in ("auto", "none"):
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (Path(base or Path.cwd()) / path).resolve())

    return dataclasses.replace(
        config,
        data_root=absolute(config.data_root),
        runs_dir=absolute(config.runs_dir),
        split_file=absolute(config.split_file),
        model=dataclasses.replace(
            config.model, backbone_weights=absolute(config.model.backbone_weights)
        ),
        segmentation=dataclasses.replace(
            config.segmentation, data_root=absolute(config.segmentation.data_root)
        ),
        hashing=dataclasses.replace(
            config.hashing, segmentation_model=absolute(config.hashing.segmentation_model)
        ),
    )


# YAML aliases a config may use: a few are handy, many are a "billion laughs" bomb.
MAX_YAML_ALIASES = 16
# How much of a bad value an error message quotes.
MAX_QUOTED = 200


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses more than ``MAX_YAML_ALIASES`` aliases."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(
                    f"more than {MAX_YAML_ALIASES} aliases (*name): refused as a possible "
                    "alias bomb"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base": merged keys may be overridden, as YAML says
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # PyYAML's own error names an unhashable key
            if key in seen:
                raise yaml.YAMLError(
                    f"duplicate key {key!r} (line {seen[key] + 1} and line "
                    f"{key_node.start_mark.line + 1}); give each key once"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict:
    """A YAML file as a mapping (empty file: {}), read safely.

    Raises:
        ConfigError: bad YAML, too many aliases, nesting too deep, or not a mapping.
    """
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_BoundedLoader) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {_quote(str(err))}") from err
    except RecursionError as err:
        raise ConfigError(f"{path}: YAML nested too deeply") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {_quote(data)}")
    return data


def _quote(value) -> str:
    """``repr(value)``, cut to ``MAX_QUOTED`` characters (a huge value stays one line)."""
    try:
        text = repr(value)
    except RecursionError:
        return "<a value nested too deeply to show>"
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + f"... ({len(text)} chars)"


def _type_ok(value, annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _build(cls, data: dict, where: str, source: str):
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: '{where or 'top level'}' must be a mapping, got {_quote(data)}"
        )
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key '{name}'; known keys here: {', '.join(sorted(known))}"
            )
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, name, source)
        elif not _type_ok(value, hint):
            raise ConfigError(
                f"{source}: '{name}' must be {getattr(hint, '__name__', hint)}, got {_quote(value)}"
            )
        else:
            kwargs[key] = float(value) if hint is float else value
    return cls(**kwargs)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_config(
    data: dict, profile: str = "paper", overrides: dict | None = None, source: str = "<config>"
) -> ExperimentConfig:
    """Builds an ``ExperimentConfig`` from a mapping, a profile and overrides."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data = dict(data)
    profiles = data.pop(PROFILES_KEY, {}) or {}
    if not isinstance(profiles, dict) or not all(
        isinstance(p, dict) or p is None for p in profiles.values()
    ):
        raise ConfigError(
            f"{source}: 'profiles' must map profile names to mappings, got {_quote(profiles)}"
        )
    if profile != "paper" and profile not in profiles:
        raise ConfigError(
            f"{source}: no profile '{profile}'; it has: paper, {', '.join(sorted(profiles))}"
        )
    merged = _merge(data, profiles.get(profile) or {})
    merged = _merge(merged, overrides or {})
    merged["profile"] = profile
    return _check_choices(_build(ExperimentConfig, merged, "", source), source)


def _check_choices(config: ExperimentConfig, source: str) -> ExperimentConfig:
    """ConfigError for a value outside its fixed set of choices."""
    choices = (
        ("method", config.method, (None, *METHODS)),
        ("model.rol_mask", config.model.rol_mask, MASK_SOURCES),
        ("model.rol_form", config.model.rol_form, MASK_FORMS),
        ("model.vgg", config.model.vgg, ("C", "D")),
        ("model.pooling", config.model.pooling, POOLINGS),
        ("hashing.optimizer", config.hashing.optimizer, OPTIMIZERS),
        ("hashing.augment", config.hashing.augment, AUGMENTS),
    )
    for name, value, allowed in choices:
        if value not in allowed:
            shown = ", ".join(str(a) for a in allowed if a is not None)
            raise ConfigError(f"{source}: '{name}' must be one of {shown}, got {_quote(value)}")
    return _check_numbers(config, source)


def _check_numbers(config: ExperimentConfig, source: str) -> ExperimentConfig:
    """ConfigError for a number that cannot train: checked before anything is loaded."""
    m, seg, h = config.model, config.segmentation, config.hashing
    positive = {
        "model.input_size": m.input_size,
        "model.width": m.width,
        "segmentation.epochs": seg.epochs,
        "segmentation.batch_size": seg.batch_size,
        "segmentation.learning_rate": seg.learning_rate,
        "hashing.epochs": h.epochs,
        "hashing.batch_size": h.batch_size,
        "hashing.learning_rate": h.learning_rate,
        "hashing.learning_rate_after_drop": h.learning_rate_after_drop,
        **({"bits": config.bits} if config.bits is not None else {}),
    }
    at_least_zero = {
        "seed": config.seed,
        "hashing.lr_drop_epoch": h.lr_drop_epoch,
        "hashing.warmup_epochs": h.warmup_epochs,
        "hashing.momentum": h.momentum,
        "hashing.weight_decay": h.weight_decay,
        "hashing.alpha": h.alpha,
        "hashing.beta": h.beta,
        "hashing.dropout": h.dropout,
        "model.background_index": m.background_index,
    }
    for name, value in positive.items():
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{source}: '{name}' must be a number > 0, got {value!r}")
    for name, value in at_least_zero.items():
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{source}: '{name}' must be a number >= 0, got {value!r}")
    for name, value in (("hashing.momentum", h.momentum), ("hashing.dropout", h.dropout)):
        if value >= 1:
            raise ConfigError(f"{source}: '{name}' must be below 1, got {value!r}")
    if m.input_size % 32:
        raise ConfigError(
            f"{source}: 'model.input_size' must be a multiple of 32 (VGG16 halves it five "
            f"times), got {m.input_size}"
        )
    return config


def experiment_names() -> list[str]:
    """The names of the experiment files shipped with the package (``awa2``, ...)."""
    folder = resources.files(EXPERIMENTS_PACKAGE) / EXPERIMENTS_FOLDER
    return sorted(f.name[: -len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml"))


def find_experiment(name_or_path: str | Path) -> Path:
    """An experiment file: ``name_or_path`` itself when it is a file, else the shipped
    ``<name>.yaml`` (``"awa2"`` or ``"experiments/awa2.yaml"`` from any folder).

    Raises:
        FileNotFoundError: neither exists; the message lists the shipped names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    shipped = resources.files(EXPERIMENTS_PACKAGE) / EXPERIMENTS_FOLDER / f"{stem}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise FileNotFoundError(
        f"experiment config not found: {path} (shipped experiments: "
        f"{', '.join(experiment_names())}; or give the path of a YAML file)"
    )


def load_config(
    path: str | Path, profile: str = "paper", overrides: dict | None = None
) -> ExperimentConfig:
    """Reads an experiment YAML file (safe loader) into an ``ExperimentConfig``.

    ``path`` is a YAML file or the name of a shipped experiment (``find_experiment``).

    Raises:
        FileNotFoundError: the file is missing.
        ConfigError: bad YAML, an unknown key, a wrong type or an unknown profile.
    """
    path = find_experiment(path)
    return parse_config(read_yaml(path), profile, overrides, source=str(path))


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    """The ``config.yaml`` a run folder was trained with (as written by the trainers)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {run_dir} is not a run folder (train one with "
            "`rol-hashing train-hash` or `make train-hash`)"
        )
    data = read_yaml(path)
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and "config" in model and "vgg" not in model:
        model["vgg"] = model.pop("config")  # runs saved before the key was renamed
    return _check_choices(_build(ExperimentConfig, data, "", str(path)), str(path))
