"""A seed's inputs kept across sessions: the backbone and segmentation streams that a
run's key digests, copied into a committed keep folder and back into an empty work folder
(used by ``ablate --keep`` and ``fashion --keep``).

A copied-back input is still checked by its own key (``experiments.reuse``): one that
does not match is made again. A segmentation run's key records its devkit's files by
size and modification time; a later session writes the same devkit again, and the stream
is re-keyed (``rekey_streams``) only when the devkit's bytes are those recorded in the
seed's manifest. A segmentation run's key also holds its config's absolute paths
(``training.run.run_key``), so a copied-back stream is reused by a checkout at the same
path; elsewhere it is trained again, and every kept run that digests it with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rol_hashing.data.fileio import read_json
from rol_hashing.data.folders import SPLIT_FILE as FOLDER_SPLIT_FILE
from rol_hashing.data.generated import class_folder
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.voc import load_voc_segmentation
from rol_hashing.errors import InputError
from rol_hashing.freshness import file_digest
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


def save_manifest(keep: Path, seed: int, config: ExperimentConfig, name: str = MANIFEST) -> None:
    """Records (in ``seed<k>/<name>``) the bytes of the devkit ``config``'s kept stream
    was trained on."""
    write_json(keep / f"seed{seed}" / name, {"devkit": devkit_digest(_devkit(config))})


def rekey_streams(
    keep: Path,
    seed: int,
    work: Path,
    config: ExperimentConfig,
    name: str = MANIFEST,
    run_name: str | None = None,
) -> int:
    """Brings the copied-back streams' keys up to date with a devkit written again by
    this session: only when the devkit's bytes are the ones recorded (in ``seed<k>/<name>``),
    and only the ``DEVKIT_PARTS`` of each key change (to ``segmentation_run_key``'s).
    ``run_name``: only the stream of that run folder (a seed whose streams were trained
    on different devkits). Returns how many streams were re-keyed."""
    base = keep / f"seed{seed}" / INPUTS_DIR
    try:
        recorded = read_json(keep / f"seed{seed}" / name, "kept inputs")["devkit"]
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
        if run_name is not None and kept_metrics.parent.name != run_name:
            continue
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


def split_source(config: ExperimentConfig) -> Path | None:
    """The file a run of ``config`` takes its split from before it runs: ``split_file``,
    else the split file a class-folder data set ships (the generated set's
    ``<root>/classes/split.json``, a custom set's ``<root>/split.json``, which
    ``data.splits.make_or_load_split`` follows); None when there is neither (the run
    draws its own split when it runs)."""
    if config.split_file:
        return Path(config.split_file)
    if config.dataset not in ("generated", "folders") or not config.data_root:
        return None
    root = Path(config.data_root)
    own = (class_folder(root) if config.dataset == "generated" else root) / FOLDER_SPLIT_FILE
    return own if own.is_file() else None


def input_digests(config: ExperimentConfig) -> dict[str, str] | None:
    """The bytes a kept run of ``config`` was made from, as digests: its split
    (``split_source``), backbone and segmentation stream (``{"split", "backbone",
    "stream"}``); None when one of them is not there."""
    files = {
        "split": split_source(config),
        "backbone": config.model.backbone_weights,
        "stream": config.hashing.segmentation_model,
    }
    if not all(f and Path(f).is_file() for f in files.values()):
        return None
    return {name: file_digest(path) for name, path in files.items()}
