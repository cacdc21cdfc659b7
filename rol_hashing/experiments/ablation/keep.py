"""Keeping an ablation study that is longer than a session (``ablate --keep DIR``).

A session's work folder is lost when the session ends; the keep folder is committed.
It holds, per seed and code length:

- ``seed<k>_<b>b.json``: a finished (seed, bits) group (its rows, per-query APs and mask
  IoUs, the machines), reused without preparing anything;
- ``seed<k>_<b>b/<variant>.json``: one finished run of a group not yet finished (its
  row, the machine, and for the top code length's SSDH and paper ROL the per-query APs
  and IoUs), reused when its key (the group's key and the run's own freshness key, which
  holds the bytes of the backbone and the segmentation stream) is the run asked for;
- ``seed<k>/inputs/``: the seed's backbone and segmentation streams (the files a run's
  key digests), copied back into an empty work folder before the seed is prepared, so a
  later session trains the group's remaining runs on the same bytes.

A copied-back input is still checked by its own key (``experiments.reuse``): one that
does not match is made again, and then no kept run of that seed matches either. A
segmentation run's key holds its config's absolute paths (``training.run.run_key``), so
the copied-back stream is reused by a checkout at the same path (a later session in the
same folder); elsewhere it is trained again and the seed's kept runs are trained again
with it: slower, never mixed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rol_hashing.data.fileio import read_json
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.voc import load_voc_segmentation
from rol_hashing.errors import InputError
from rol_hashing.experiments.ablation.grid import Variant
from rol_hashing.experiments.reuse import fresh_result
from rol_hashing.freshness import file_digest, make_key
from rol_hashing.io import atomic_copy, write_json
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.layout import CONFIG_FILE, LOG_FILE, MODEL_FILE, SEG_METRICS_FILE
from rol_hashing.training.segmentation import segmentation_run_key

INPUTS_DIR = "inputs"
MANIFEST = "inputs.json"
# The parts of a segmentation run's key that stand for its devkit's files by size and
# modification time (``freshness.paths_digest``): a new session writes the same files
# at another time, so a copied-back stream is re-keyed when their bytes are the same.
DEVKIT_PARTS = ("images", "masks")
# What a segmentation run needs to be reused (``reuse.segmentation``) and read back.
SEG_FILES = (MODEL_FILE, SEG_METRICS_FILE, CONFIG_FILE, LOG_FILE)


def group_file(keep: Path, seed: int, bits: int) -> Path:
    """The finished (seed, bits) group's file."""
    return keep / f"seed{seed}_{bits}b.json"


def run_file(keep: Path, seed: int, bits: int, variant: Variant) -> Path:
    """One finished run's file, kept until its group is finished."""
    return keep / f"seed{seed}_{bits}b" / f"{variant.name}.json"


def seed_inputs(config: ExperimentConfig, seg_models: dict[int, Path]) -> list[Path]:
    """The files of a prepared seed that its runs' keys digest: the backbone (with its
    sidecar) and each segmentation stream's run files."""
    files: list[Path] = []
    if config.model.backbone_weights:
        weights = Path(config.model.backbone_weights)
        files += [weights, weights.with_suffix(".json")]
    for model in seg_models.values():
        files += [Path(model).parent / name for name in SEG_FILES]
    return [f for f in files if f.is_file()]


def save_inputs(keep: Path, seed: int, work: Path, files: list[Path]) -> int:
    """Copies ``files`` (each inside ``work``) to the seed's kept inputs unless the kept
    copy has the same bytes; returns how many were copied. Files outside ``work`` are
    not kept (their paths would not exist in another session)."""
    base, copied = keep / f"seed{seed}" / INPUTS_DIR, 0
    for src in files:
        try:
            rel = src.resolve().relative_to(work.resolve())
        except ValueError:
            continue
        dst = base / rel
        if dst.is_file() and file_digest(dst) == file_digest(src):
            continue
        atomic_copy(src, dst)
        copied += 1
    return copied


def _devkit(config: ExperimentConfig) -> DatasetRecord:
    """The segmentation stream's training images and masks (``config.segmentation``)."""
    seg = config.segmentation
    return load_voc_segmentation(seg.data_root, seg.train_split)


def devkit_digest(train: DatasetRecord) -> str:
    """The SHA-256 of the bytes of a devkit split's images and masks, in order."""
    h = hashlib.sha256()
    for path in [*train.paths, *(train.mask_paths or ())]:
        h.update(file_digest(path).encode())
    return h.hexdigest()


def save_manifest(keep: Path, seed: int, config: ExperimentConfig) -> None:
    """Records the bytes of the devkit the seed's kept streams were trained on."""
    write_json(keep / f"seed{seed}" / MANIFEST, {"devkit": devkit_digest(_devkit(config))})


def rekey_streams(keep: Path, seed: int, work: Path, config: ExperimentConfig) -> int:
    """Brings the copied-back streams' keys up to date with a devkit written again by
    this session: only when the devkit's bytes are the ones recorded, and only the
    ``DEVKIT_PARTS`` of each key change (to ``segmentation_run_key``'s). Returns how
    many streams were re-keyed."""
    base = keep / f"seed{seed}" / INPUTS_DIR
    try:
        recorded = read_json(keep / f"seed{seed}" / MANIFEST, "kept inputs")["devkit"]
    except (OSError, InputError, KeyError, TypeError):
        return 0
    if not base.is_dir():
        return 0
    train = _devkit(config)
    if recorded != devkit_digest(train):
        return 0
    expected = segmentation_run_key(config, train)["parts"]
    now = {name: expected[name] for name in DEVKIT_PARTS}
    count = 0
    for kept_metrics in sorted(base.rglob(SEG_METRICS_FILE)):
        target = work / kept_metrics.relative_to(base)
        try:
            metrics = read_json(target, "segmentation metrics")
            parts = metrics["key"]["parts"]
        except (OSError, InputError, KeyError, TypeError):
            continue
        if any(parts.get(name) != now[name] for name in DEVKIT_PARTS):
            parts.update(now)
            write_json(target, metrics)
            count += 1
    return count


def restore_inputs(keep: Path, seed: int, work: Path) -> int:
    """Copies the seed's kept inputs into ``work`` where a file is missing there;
    returns how many. A file already in ``work`` is left alone (its key decides)."""
    base, restored = keep / f"seed{seed}" / INPUTS_DIR, 0
    if not base.is_dir():
        return 0
    for src in sorted(p for p in base.rglob("*") if p.is_file()):
        dst = work / src.relative_to(base)
        if dst.exists():
            continue
        atomic_copy(src, dst)
        restored += 1
    return restored


def run_key(group: dict, config: ExperimentConfig, variant: Variant) -> dict | None:
    """The key of one kept run of ``config`` (the variant's config): its group's key (data
    set, grid, bits, seed, sizes, the recipe), the variant, and the bytes of the split,
    the backbone and the variant's segmentation stream, so the runs of one group pair up
    only on one backbone and stream. No paths: a run kept by another session is found
    again. None when the split or an input is not there before the run trains (a config
    without ``split_file``: its run makes its own split)."""
    files = {
        "split": config.split_file,
        "backbone": config.model.backbone_weights,
        "stream": config.hashing.segmentation_model,
    }
    if not all(f and Path(f).is_file() for f in files.values()):
        return None
    return make_key(
        "ablation_run",
        group=group,
        variant=variant.name,
        **{name: file_digest(path) for name, path in files.items()},
    )


def kept_run(path: Path, key: dict | None) -> dict[str, Any] | None:
    """The kept run at ``path`` when its key is ``key``."""
    return None if key is None else fresh_result(path, key, "kept ablation run")


def write_run(path: Path, key: dict | None, content: dict[str, Any]) -> None:
    """Keeps one finished run (nothing when its key is not known)."""
    if key is not None:
        write_json(path, {"key": key, **content})
