"""The command line as a user meets it: defaults in --help, one-line errors (and
tracebacks for bugs), checks before any work, quiet start-up, real epoch numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from helpers import check_notebooks_command

from rol_hashing.cli import main as cli_main
from rol_hashing.cli.main import main
from rol_hashing.data.generated import make_generated_dataset
from rol_hashing.data.voc import devkit_name, load_voc_segmentation
from rol_hashing.errors import InputError
from rol_hashing.training.config import load_config
from rol_hashing.training.hashing import train_hashing
from rol_hashing.training.loop import EpochLog, progress_callbacks

REPO = Path(__file__).resolve().parents[1]


# ---- help and options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("search", "(default: 10)"),
        ("train-hash", "(default: rol)"),
        ("describe", "(default: C)"),
        ("ablate", "(default: 3)"),
    ],
)
def test_help_shows_the_defaults(command, shown, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert shown in " ".join(capsys.readouterr().out.split())


def test_search_takes_top_k_and_its_alias_top():
    parser = cli_main.build_parser()
    assert parser.parse_args(["search", "r", "--image", "x", "--top-k", "3"]).top_k == 3
    assert parser.parse_args(["search", "r", "--image", "x", "--top", "4"]).top_k == 4
    assert parser.parse_args(["describe", "--vgg", "D"]).vgg == "D"


# ---- errors: one line for bad input, a traceback for a bug ---------------------------


def test_bad_input_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    parser = cli_main.build_parser()
    args = parser.parse_args(["describe"])

    def fake_parser():
        class P:
            def parse_args(self, argv):
                return args

        return P()

    monkeypatch.setattr(cli_main, "build_parser", fake_parser)
    monkeypatch.setattr(cli_main, "quiet_tensorflow", lambda: None)
    args.func = lambda a: (_ for _ in ()).throw(InputError("data/x.png: not an image"))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "rol-hashing describe: error: data/x.png: not an image"
    args.func = lambda a: [][1]  # a bug: IndexError
    with pytest.raises(IndexError):
        main([])
    args.func = lambda a: int("not a number")  # a bug raising a plain ValueError
    with pytest.raises(ValueError, match="invalid literal"):
        main([])


@pytest.mark.parametrize(
    ("option", "value", "key"),
    [
        ("--epochs", "0", "hashing.epochs"),
        ("--epochs", "-1", "hashing.epochs"),
        ("--batch-size", "0", "hashing.batch_size"),
        ("--input-size", "0", "model.input_size"),
        ("--input-size", "48", "model.input_size"),
        ("--width", "nan", "model.width"),
    ],
)
def test_invalid_numbers_are_refused_before_anything_is_made(option, value, key, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train-hash", "--config", "generated", "--profile", "cpu", "--bits", "12"]
    argv += ["--runs-dir", str(runs), "--data-root", str(tmp_path / "absent"), option, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"'{key}'" in err and err.count("\n") == 1
    assert not runs.exists()


def test_learning_rate_nan_or_negative_is_refused():
    from rol_hashing.training.config import ConfigError

    for lr in (float("nan"), -0.1, 0.0):
        with pytest.raises(ConfigError, match="hashing.learning_rate"):
            load_config("generated", "cpu", {"hashing": {"learning_rate": lr}})


def test_existing_run_is_refused_before_data_is_loaded(tmp_path):
    run = tmp_path / "runs" / "generated-ssdh-12b"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"finished")
    config = load_config(
        "generated",
        "cpu",
        {"data_root": str(tmp_path / "absent"), "runs_dir": str(tmp_path / "runs")},
    )
    with pytest.raises(FileExistsError, match="finished model.keras; pass --resume"):
        train_hashing(config, "ssdh", 12, verbose=0)  # not the data's FileNotFoundError
    assert (run / "model.keras").read_bytes() == b"finished"


def test_missing_segmentation_model_is_refused_before_data_is_loaded(tmp_path):
    config = load_config(
        "generated",
        "cpu",
        {
            "data_root": str(tmp_path / "absent"),
            "runs_dir": str(tmp_path / "runs"),
            "hashing": {"segmentation_model": str(tmp_path / "none.keras")},
        },
    )
    with pytest.raises(FileNotFoundError, match="segmentation model not found"):
        train_hashing(config, "rol", 12, verbose=0)
    assert not (tmp_path / "runs").exists()


# ---- progress ----------------------------------------------------------------------


def test_progress_shows_the_runs_own_epoch_numbers(capsys):
    (log,) = progress_callbacks(2, epochs=8)
    assert isinstance(log, EpochLog) and not log.bar
    log.on_epoch_begin(2)
    log.on_epoch_end(2, {"loss": 0.5, "learning_rate": 0.1, "class_accuracy": 0.75})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 3/8"
    assert "loss: 0.5000" in out[1] and "class_accuracy: 0.7500" in out[1]
    assert "learning_rate" not in out[1]
    assert progress_callbacks(0, epochs=8) == []
    # output redirected (as here): no step bar even at verbose 1
    assert not progress_callbacks(1, epochs=8)[0].bar


@pytest.mark.slow
def test_pretrain_shows_the_runs_own_epoch_numbers(tmp_path, capsys):
    gen = make_generated_dataset(
        tmp_path / "pool", num_images=48, num_seg_images=4, image_size=32, num_classes=2
    )
    argv = ["pretrain", "--config", "folders", "--profile", "cpu", "--pool", str(gen / "classes")]
    argv += ["--input-size", "32", "--width", "0.0625", "--epochs", "3", "--verbose", "2"]
    argv += ["--out", str(tmp_path / "pt.h5")]
    assert main(argv) == 0, capsys.readouterr().err
    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert shown == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]  # not Keras' "2/2", "3/3"


# ---- segmentation data without Main lists --------------------------------------------


def test_train_seg_data_needs_only_imagesets_segmentation(tmp_path):
    root = make_generated_dataset(
        tmp_path / "digits", num_images=16, num_seg_images=12, image_size=48, num_classes=3
    )
    devkit = root / "VOCdevkit" / "VOC2012"
    shutil.rmtree(devkit / "ImageSets" / "Main")
    (devkit / "classes.txt").unlink()
    record = load_voc_segmentation(devkit, "train")
    assert record.class_names == ["background", "class_1", "class_2", "class_3"]
    assert devkit_name(devkit) == "digits" and devkit_name(root) == "digits"


@pytest.mark.parametrize(
    ("given", "split"), [([], "trainval"), (["--train-split", "train"], "train")]
)
def test_train_seg_takes_the_list_to_train_on(given, split, monkeypatch, tmp_path, capsys):
    import rol_hashing.training.segmentation as segmentation

    seen = {}

    def fake_train(config, **_):
        seen["split"] = config.segmentation.train_split
        return SimpleNamespace(model=tmp_path / "model.keras")

    monkeypatch.setattr(segmentation, "train_segmentation", fake_train)
    root = make_generated_dataset(
        tmp_path / "mine", num_images=8, num_seg_images=6, image_size=32, num_classes=2
    )
    argv = ["train-seg", "--config", "folders", "--profile", "cpu", "--data-root", str(root)]
    assert main(argv + given) == 0, capsys.readouterr().err
    assert seen["split"] == split  # the folders default is the paper's trainval


# ---- end to end ----------------------------------------------------------------------


@pytest.mark.slow
def test_cli_starts_quietly_on_a_cpu_machine(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.pop("ROL_HASHING_TF_LOGS", None)
    result = subprocess.run(
        [sys.executable, "-m", "rol_hashing", "describe", "--method", "ssdh"]
        + ["--input-size", "32", "--width", "0.125"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    noise = [
        line
        for line in result.stderr.splitlines()
        if any(w in line for w in ("oneDNN", "cuInit", "cuda", "I0000", "E0000", "absl"))
    ]
    assert noise == [], noise
    assert "total parameters" in result.stdout


@pytest.mark.slow
def test_train_hash_from_the_cli_is_reproducible(tiny_runs, tmp_path):
    logs = []
    for name in ("a", "b"):
        argv = ["train-hash", "--config", "generated", "--profile", "cpu", "--method", "ssdh"]
        argv += ["--bits", "12", "--data-root", str(tiny_runs["data_root"])]
        argv += ["--input-size", "32", "--width", "0.125", "--epochs", "2", "--verbose", "0"]
        argv += ["--batch-size", "32", "--backbone-weights", "none"]
        argv += ["--run-dir", str(tmp_path / name), "--runs-dir", str(tmp_path)]
        assert main(argv) == 0
        logs.append((tmp_path / name / "log.csv").read_text())
    assert logs[0] == logs[1] and logs[0].count("\n") == 3


@pytest.mark.slow
def test_a_failing_notebook_cell_is_one_line(tiny_runs, tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name in ("rol_masks.ipynb", "top10_retrievals.ipynb"):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("ROL_RUN = ''\nSSDH_RUN = ''")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell("open('data/VOCdevkit/none.txt')")]
        nbformat.write(nb, folder / name)
    argv = ["notebooks", "--notebooks-dir", str(folder), "--out", str(tmp_path / "out")]
    argv += ["--ssdh-run", str(tiny_runs["runs"]["ssdh"])]
    argv += ["--rol-run", str(tiny_runs["runs"]["rol"])]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "rol_masks.ipynb" in err and "FileNotFoundError" in err
    assert not (tmp_path / "out" / "rol_masks.ipynb").exists()
    json.dumps(err)  # printable as one line


@pytest.mark.slow
def test_your_own_images_route_from_the_readme(tmp_path, capsys, monkeypatch):
    """Every step of README "Your own images", in order, on a tiny class-folder set with
    VOC-layout masks: pretrain, segmentation stream, SSDH and ROL, evaluate, index,
    search; each command exits 0. Last, the notebooks, as `make notebooks` runs them (a
    separate process: helpers.check_notebooks_command)."""
    monkeypatch.chdir(tmp_path)
    gen = make_generated_dataset(
        tmp_path / "mine", num_images=120, num_seg_images=40, image_size=48, num_classes=3
    )
    folders, devkit = gen / "classes", gen / "VOCdevkit" / "VOC2012"
    (tmp_path / "mine_voc").symlink_to(gen)  # the run is named after the link, as given
    tiny = ["--profile", "cpu", "--input-size", "32", "--width", "0.125", "--epochs", "1"]
    backbone = tmp_path / "weights" / "pretrained_folders_cpu.h5"
    steps = [
        ["pretrain", "--config", "folders", "--data-root", str(folders), "--verbose", "0"],
        ["train-seg", "--config", "folders", "--data-root", "mine_voc", "--verbose", "0"],
        *(
            ["train-hash", "--config", "folders", "--data-root", str(folders), "--method", m]
            + ["--bits", "12", "--verbose", "0"]
            + ["--segmentation-model", "runs/cpu/mine_voc-seg/model.keras"]
            + ["--seg-data-root", str(devkit)]
            for m in ("ssdh", "rol")
        ),
    ]
    for step in steps:
        argv = (
            step + tiny + ([] if step[0] == "pretrain" else ["--backbone-weights", str(backbone)])
        )
        assert main(argv) == 0, (argv, capsys.readouterr().err)
        if step[0] == "train-seg":  # it names the value the next command takes
            out = capsys.readouterr().out
            assert "--segmentation-model runs/cpu/mine_voc-seg/model.keras" in out
            # trainval (the default) holds the val list: said, and kept in metrics.json
            assert "val images (val) are also training images (trainval)" in out
            metrics = json.loads((tmp_path / "runs/cpu/mine_voc-seg/metrics.json").read_text())
            assert 0 < metrics["val_images_in_training"] == metrics["val_images"]
    assert backbone.is_file() and (tmp_path / "runs/cpu/mine_voc-seg/model.keras").is_file()
    ssdh, rol = (str(tmp_path / f"runs/cpu/folders-{m}-12b") for m in ("ssdh", "rol"))
    image = next(folders.glob("*/*.jpg"))
    for argv in (
        ["evaluate", ssdh],
        ["evaluate", rol],
        ["index", rol],
        ["search", rol, "--image", str(image), "--top-k", "5"],
    ):
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "chance" in out and "rank" in out
    (tmp_path / "nb").mkdir()
    check_notebooks_command(Path(ssdh), Path(rol), tmp_path / "nb")
    saved = json.loads((Path(rol) / "train_info.json").read_text())
    assert saved["method"] == "rol"
    recorded = (Path(rol) / "config.yaml").read_text()
    assert str(devkit) in recorded  # the stream's devkit, so later commands find its classes
