"""Fault-injection points (rol_hashing.faults): a process stops where a spec names it.

The kill tests (interrupted training, atomic writes) rely on these points instead of a
sleep, so they land in the same place on any machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rol_hashing import faults

REPO = Path(__file__).resolve().parents[1]


def test_spec_parsing():
    assert faults.parse_spec("train_batch:epoch=2,batch=3") == (
        "train_batch",
        {"epoch": "2", "batch": "3"},
        1,
    )
    assert faults.parse_spec("atomic_write:phase=before_rename,hit=2") == (
        "atomic_write",
        {"phase": "before_rename"},
        2,
    )
    assert faults.parse_spec("atomic_write") == ("atomic_write", {}, 1)
    with pytest.raises(ValueError, match="expected key=value"):
        faults.parse_spec("train_batch:epoch")
    with pytest.raises(ValueError, match="hit must be at least 1"):
        faults.parse_spec("train_batch:hit=0")


def test_unarmed_and_unmatched_points_return_at_once(monkeypatch):
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    assert not faults.armed()
    faults.fault_point("train_batch", epoch=2, batch=3)  # nothing set: returns
    monkeypatch.setenv(faults.FAULT_ENV, "train_batch:epoch=2,batch=3")
    assert faults.armed() and faults.armed("train_batch") and not faults.armed("atomic_write")
    faults.fault_point("train_batch", epoch=2, batch=4)  # another batch: returns
    faults.fault_point("atomic_write", epoch=2, batch=3)  # another point: returns


def _stop_at(spec: str, body: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        **{faults.FAULT_ENV: spec, faults.STALL_ENV: "0"},  # stall 0 s, then exit 3
    )
    return subprocess.run(
        [sys.executable, "-c", body], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_matching_point_reports_and_stops_the_process():
    body = (
        "from rol_hashing.faults import fault_point\n"
        "for n in range(1, 6):\n"
        "    print('before', n, flush=True)\n"
        "    fault_point('p', n=n % 2)\n"
        "print('never', flush=True)\n"
    )
    # n % 2 == 1 matches n = 1, 3, 5: hit=2 is the call with n = 3
    result = _stop_at("p:n=1,hit=2", body)
    assert result.returncode == faults.STALL_EXIT_CODE
    assert result.stdout.splitlines() == [
        "before 1",
        "before 2",
        "before 3",
        "FAULT p n=1",
    ]


def test_the_atomic_writer_stops_in_each_phase(tmp_path):
    target = tmp_path / "table.md"
    body = (
        "from rol_hashing.io import atomic_write_text\n"
        f"atomic_write_text({str(target)!r}, 'old')\n"
        f"atomic_write_text({str(target)!r}, 'new')\n"
    )
    for phase, content, temporaries in (
        ("after_create", "old", [""]),
        ("before_rename", "old", ["new"]),
        ("after_rename", "new", []),
    ):
        for path in tmp_path.iterdir():
            path.unlink()
        result = _stop_at(f"atomic_write:name=table.md,phase={phase},hit=2", body)
        assert result.returncode == faults.STALL_EXIT_CODE, result.stderr
        assert result.stdout.strip() == f"FAULT atomic_write name=table.md phase={phase}"
        assert target.read_text() == content
        left = sorted(p for p in tmp_path.iterdir() if p != target)
        assert [p.read_text() for p in left] == temporaries, phase
        assert all(p.name.startswith(".table.md.") for p in left)
