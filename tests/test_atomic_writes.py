"""Atomic writes: a writer killed with SIGKILL mid-write leaves a loadable file.

A subprocess (``scripts/rewrite_loop.py``) rewrites a split file, an index, a codes
file, a results table or a checkpoint in a loop through the package's own writers;
it is killed at a random moment several times. After each kill the file at the
final path loads (the previous or the new version), and the temporary files left
behind are never taken for it.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import reaped, sigkill

from rol_hashing.data.splits import load_split
from rol_hashing.retrieval.codes import load_codes
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.training.run import Run, list_checkpoints, load_last_checkpoint

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "scripts" / "rewrite_loop.py"


def _wait_for_first_write(proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """Blocks until the writer reports its first finished version; returns that number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("WROTE"):
            return int(line.split()[1])
        if not line and proc.poll() is not None:
            raise AssertionError(f"writer exited early: {proc.stderr.read()[-2000:]}")
    raise AssertionError("writer never wrote")


def _wait_for_temporary(folder: Path, known: set[str], timeout: float = 60.0) -> bool:
    """Polls until a file not in ``known`` appears (a write in progress)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name not in known for p in folder.iterdir()):
            return True
    return False


def kill_mid_write(
    kind: str, folder: Path, rounds: int, seed: int = 0, watch: Path | None = None
) -> Iterator[bool]:
    """Runs the writer ``rounds`` times and kills it with SIGKILL.

    Even rounds kill at a random moment; odd rounds kill as soon as a new temporary
    file appears in ``watch`` (default ``folder``), i.e. while a version is being
    written. Yields, after each kill,
    whether that kill left a temporary file behind (it landed mid-write).
    """
    rng = np.random.default_rng(seed)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    for round_ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), kind, str(folder), str(1000 * round_)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with reaped(proc):
            _wait_for_first_write(proc)
            watch = watch or folder
            before = {p.name for p in watch.iterdir()}
            if round_ % 2:
                assert _wait_for_temporary(watch, before), "no temporary file appeared"
            else:
                time.sleep(float(rng.uniform(0.0, 0.4)))
            sigkill(proc)
        yield any(p.name not in before for p in watch.iterdir())


FINALS = {
    "split": {"split.json"},
    "index": {"index.npz"},
    "codes": {"codes.npz"},
    "table": {f"table2_cifar10_cpu.{ext}" for ext in ("csv", "md", "png")},
}


def _check_temporaries(folder: Path, finals: set[str]) -> None:
    """Files left by a kill are hidden or ``.tmp``: no loader takes them for the real file."""
    for path in folder.iterdir():
        if path.is_file() and path.name not in finals:
            assert path.name.startswith(".") or path.suffix == ".tmp", path


@pytest.mark.parametrize("kind", ["split", "index", "codes", "table"])
def test_file_killed_mid_write_still_loads(tmp_path, kind):
    mid_write = 0
    for left_a_temporary in kill_mid_write(kind, tmp_path, rounds=4, seed=len(kind)):
        mid_write += left_a_temporary
        if kind == "split":
            split = load_split(tmp_path / "split.json")
            assert len(split.train) + len(split.query) + len(split.gallery) in (2000, 32000, 62000)
            assert all(i.endswith(f"_v{split.seed}.jpg") for i in split.query)
        elif kind == "index":
            index = HammingIndex.load(tmp_path / "index.npz", bits=48)
            assert len(index) in (2000, 32000, 62000)
        elif kind == "codes":
            codes = load_codes(tmp_path / "codes.npz", bits=32)
            assert len(codes) in (2000, 32000, 62000) and len(set(codes.labels.tolist())) == 1
        else:
            table = tmp_path / "table2_cifar10_cpu.csv"
            with open(table, newline="") as f:
                rows = list(csv.DictReader(f))
            assert len(rows) in (2, 4, 6, 8)
            assert (tmp_path / "table2_cifar10_cpu.md").read_text().strip()
            assert (tmp_path / "table2_cifar10_cpu.png").read_bytes()[:4] == b"\x89PNG"
        _check_temporaries(tmp_path, FINALS[kind])
    assert mid_write >= 1  # at least one kill landed while a version was being written


@pytest.mark.slow
def test_checkpoint_killed_mid_write_still_loads(tmp_path):
    from rol_hashing.saving import load_model

    run = Run(tmp_path)
    mid_write = 0
    for left_a_temporary in kill_mid_write("checkpoint", tmp_path, 3, 1, run.checkpoints):
        mid_write += left_a_temporary
        found = list_checkpoints(run)
        assert 1 <= len(found) <= 3  # the newest two, plus one while pruning
        assert all(p.name.startswith("epoch_") for p, _ in found)  # temporaries are ignored
        model, epoch = load_last_checkpoint(run)
        bias = model.get_layer("out").get_weights()[1]
        assert bias[0] == epoch - 1  # the checkpoint holds the version its name says
        final = load_model(run.model)
        assert final.get_layer("out").get_weights()[1][0] in (epoch - 1, epoch - 2)
    assert mid_write >= 1


# ---- the helpers themselves ----------------------------------------------------------


def test_atomic_open_gives_umask_permissions_and_replaces(tmp_path):
    from rol_hashing.io import atomic_open, default_file_mode

    target = tmp_path / "table.md"
    target.write_text("old")
    old_umask = os.umask(0o022)
    try:
        with atomic_open(target, "w") as handle:
            handle.write("new")
        assert default_file_mode() == 0o644
    finally:
        os.umask(old_umask)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_atomic_open_keeps_the_old_file_on_error(tmp_path):
    from rol_hashing.io import atomic_open

    target = tmp_path / "codes.npz"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="writer failed"), atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["codes.npz"]
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"), atomic_open(target, "a"):
        pass
