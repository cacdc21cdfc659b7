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

How a seed's inputs are kept, copied back and re-keyed: ``experiments.kept_inputs``
(shared with ``fashion --keep``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rol_hashing.experiments.ablation.grid import Variant
from rol_hashing.experiments.kept_inputs import (  # noqa: F401 (the keep's inputs, re-exported)
    DEVKIT_PARTS,
    INPUTS_DIR,
    MANIFEST,
    SEG_FILES,
    devkit_digest,
    input_digests,
    rekey_streams,
    restore_inputs,
    save_inputs,
    save_manifest,
    seed_inputs,
)
from rol_hashing.experiments.reuse import fresh_result
from rol_hashing.freshness import make_key
from rol_hashing.io import write_json
from rol_hashing.training.config import ExperimentConfig


def group_file(keep: Path, seed: int, bits: int) -> Path:
    """The finished (seed, bits) group's file."""
    return keep / f"seed{seed}_{bits}b.json"


def run_file(keep: Path, seed: int, bits: int, variant: Variant) -> Path:
    """One finished run's file, kept until its group is finished."""
    return keep / f"seed{seed}_{bits}b" / f"{variant.name}.json"


def run_key(group: dict, config: ExperimentConfig, variant: Variant) -> dict | None:
    """The key of one kept run of ``config`` (the variant's config): its group's key (data
    set, grid, bits, seed, sizes, the recipe), the variant, and the bytes of the split,
    the backbone and the variant's segmentation stream, so the runs of one group pair up
    only on one backbone and stream. No paths: a run kept by another session is found
    again. None when the split or an input is not there before the run trains (a config
    without ``split_file``: its run makes its own split)."""
    digests = input_digests(config)
    if digests is None:
        return None
    return make_key("ablation_run", group=group, variant=variant.name, **digests)


def kept_run(path: Path, key: dict | None) -> dict[str, Any] | None:
    """The kept run at ``path`` when its key is ``key``."""
    return None if key is None else fresh_result(path, key, "kept ablation run")


def write_run(path: Path, key: dict | None, content: dict[str, Any]) -> None:
    """Keeps one finished run (nothing when its key is not known)."""
    if key is not None:
        write_json(path, {"key": key, **content})
