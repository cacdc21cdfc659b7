"""Files from elsewhere: each unsafe or damaged input is refused with a clear error.

Covered here: ``.keras`` models with code in them (safe_mode), ``.npz`` files with
pickled objects or damaged bytes, YAML tags that call Python, and names inside data
files (list files, ``classes.txt``, split files) that point outside their data root.
The CIFAR restricted unpickler is tested in ``test_data_cifar.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import data_fixtures as fx
import keras
import numpy as np
import pytest

from rol_hashing.data.awa2 import load_awa2
from rol_hashing.data.fileio import PathEscapeError, check_relative
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.splits import Split, load_split
from rol_hashing.data.voc import load_voc2012, load_voc_segmentation
from rol_hashing.errors import InputError
from rol_hashing.retrieval.codes import load_codes, save_codes
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.saving import load_model
from rol_hashing.training.config import ConfigError, load_config, load_run_config

ESCAPES = ["../outside", "a/../../b", "/etc/passwd", "..", "C:/Windows", "~/x", "a\\..\\..\\b", ""]


# ---- .keras, .npz, YAML ------------------------------------------------------------


def test_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(InputError, match="safe_mode"):
        load_model(path)


def test_keras_file_that_is_not_a_model_is_an_error(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises((ValueError, OSError)):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "absent.keras")


def _pickled_npz(path: Path, fmt: str) -> None:
    np.savez(
        path,
        format=np.array(fmt),
        format_version=np.array(1),
        bits=np.array(12),
        codes=np.array([{"a": 1}], dtype=object),
        labels=np.zeros(1),
        ids=np.zeros(1),
    )


def test_npz_with_pickled_objects_is_refused(tmp_path):
    _pickled_npz(tmp_path / "index.npz", "rol_hashing.hamming_index")
    with pytest.raises(InputError, match="Object arrays cannot be loaded"):
        HammingIndex.load(tmp_path / "index.npz")
    _pickled_npz(tmp_path / "codes.npz", "rol_hashing.codes")
    with pytest.raises(InputError, match="Object arrays cannot be loaded"):
        load_codes(tmp_path / "codes.npz")


@pytest.mark.parametrize("damage", ["empty", "truncated", "bitflip", "text"])
def test_damaged_npz_is_a_value_error_naming_the_file(tmp_path, damage):
    rng = np.random.default_rng(0)
    good = tmp_path / "codes.npz"
    save_codes(good, rng.random((20, 12)) > 0.5, np.arange(20), np.arange(20) % 3)
    index = HammingIndex(12)
    index.add(rng.random((20, 12)) > 0.5)
    index.save(tmp_path / "index.npz")
    for name in ("codes.npz", "index.npz"):
        raw = (tmp_path / name).read_bytes()
        data = {
            "empty": b"",
            "truncated": raw[: len(raw) // 2],
            "bitflip": raw[:150] + bytes([raw[150] ^ 0x55]) + raw[151:],
            "text": b"hello, not an npz\n",
        }[damage]
        bad = tmp_path / f"bad_{name}"
        bad.write_bytes(data)
        loader = load_codes if name == "codes.npz" else HammingIndex.load
        with pytest.raises(InputError, match=f"bad_{name}"):
            loader(bad)


def test_run_config_yaml_with_python_tags_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text("dataset: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(tmp_path)


# ---- names inside data files stay inside the data root ---------------------------


@pytest.mark.parametrize("name", ESCAPES)
def test_check_relative_refuses_escapes(name):
    with pytest.raises(PathEscapeError, match="relative paths inside the data root"):
        check_relative(name, "somewhere.txt")


@pytest.mark.parametrize("name", ["2008_000001", "cat/001.jpg", "data_batch_1/7", "a..b/c"])
def test_check_relative_keeps_plain_names(name):
    assert check_relative(name, "x") == name


def test_voc_list_ids_cannot_escape(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path)
    seg = devkit / "ImageSets" / "Segmentation" / "trainval.txt"
    seg.write_text(seg.read_text() + "../../../../etc/passwd\n")
    with pytest.raises(PathEscapeError, match="trainval.txt"):
        load_voc_segmentation(tmp_path)
    main = devkit / "ImageSets" / "Main" / "cat_trainval.txt"
    main.write_text(main.read_text() + "/etc/passwd 1\n")
    with pytest.raises(PathEscapeError, match="cat_trainval.txt"):
        load_voc2012(tmp_path)


def test_voc_and_awa2_class_names_cannot_escape(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path / "voc")
    (devkit / "classes.txt").write_text("background\ncat\n../../elsewhere\n")
    with pytest.raises(PathEscapeError, match="classes.txt"):
        load_voc2012(tmp_path / "voc")
    folder = fx.write_awa2(tmp_path / "awa")
    (folder / "classes.txt").write_text("1\tantelope\n2\t../../../tmp\n")
    with pytest.raises(PathEscapeError, match="classes.txt"):
        load_awa2(tmp_path / "awa")


@pytest.mark.parametrize("name", ["../outside", "/tmp"])
def test_class_folder_names_cannot_escape(tmp_path, name):
    root = fx.write_class_folders(tmp_path / "root", per_class=2)
    (tmp_path / "outside").mkdir()
    fx.write_jpeg(tmp_path / "outside" / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    (root / "classes.txt").write_text(f"cat\n{name}\n")
    with pytest.raises(PathEscapeError, match="classes.txt"):
        load_class_folders(root)


def test_class_folder_split_file_ids_cannot_escape(tmp_path):
    split = {"train": ["cat/000.jpg", "../outside/x.jpg"], "query": ["dog/000.jpg"]}
    root = fx.write_class_folders(tmp_path / "root", per_class=2, split=split)
    with pytest.raises(PathEscapeError, match="split.json 'train'"):
        load_class_folders(root)


@pytest.mark.parametrize("name", ["/etc/passwd", "../../x"])
def test_saved_split_ids_cannot_escape(tmp_path, name):
    path = tmp_path / "split.json"
    Split("folders", 0, ("a/1.jpg",), ("a/2.jpg",), ("a/3.jpg",)).save(path)
    content = json.loads(path.read_text())
    content["gallery"].append(name)
    path.write_text(json.dumps(content))
    with pytest.raises(PathEscapeError, match="'gallery'"):
        load_split(path)


def test_split_file_with_wrong_types_is_a_value_error(tmp_path):
    path = tmp_path / "split.json"
    base = {"format": 1, "dataset": "x", "seed": 0, "train": [], "query": [], "gallery": []}
    for change in ({"seed": [1]}, {"train": "a/1.jpg"}, {"query": [["nested"]]}):
        path.write_text(json.dumps({**base, **change}))
        with pytest.raises(InputError, match="split.json"):
            load_split(path)


# ---- VGG16 .h5 weight files from elsewhere -----------------------------------------


def test_damaged_or_odd_weight_files_are_value_errors(tmp_path):
    import h5py

    from rol_hashing.models import build_vgg16, load_vgg16_imagenet_weights

    model = build_vgg16("D", input_size=32, width=0.125)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(InputError, match="junk.h5.*not a readable Keras HDF5"):
        load_vgg16_imagenet_weights(model, junk)
    odd = tmp_path / "odd.h5"
    with h5py.File(odd, "w") as f:
        group = f.create_group("block1_conv1")
        group.attrs["weight_names"] = [b"kernel"]
        group.create_dataset("kernel", data=np.array([b"not", b"numbers"]))
    with pytest.raises(InputError, match="odd.h5: layer 'block1_conv1' holds weights that are"):
        load_vgg16_imagenet_weights(model, odd)


# ---- round two (issue 15, first part) ------------------------------------------------


def test_yaml_alias_bomb_is_refused_with_a_short_message(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for k in range(1, 9):
        bomb += f"b{k}: &b{k} [{', '.join([f'*{prev}'] * 9)}]\n"
        prev = f"b{k}"
    bomb += f"model: *{prev}\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    with pytest.raises(ConfigError, match="alias bomb") as err:
        load_config(path)
    assert len(str(err.value)) < 1000


def test_yaml_nested_too_deeply_is_a_config_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("model: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply|not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("profiles", ["[1]", "{cpu: [1]}", "{cpu: 3}"])
def test_profiles_that_are_not_mappings_are_refused(tmp_path, profiles):
    path = tmp_path / "p.yaml"
    path.write_text(f"dataset: generated\nprofiles: {profiles}\n")
    with pytest.raises(ConfigError, match="'profiles' must map profile names to mappings"):
        load_config(path, "cpu")


@pytest.mark.parametrize("section", ["null", "[1, 2]", "7"])
def test_a_section_that_is_not_a_mapping_is_refused(tmp_path, section):
    path = tmp_path / "s.yaml"
    path.write_text(f"dataset: generated\nhashing: {section}\n")
    with pytest.raises(ConfigError, match="'hashing' must be a mapping"):
        load_config(path)


def test_error_messages_quote_at_most_a_few_hundred_characters(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("seed: '" + "x" * 100_000 + "'\n")
    with pytest.raises(ConfigError, match="'seed' must be int") as err:
        load_config(path)
    assert len(str(err.value)) < 500 and "100002 chars" in str(err.value)


def test_control_characters_in_names_are_escaped_in_the_search_table():
    from rol_hashing.retrieval.results import SearchResult, format_results, printable

    assert printable("cat\x1b[2J.jpg") == "cat\\x1b[2J.jpg" and printable("ok.jpg") == "ok.jpg"
    table = format_results([SearchResult(1, "a\nb", "dir/a\rb.jpg", 3, True)])
    assert "\r" not in table and table.count("\n") == 1 and "a\\nb" in table


def test_search_out_that_is_a_folder_is_refused_first(tmp_path):
    from rol_hashing.errors import InputError
    from rol_hashing.retrieval.search import search_image

    with pytest.raises(InputError, match="is a folder; give a .png file name"):
        search_image(tmp_path / "no-run", tmp_path / "q.jpg", out_png=tmp_path)


# ---- round three (issue 22) -------------------------------------------------------------


def test_a_duplicate_yaml_key_is_refused_not_won_by_the_last(tmp_path):
    """Issue 22 case 10: ``epochs: 1`` then ``epochs: 5`` silently trained 5 epochs."""
    path = tmp_path / "dup.yaml"
    path.write_text("dataset: generated\nhashing:\n  epochs: 1\n  epochs: 5\n")
    with pytest.raises(
        ConfigError, match=r"dup\.yaml: .*duplicate key 'epochs' \(line 3 and line 4\)"
    ):
        load_config(path)
    merged = tmp_path / "merge.yaml"  # "<<: *base" followed by an override stays allowed
    merged.write_text(
        "dataset: generated\nhashing:\n  <<: {epochs: 1, batch_size: 4}\n  epochs: 3\n"
    )
    config = load_config(merged)
    assert (config.hashing.epochs, config.hashing.batch_size) == (3, 4)


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_a_batch_size_below_one_is_one_line_before_anything_runs(tmp_path, capsys, value):
    """Issue 22 case 14: ``evaluate --batch-size 0`` (or -1) ended in a traceback."""
    from rol_hashing.cli.main import main

    for command in ("evaluate", "index"):
        with pytest.raises(SystemExit) as exit_:
            main([command, str(tmp_path / "no-run"), "--batch-size", value])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "--batch-size" in err and "Traceback" not in err


def test_the_library_refuses_a_batch_size_below_one(tmp_path):
    from rol_hashing.evaluation.evaluate import evaluate_run
    from rol_hashing.retrieval.gallery_index import build_index

    for fn in (evaluate_run, build_index):
        with pytest.raises(InputError, match="batch_size must be a positive integer, got 0"):
            fn(tmp_path, batch_size=0)


@pytest.mark.parametrize(
    "argv",
    [
        ["make-data", "--out", "{tmp}/gen", "--seed", "-1"],
        ["ablate", "--first-seed", "-5", "--out", "{tmp}/out", "--work-dir", "{tmp}/work"],
        ["demo", "--first-seed", "-5", "--out", "{tmp}/out", "--work-dir", "{tmp}/work"],
        ["train-hash", "--config", "generated", "--seed", "-1"],
        ["pretrain", "--config", "generated", "--seed", "-1"],
    ],
)
def test_a_negative_seed_is_one_line_naming_the_option_and_writes_nothing(tmp_path, capsys, argv):
    """Issue 22 cases 16 and 20: numpy's error, ``*.partial`` folders left behind, and an
    error naming the shipped config file instead of the option."""
    from rol_hashing.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "seed: must be 0 or more, got -" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_generated_set_refuses_a_negative_seed_before_writing(tmp_path):
    from rol_hashing.data.generated import make_generated_dataset

    with pytest.raises(InputError, match="seed must be 0 or more, got -1"):
        make_generated_dataset(tmp_path / "gen", num_images=8, num_seg_images=2, seed=-1)
    assert not any(tmp_path.iterdir())


def test_an_output_path_that_is_a_folder_is_refused_first(tiny_runs, tmp_path, capsys):
    """Issue 22 case 13: ``metrics.json/`` and ``pretrain --out dir.h5`` were tracebacks,
    the latter only after the whole training."""
    import shutil

    from rol_hashing.cli.main import main

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["runs"]["ssdh"], run)
    (run / "metrics.json").unlink(missing_ok=True)
    (run / "metrics.json").mkdir()
    assert main(["evaluate", str(run), "--verbose", "0"]) == 2
    err = capsys.readouterr().err
    assert "metrics.json" in err and "is a folder" in err and "Traceback" not in err
    out = tmp_path / "dir.h5"
    out.mkdir()
    argv = ["pretrain", "--config", "generated", "--data-root", str(tiny_runs["data_root"])]
    assert main([*argv, "--out", str(out), "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert "dir.h5" in captured.err and "is a folder" in captured.err
    assert "Epoch" not in captured.out  # refused before training


@pytest.mark.parametrize("command", ["ablate", "demo", "fashion"])
def test_an_out_that_is_a_file_is_refused_before_any_run(tmp_path, capsys, command):
    """Issue 22 case 22: ``ablate --out <file>`` was found only after all runs."""
    from rol_hashing.cli.main import main

    out = tmp_path / "results.txt"
    out.write_text("a file")
    argv = [command, "--out", str(out), "--work-dir", str(tmp_path / "work"), "--quick"]
    if command == "fashion":
        argv += ["--data-root", str(tmp_path / "absent")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "results.txt" in err and "is not a folder" in err
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("kind", ["folder", "suffix"])
def test_make_data_examples_path_is_checked_before_the_data_is_written(tmp_path, capsys, kind):
    """Issue 22 case 17: ``make-data --examples <folder>`` was PIL's error, after the
    data set had been written."""
    from rol_hashing.cli.main import main

    examples = tmp_path / ("sheet" if kind == "folder" else "sheet.txt")
    if kind == "folder":
        examples.mkdir()
    argv = ["make-data", "--out", str(tmp_path / "gen"), "--examples", str(examples)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(examples) in err and err.count("\n") == 1
    assert not (tmp_path / "gen").exists()
