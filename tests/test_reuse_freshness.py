"""One freshness rule for every reused file (issue 22): metrics, runs of the demo, the
ablation, Table 2 and ``make fashion``, backbones and their sidecars; a backbone that saw
a run's queries (case 2); a full disk or the file size limit in training (case 12);
written pairs (case 21)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rol_hashing.cli.main import main
from rol_hashing.data.generated import load_generated
from rol_hashing.data.splits import load_split
from rol_hashing.errors import InputError
from rol_hashing.evaluation import evaluate as evaluate_module
from rol_hashing.evaluation.evaluate import evaluate_run, fresh_metrics
from rol_hashing.experiments import reuse
from rol_hashing.freshness import make_key, read_sidecar, write_sidecar
from rol_hashing.models.weights import read_provenance
from rol_hashing.saving import load_model
from rol_hashing.training.config import load_config
from rol_hashing.training.hashing import hashing_run_key, train_hashing
from rol_hashing.training.layout import SEG_METRICS_FILE, TRAIN_INFO_FILE
from rol_hashing.training.pretrain import pretrain_on_record
from rol_hashing.training.run import stale_run
from rol_hashing.training.segmentation import segmentation_run_key

REPO = Path(__file__).resolve().parents[1]


def _config(tiny_runs, **top):
    config = load_config(REPO / "experiments" / "generated.yaml", "cpu", tiny_runs["overrides"])
    return dataclasses.replace(config, **top)


def _copy(tiny_runs, method: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_runs["runs"][method], tmp_path / f"{method}-run"))


def _perturb_model(run: Path) -> None:
    model = load_model(run / "model.keras")
    model.get_layer("hash").set_weights([-w for w in model.get_layer("hash").get_weights()])
    model.save(run / "model.keras")


# ---- metrics ---------------------------------------------------------------------------


def test_metrics_are_fresh_until_the_model_changes(tiny_runs, tmp_path):
    run = _copy(tiny_runs, "ssdh", tmp_path)
    metrics = evaluate_run(run, verbose=0)
    assert fresh_metrics(run) == json.loads((run / "metrics.json").read_text())
    assert fresh_metrics(run, top_k=5) is None  # another k
    _perturb_model(run)
    old = (run / "metrics.json").stat().st_mtime_ns + 10**9
    os.utime(run / "model.keras", ns=(old - 2 * 10**9,) * 2)  # older than the metrics
    assert fresh_metrics(run) is None
    again = evaluate_run(run, verbose=0)
    assert again["key"] != metrics["key"] and fresh_metrics(run)["key"] == again["key"]


def test_metrics_md_is_written_before_the_json_that_holds_the_key(tiny_runs, tmp_path, monkeypatch):
    run = _copy(tiny_runs, "ssdh", tmp_path)
    evaluate_run(run, verbose=0)
    before = (run / "metrics.json").read_text()
    _perturb_model(run)
    real = evaluate_module.atomic_write_text

    def full_disk_for_json(path, text):
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(evaluate_module, "atomic_write_text", full_disk_for_json)
    with pytest.raises(OSError):
        evaluate_run(run, verbose=0)
    assert (run / "metrics.json").read_text() == before  # the old file, whole
    assert fresh_metrics(run) is None  # and a reader sees that it is not the model's


# ---- hashing and segmentation runs -------------------------------------------------------


def test_a_run_key_names_what_changed(tiny_runs, tmp_path):
    config = _config(tiny_runs)
    run = tiny_runs["runs"]["ssdh"]
    record = load_generated(tiny_runs["data_root"])
    done = dataclasses.replace(config, method="ssdh", bits=12)
    assert stale_run(run, hashing_run_key(done, record, run / "split.json"), TRAIN_INFO_FILE) == []
    other = dataclasses.replace(done, seed=3)
    assert stale_run(run, hashing_run_key(other, record, run / "split.json"), TRAIN_INFO_FILE) == [
        "config"
    ]
    moved = Path(shutil.copytree(tiny_runs["data_root"], tmp_path / "gen"))
    on_moved = dataclasses.replace(done, data_root=str(moved))
    before = hashing_run_key(on_moved, load_generated(moved), run / "split.json")
    os.utime(sorted((moved / "classes").rglob("*.jpg"))[0], ns=(1, 1))  # one image replaced
    after = hashing_run_key(on_moved, load_generated(moved), run / "split.json")
    assert before["parts"]["images"] != after["parts"]["images"]
    assert before["parts"]["config"] == after["parts"]["config"]


def test_reuse_trains_once_then_reuses_until_the_config_changes(tiny_runs, tmp_path, capsys):
    config = _config(tiny_runs)
    record = load_generated(tiny_runs["data_root"])
    run = tmp_path / "run"
    first, made = reuse.hashing(config, "ssdh", 12, run, record)
    assert made
    again, made = reuse.hashing(config, "ssdh", 12, run, record)
    assert not made and again["map_at_k"] == first["map_at_k"]
    longer = dataclasses.replace(config, hashing=dataclasses.replace(config.hashing, epochs=2))
    _, made = reuse.hashing(longer, "ssdh", 12, run, record)
    assert made


def test_a_run_from_before_the_key_is_not_reused(tiny_runs, tmp_path):
    run = _copy(tiny_runs, "ssdh", tmp_path)
    info = json.loads((run / TRAIN_INFO_FILE).read_text())
    del info["key"]  # as train-hash wrote it before the freshness rule
    (run / TRAIN_INFO_FILE).write_text(json.dumps(info))
    config = dataclasses.replace(_config(tiny_runs), method="ssdh", bits=12)
    record = load_generated(tiny_runs["data_root"])
    assert stale_run(run, hashing_run_key(config, record, run / "split.json"), TRAIN_INFO_FILE) == [
        "key"
    ]


def test_a_segmentation_run_is_fresh_for_its_config_only(tiny_runs):
    config = _config(tiny_runs)
    seg = tiny_runs["seg_run"]
    assert stale_run(seg, segmentation_run_key(config), SEG_METRICS_FILE) == []
    longer = dataclasses.replace(
        config, segmentation=dataclasses.replace(config.segmentation, epochs=3)
    )
    assert stale_run(seg, segmentation_run_key(longer), SEG_METRICS_FILE) == ["config"]


def test_table2_refuses_a_run_trained_from_another_config(tiny_runs, tmp_path, capsys):
    from rol_hashing.experiments.table2 import run_table2

    runs = Path(shutil.copytree(tiny_runs["runs_dir"], tmp_path / "runs"))
    overrides = {**tiny_runs["overrides"], "runs_dir": str(runs), "seed": 5}
    with pytest.raises(InputError, match="was not trained from what .* other config"):
        run_table2(
            REPO / "experiments" / "generated.yaml",
            "cpu",
            bits=[12],
            methods=["ssdh"],
            train=False,
            overrides=overrides,
            verbose=0,
        )


# ---- backbones ------------------------------------------------------------------------


def test_a_sidecar_beside_another_file_is_not_reused(tmp_path):
    target, sidecar = tmp_path / "pt.h5", tmp_path / "pt.json"
    key = make_key("backbone", seed=0)
    calls = []

    def make():
        calls.append(1)
        target.write_bytes(b"weights %d" % len(calls))
        return {"made": len(calls)}

    assert reuse.backbone(target, key, make) == ({"made": 1}, True)
    assert reuse.backbone(target, key, make) == ({"made": 1}, False)
    target.write_bytes(b"a new file; the kill came before its sidecar")
    assert read_sidecar(sidecar, target, key) is None
    assert reuse.backbone(target, key, make) == ({"made": 2}, True)
    assert reuse.backbone(target, make_key("backbone", seed=1), make)[1]  # another key
    write_sidecar(sidecar, target, key, report={"x": 1})
    assert read_sidecar(sidecar, target, key)["report"] == {"x": 1}


def test_a_backbone_that_saw_the_runs_queries_is_refused(tiny_runs, tmp_path):
    config = _config(tiny_runs)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, input_size=32, width=0.125)
    )
    record = load_generated(tiny_runs["data_root"])
    split = load_split(tiny_runs["runs"]["ssdh"] / "split.json", record)
    seen = record.index_of([*split.train, *split.query[:2]])  # two queries leaked in
    backbone = tmp_path / "pt.h5"
    pretrain_on_record(record, seen, backbone, config, 0, epochs=1, verbose=0)
    assert set(read_provenance(backbone)["ids"]) == {*split.train, *split.query[:2]}
    leaky = dataclasses.replace(
        config,
        split_file=str(tiny_runs["runs"]["ssdh"] / "split.json"),
        model=dataclasses.replace(config.model, backbone_weights=str(backbone)),
    )
    with pytest.raises(InputError, match=r"pt.h5 was pre-trained on 2 of this run's \d+ query"):
        train_hashing(leaky, "ssdh", 12, run_dir=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
    clean = tmp_path / "clean.h5"
    pretrain_on_record(record, record.index_of(split.train), clean, config, 0, epochs=1, verbose=0)
    ok = dataclasses.replace(
        leaky, model=dataclasses.replace(leaky.model, backbone_weights=str(clean))
    )
    train_hashing(ok, "ssdh", 12, run_dir=tmp_path / "run", verbose=0)


# ---- case 12: a full disk or the file size limit while training -------------------------


def test_enospc_deep_in_training_is_one_line(tiny_runs, tmp_path, monkeypatch, capsys):
    import rol_hashing.training.hashing as hashing_module

    def csv_logger_flush(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as CSVLogger's flush raises

    monkeypatch.setattr(hashing_module, "train_hashing", csv_logger_flush)
    argv = ["train-hash", "--config", "generated", "--bits", "12", "--run-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "--resume" in err


@pytest.mark.slow
def test_the_file_size_limit_in_train_hash_and_evaluate_is_one_line(tiny_runs, tmp_path):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # no checkpoint fits

    argv = [
        *(sys.executable, "-m", "rol_hashing", "train-hash", "--config", "generated"),
        *("--profile", "cpu", "--data-root", str(tiny_runs["data_root"])),
        *("--run-dir", str(tmp_path / "run"), "--method", "ssdh", "--bits", "12"),
        *("--epochs", "1", "--input-size", "32", "--width", "0.125"),
        *("--backbone-weights", "none", "--verbose", "0"),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(argv, preexec_fn=limit, capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "File too large" in done.stderr
    run = _copy(tiny_runs, "ssdh", tmp_path)
    for name in ("codes_query.npz", "codes_gallery.npz", "metrics.json", "metrics.md"):
        (run / name).unlink(missing_ok=True)
    limit_small = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))  # noqa: E731
    argv = [sys.executable, "-m", "rol_hashing", "evaluate", str(run), "--verbose", "0"]
    done = subprocess.run(argv, preexec_fn=limit_small, capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "File too large" in done.stderr
    assert not (run / "metrics.json").exists()
