"""Keeping ``make fashion`` across sessions (``rol-hashing fashion --keep DIR``).

A session's work folder is lost when the session ends; the keep folder is committed.
Under the recipe one deep run at 500 images per class takes about 20 minutes on two
cores, so the three-seed table (24 runs) takes several sessions. The keep holds, per
seed:

- ``seed<k>/inputs/``: the backbone and each variant's segmentation stream (the files a
  run's key digests), copied back into an empty work folder before the seed is
  prepared; ``seed<k>/inputs_<variant>.json`` records the bytes of the devkit each
  stream was trained on (``ablation.keep.rekey_streams``);
- ``seed<k>/<variant>/<method>-<b>b.json``: one finished deep run (MAP, the class head's
  query accuracy, the machine), reused when its key (the protocol's sizes, the resolved
  profile, the seed, and the bytes of the split, the backbone and the stream) is the run
  asked for;
- ``seed<k>/<variant>/classical.json``: LSH and ITQ at each code length, keyed by the
  bytes of the backbone and the split.

``make ablation-scenes`` trains the same SSDH and paper-ROL runs of ``fashion_scenes``
(the same folders, backbone and stream) and keeps them in its own folder; with
``--ablation-keep`` those kept runs are taken too, when the ablation's own key for them
(``ablation.runner.kept_pipeline_run``) is the run asked for. The ablation keeps no
query accuracy, so such a row has none (shown as "-").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rol_hashing.experiments import kept_inputs as inputs
from rol_hashing.experiments.reuse import fresh_result
from rol_hashing.freshness import file_digest, make_key
from rol_hashing.io import write_json
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.layout import MODEL_FILE

PATH_KEYS = ("data_root", "runs_dir", "split_file")


def manifest_name(variant: str) -> str:
    """The file (in ``seed<k>/``) recording the devkit of ``variant``'s kept stream."""
    return f"inputs_{variant}.json"


def run_file(keep: Path, seed: int, variant: str, method: str, bits: int) -> Path:
    """One kept deep run."""
    return keep / f"seed{seed}" / variant / f"{method}-{bits}b.json"


def classical_file(keep: Path, seed: int, variant: str) -> Path:
    """The kept LSH and ITQ rows of one seed and variant."""
    return keep / f"seed{seed}" / variant / "classical.json"


def _profile(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved profile without the session's paths (the inputs' bytes stand for them)."""
    profile = config.to_dict()
    for name in PATH_KEYS:
        profile.pop(name, None)
    profile["model"] = dict(profile["model"], backbone_weights=None)
    profile["hashing"] = dict(profile["hashing"], segmentation_model=None)
    profile["segmentation"] = dict(profile["segmentation"], data_root=None)
    return profile


def _protocol(sizes) -> dict[str, Any]:
    """The sizes that shape every run of a seed (not which code lengths or variants)."""
    return {k: v for k, v in dataclasses.asdict(sizes).items() if k not in ("bits", "variants")}


def run_key(
    config: ExperimentConfig, sizes, method: str, bits: int, seed: int
) -> dict[str, Any] | None:
    """The key of a kept deep run of ``config`` (a variant's config); None when one of
    its inputs (split, backbone, stream) is not there."""
    digests = inputs.input_digests(config)
    if digests is None:
        return None
    return make_key(
        "fashion_run",
        dataset=config.dataset,
        method=method,
        bits=int(bits),
        seed=int(seed),
        sizes=_protocol(sizes),
        profile=_profile(config),
        **digests,
    )


def classical_key(config: ExperimentConfig, sizes, bits, seed: int) -> dict[str, Any] | None:
    """The key of a seed's kept LSH and ITQ rows: the backbone's and split's bytes, the
    model's shape, the code lengths and the seed."""
    backbone, split = config.model.backbone_weights, config.split_file
    if not all(f and Path(f).is_file() for f in (backbone, split)):
        return None
    m = config.model
    return make_key(
        "fashion_classical",
        dataset=config.dataset,
        bits=[int(b) for b in bits],
        seed=int(seed),
        sizes=_protocol(sizes),
        model=[m.vgg, m.input_size, m.width, m.batch_norm],
        backbone=file_digest(backbone),
        split=file_digest(split),
    )


def read(path: Path, key: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    """The kept mapping at ``path`` when its key is ``key``."""
    return None if key is None else fresh_result(path, key, what)


def write(path: Path, key: dict[str, Any] | None, content: dict[str, Any]) -> None:
    """Keeps ``content`` under ``key`` (nothing when the key is not known)."""
    if key is not None:
        write_json(path, {"key": key, **content})


def seed_inputs(config: ExperimentConfig) -> list[Path]:
    """The backbone (with its sidecar) and ``config``'s stream files, as far as they exist."""
    stream = Path(config.hashing.segmentation_model)
    return inputs.seed_inputs(config, {config.model.input_size: stream})


def has_model(run_dir: str | Path) -> bool:
    """Whether a run's model is in the work folder (a kept row alone has none)."""
    return (Path(run_dir) / MODEL_FILE).is_file()
