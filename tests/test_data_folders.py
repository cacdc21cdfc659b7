"""AWA2, custom class folders and the data set registry."""

from __future__ import annotations

import data_fixtures as fx
import numpy as np
import pytest

from rol_hashing.data.awa2 import load_awa2
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.registry import available_datasets, get_dataset_spec, load_dataset
from rol_hashing.errors import InputError


def test_awa2_tree(tmp_path):
    folder = fx.write_awa2(tmp_path, per_class=3)
    record = load_awa2(tmp_path)
    assert record.root == folder
    assert record.class_names == fx.AWA2_CLASSES
    assert len(record) == 9 and record.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert record.ids[3] == "grizzly+bear/grizzly+bear_10001.jpg"
    assert record.paths[3] == folder / "JPEGImages" / "grizzly+bear" / "grizzly+bear_10001.jpg"


def test_awa2_missing_class_folder_and_root(tmp_path):
    folder = fx.write_awa2(tmp_path, per_class=1)
    with pytest.raises(FileNotFoundError, match="classes.txt"):
        load_awa2(tmp_path / "elsewhere")
    for path in (folder / "JPEGImages" / "antelope").iterdir():
        path.unlink()
    (folder / "JPEGImages" / "antelope").rmdir()
    with pytest.warns(UserWarning, match="antelope"):
        record = load_awa2(folder)
    assert len(record) == 2 and record.class_counts().tolist() == [0, 1, 1]
    with pytest.raises(FileNotFoundError, match="antelope"):
        load_awa2(folder, strict=True)


def test_awa2_corrupt_image_skipped(tmp_path):
    folder = fx.write_awa2(tmp_path, per_class=2)
    fx.write_corrupt_jpeg(folder / "JPEGImages" / "antelope" / "antelope_10001.jpg")
    with pytest.warns(UserWarning, match="antelope_10001.jpg"):
        record = load_awa2(folder)
    assert len(record) == 5 and len(record.skipped) == 1


def test_class_folders_with_mixed_formats_and_split_file(tmp_path):
    split = {"train": ["cat/000.jpg", "dog/001.png"], "query": ["cat/003.png"]}
    root = fx.write_class_folders(tmp_path / "mine", per_class=4, split=split)
    fx.write_cmyk_jpeg(root / "dog" / "cmyk.jpg")
    fx.write_rgba_png(root / "dog" / "alpha.png")
    record = load_class_folders(root)
    assert record.class_names == ["cat", "dog"]
    assert len(record) == 10 and record.class_counts().tolist() == [4, 6]
    assert "cat/001.png" in record.ids and "dog/cmyk.jpg" in record.ids
    assert record.predefined_split == split


def test_class_folders_classes_txt_sets_label_order(tmp_path):
    root = fx.write_class_folders(tmp_path, classes=("a", "b"), per_class=2)
    (root / "classes.txt").write_text("b\na\n")
    record = load_class_folders(root)
    assert record.class_names == ["b", "a"]
    assert record.labels[record.ids.index("b/000.jpg")] == 0


def test_class_folders_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="<class>"):
        load_class_folders(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no class folder"):
        load_class_folders(tmp_path / "empty")
    root = fx.write_class_folders(tmp_path / "bad", per_class=2)
    (root / "split.json").write_text('{"train": []}')
    with pytest.raises(InputError, match="split.json"):
        load_class_folders(root)


def test_registry_names_sizes_and_errors(tmp_path):
    assert available_datasets() == [
        "cifar10",
        "voc2012",
        "awa2",
        "folders",
        "generated",
        "fashion_mnist",
        "fashion_scenes",
    ]
    fashion = get_dataset_spec("fashion_mnist")
    assert (fashion.train_size, fashion.query_size, fashion.set_aside) == (500, 100, 200)
    cifar = get_dataset_spec("cifar10")
    assert (cifar.train_size, cifar.query_size, cifar.per_class) == (500, 100, True)
    assert cifar.top_k == 1000 and cifar.num_classes == 10 and not cifar.multilabel
    voc = get_dataset_spec("voc2012")
    assert (voc.train_size, voc.query_size, voc.multilabel) == (5000, 1000, True)
    awa2 = get_dataset_spec("awa2")
    assert (awa2.train_size, awa2.query_size, awa2.num_classes) == (10000, 1000, 50)
    with pytest.raises(InputError, match="cifar10, voc2012, awa2, folders, generated"):
        get_dataset_spec("imagenet")
    with pytest.raises(FileNotFoundError, match="Animals_with_Attributes2"):
        load_dataset("awa2", tmp_path)
    fx.write_awa2(tmp_path, per_class=1)
    record = load_dataset("awa2", tmp_path)
    assert record.name == "awa2" and np.array_equal(record.labels, [0, 1, 2])


def test_hidden_folders_are_not_classes_and_are_counted(tmp_path):
    """Issue 22 case 11: ``.ipynb_checkpoints`` and ``.hidden`` became classes."""
    root = fx.write_class_folders(tmp_path / "mine", per_class=3)
    for hidden in (".ipynb_checkpoints", ".hidden"):
        (root / hidden).mkdir()
        fx.write_rgba_png(root / hidden / "x.png")
    record = load_class_folders(root)
    assert record.class_names == ["cat", "dog"] and len(record) == 6
    reasons = dict(record.skipped)
    assert reasons[str(root / ".hidden")] == "hidden folder, not a class"
    assert str(root / ".ipynb_checkpoints") in reasons
