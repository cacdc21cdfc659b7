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
``ConfigError`` naming the key (``hashing.epochs``) and the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROFILES_KEY = "profiles"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class ModelConfig:
    """The backbone and ROL (SPEC 1.1, 1.3)."""

    config: str = "C"
    input_size: int = 224
    width: float = 1.0
    rol_at: str = "block5_conv3"
    background_index: int = 0
    # "auto": the Keras ImageNet file in weights/ (an error says which is missing);
    # "none": from scratch; otherwise a path to a VGG16-layout .h5 file.
    backbone_weights: str = "auto"


@dataclass
class SegmentationConfig:
    """The PSP stream's training (SPEC 1.2): AdaGrad, 40 epochs, batch 64."""

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
    """The hashing stream's training (SPEC 1.4): SGD, 40 epochs, batch 40."""

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


@dataclass
class ExperimentConfig:
    """Everything one experiment needs; ``load_config`` builds it from YAML."""

    dataset: str = "generated"
    data_root: str | None = None
    seed: int = 0
    runs_dir: str = "runs"
    split_file: str | None = None
    profile: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    hashing: HashingConfig = field(default_factory=HashingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


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
        raise ConfigError(f"{source}: '{where or 'top level'}' must be a mapping, got {data!r}")
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
                f"{source}: '{name}' must be {getattr(hint, '__name__', hint)}, got {value!r}"
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
    if profile != "paper" and profile not in profiles:
        raise ConfigError(
            f"{source}: no profile '{profile}'; it has: paper, {', '.join(sorted(profiles))}"
        )
    merged = _merge(data, profiles.get(profile) or {})
    merged = _merge(merged, overrides or {})
    merged["profile"] = profile
    return _build(ExperimentConfig, merged, "", source)


def load_config(
    path: str | Path, profile: str = "paper", overrides: dict | None = None
) -> ExperimentConfig:
    """Reads an experiment YAML file (safe loader) into an ``ExperimentConfig``.

    Raises:
        FileNotFoundError: the file is missing.
        ConfigError: bad YAML, an unknown key, a wrong type or an unknown profile.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"experiment config not found: {path} (the files are in experiments/*.yaml)"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return parse_config(data, profile, overrides, source=str(path))


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    """The ``config.yaml`` a run folder was trained with (as written by the trainers)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {run_dir} is not a run folder (train one with "
            "`rol-hashing train-hash` or `make train-hash`)"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return _build(ExperimentConfig, data, "", str(path))
