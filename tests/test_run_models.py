"""The model in a run folder is the one its config.yaml describes, and a segmentation
stream is a segmentation model of the run's input size (issue 22 cases 9 and 18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rol_hashing.cli.main import main
from rol_hashing.errors import InputError
from rol_hashing.models import build_hashing_model, build_segmentation_model
from rol_hashing.models.hashing import hashing_model_shape
from rol_hashing.models.psp import check_segmentation_stream

REPO = Path(__file__).resolve().parents[1]


def _copy(tiny_runs, method: str, tmp_path: Path) -> Path:
    run = Path(shutil.copytree(tiny_runs["runs"][method], tmp_path / f"{method}-run"))
    derived = ("codes_query.npz", "codes_gallery.npz", "index.npz", "index_items.npz")
    for name in (*derived, "metrics.json", "metrics.md"):
        (run / name).unlink(missing_ok=True)
    return run


def _edit_config(run: Path, **changes) -> None:
    path = run / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(config))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---- case 9: the model against the config -----------------------------------------------


def test_an_ssdh_model_in_a_rol_run_is_refused(tiny_runs, tmp_path, capsys):
    run = _copy(tiny_runs, "ssdh", tmp_path)
    _edit_config(run, method="rol")
    assert main(["evaluate", str(run), "--verbose", "0"]) == 2
    err = _one_line(capsys)
    assert "is not the model" in err and "method: model 'ssdh', run 'rol'" in err
    assert not (run / "metrics.json").exists()


def test_a_model_of_another_class_count_or_code_length_is_refused(tiny_runs, tmp_path, capsys):
    run = _copy(tiny_runs, "ssdh", tmp_path)
    build_hashing_model("ssdh", 24, 5, input_size=32, width=0.125).save(run / "model.keras")
    assert main(["evaluate", str(run), "--verbose", "0"]) == 2
    err = _one_line(capsys)
    assert "bits: model 24, run 12" in err and "classes: model 5, run 4" in err


def test_a_config_input_size_other_than_the_models_is_refused(tiny_runs, tmp_path, capsys):
    run = _copy(tiny_runs, "ssdh", tmp_path)
    _edit_config(run, model__input_size=64)
    assert main(["evaluate", str(run), "--verbose", "0"]) == 2
    assert "input_size: model 32, run 64" in _one_line(capsys)


def test_notebooks_refuse_a_rol_run_given_as_the_ssdh_run(tiny_runs, tmp_path, capsys):
    rol = str(tiny_runs["runs"]["rol"])
    argv = ["notebooks", "--ssdh-run", rol, "--rol-run", rol, "--out", str(tmp_path / "out")]
    argv += ["--notebooks-dir", str(REPO / "notebooks")]
    assert main(argv) == 2
    assert "--ssdh-run" in (err := _one_line(capsys)) and "is a 'rol' run" in err
    assert not (tmp_path / "out").exists()


def test_hashing_model_shape_reads_kind_bits_classes_and_size():
    seg = build_segmentation_model(3, input_size=32, width=0.125)
    rol = build_hashing_model("rol", 12, 3, segmentation_model=seg, input_size=32, width=0.125)
    shape = hashing_model_shape(rol, "m")
    assert shape == {"method": "rol", "bits": 12, "classes": 3, "input_size": 32}
    with pytest.raises(InputError, match="m: not a hashing model"):
        hashing_model_shape(build_segmentation_model(3, input_size=32, width=0.125), "m")


# ---- case 18: the segmentation stream ---------------------------------------------------


def _train_rol(tiny_runs, tmp_path: Path, seg: Path) -> list[str]:
    return [
        *("train-hash", "--config", str(REPO / "experiments" / "generated.yaml")),
        *("--profile", "cpu", "--data-root", str(tiny_runs["data_root"])),
        *("--run-dir", str(tmp_path / "run"), "--method", "rol", "--bits", "12"),
        *("--epochs", "1", "--input-size", "32", "--width", "0.125"),
        *("--backbone-weights", "none", "--verbose", "0", "--segmentation-model", str(seg)),
    ]


def test_a_hashing_model_given_as_the_segmentation_stream_is_refused(tiny_runs, tmp_path, capsys):
    seg = tiny_runs["runs"]["ssdh"] / "model.keras"
    assert main(_train_rol(tiny_runs, tmp_path, seg)) == 2
    err = _one_line(capsys)
    assert str(seg) in err and "not a segmentation model" in err
    assert not (tmp_path / "run").exists()


def test_a_segmentation_stream_of_another_input_size_is_refused(tiny_runs, tmp_path, capsys):
    seg = tmp_path / "seg64.keras"
    build_segmentation_model(5, input_size=64, width=0.125).save(seg)
    assert main(_train_rol(tiny_runs, tmp_path, seg)) == 2
    err = _one_line(capsys)
    assert "a segmentation model of 64x64 inputs" in err and "needs 32x32" in err
    check_segmentation_stream(build_segmentation_model(5, input_size=32, width=0.125), seg, 32)
