"""Atomic writes: a writer killed with SIGKILL mid-write leaves a loadable file.

A subprocess (``scripts/rewrite_loop.py``) rewrites a split file, an index, a codes
file, a results table or a checkpoint in a loop through the package's own writers;
it stops itself at a fault point of the atomic writer (with an empty temporary file,
with the whole new version in it, just after the rename) and is killed there. After
each kill the file at the final path loads (the previous or the new version), and the
temporary files left behind are never taken for it.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import reaped, sigkill

from rol_hashing.data.splits import load_split
from rol_hashing.errors import InputError
from rol_hashing.retrieval.codes import load_codes
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.training.checkpoints import list_checkpoints, load_last_checkpoint
from rol_hashing.training.layout import Run

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "scripts" / "rewrite_loop.py"


# Where each kind's writer stops: its (last) file's name, and which matching write.
# The first write is let through, so a previous version is always on disk; the
# checkpoint loop writes epoch_<n>.keras then model.keras, so hit 3 is the second
# checkpoint.
FAULT_TARGETS = {
    "split": "name=split.json,hit=2",
    "index": "name=index.npz,hit=2",
    "codes": "name=codes.npz,hit=2",
    "table": "name=table2_cifar10_cpu.md,hit=2",
    "checkpoint": "hit=3",
}
# Round k stops in PHASES[k % 3] (rol_hashing.faults): with an empty temporary file,
# with the whole new version in the temporary file, and just after the rename.
PHASES = ("after_create", "before_rename", "after_rename")


def _wait_for_fault(proc: subprocess.Popen) -> list[str]:
    """Reads the writer's output until it reports the fault point it stopped at.

    No deadline: the writer either stops there or ends (a stalled point ends itself
    after ROL_HASHING_FAULT_STALL_S).
    """
    seen = []
    while True:
        line = proc.stdout.readline()
        if line.startswith("FAULT atomic_write"):
            return seen
        if not line and proc.poll() is not None:
            raise AssertionError(f"writer exited early: {proc.stderr.read()[-2000:]}")
        seen.append(line)


def kill_mid_write(
    kind: str, folder: Path, rounds: int, watch: Path | None = None
) -> Iterator[tuple[str, bool]]:
    """Runs the writer ``rounds`` times and kills it with SIGKILL where it stopped itself.

    The writer stops at an ``atomic_write`` fault point (``FAULT_TARGETS``, ``PHASES``),
    so each kill lands in a known phase of a write whatever the machine's speed.
    Yields, after each kill, the phase and whether the kill left a new file in ``watch``
    (default ``folder``) that was not there after the previous version was written.
    """
    watch = watch or folder
    for round_ in range(rounds):
        phase = PHASES[round_ % len(PHASES)]
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            TF_CPP_MIN_LOG_LEVEL="2",
            ROL_HASHING_FAULT=f"atomic_write:phase={phase},{FAULT_TARGETS[kind]}",
        )
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), kind, str(folder), str(1000 * round_)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with reaped(proc):
            seen = _wait_for_fault(proc)
            assert any(line.startswith("WROTE") for line in seen), seen
            sigkill(proc)
        yield (
            phase,
            any(p.name.startswith(".") and p.suffix in (".tmp", ".keras") for p in watch.iterdir()),
        )


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
    phases = []
    for phase, left_a_temporary in kill_mid_write(kind, tmp_path, rounds=3):
        phases.append(phase)
        # killed mid-write, the temporary file stays behind; after the rename, none does
        assert left_a_temporary == (phase != "after_rename"), phase
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
        for path in tmp_path.iterdir():  # the next round starts without this one's temporaries
            if path.name not in FINALS[kind]:
                path.unlink()
    assert phases == list(PHASES)


@pytest.mark.slow
def test_checkpoint_killed_mid_write_still_loads(tmp_path):
    from rol_hashing.saving import load_model

    run = Run(tmp_path)
    phases = []
    for phase, left_a_temporary in kill_mid_write("checkpoint", tmp_path, 3, run.checkpoints):
        phases.append(phase)
        assert left_a_temporary == (phase != "after_rename"), phase
        found = list_checkpoints(run)
        assert 1 <= len(found) <= 3  # the newest two, plus one while pruning
        assert all(p.name.startswith("epoch_") for p, _ in found)  # temporaries are ignored
        model, epoch = load_last_checkpoint(run)
        bias = model.get_layer("out").get_weights()[1]
        assert bias[0] == epoch - 1  # the checkpoint holds the version its name says
        final = load_model(run.model)
        assert final.get_layer("out").get_weights()[1][0] in (epoch - 1, epoch - 2)
        for path in run.checkpoints.iterdir():
            if not path.name.startswith("epoch_"):
                path.unlink()
    assert phases == list(PHASES)


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
    with pytest.raises(InputError, match="mode 'w' or 'wb'"), atomic_open(target, "a"):
        pass
