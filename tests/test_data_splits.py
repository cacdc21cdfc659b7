"""Split rules (readings §3): disjointness, per-class counts, saved-file reuse."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import data_fixtures as fx
import numpy as np
import pytest

from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.data.splits import (
    draw_split,
    load_split,
    make_or_load_split,
)
from rol_hashing.errors import InputError


def fake_record(name: str, labels: np.ndarray, multilabel: bool = False) -> DatasetRecord:
    n = len(labels)
    classes = labels.shape[1] if multilabel else int(labels.max()) + 1
    return DatasetRecord(
        name=name,
        class_names=[f"c{k}" for k in range(classes)],
        labels=labels,
        ids=[f"img{i:05d}" for i in range(n)],
        root=Path("/nowhere"),
        images=np.zeros((n, 1, 1, 3), np.uint8),
        multilabel=multilabel,
    )


def test_cifar10_paper_split_counts(tmp_path):
    record = fake_record("cifar10", np.repeat(np.arange(10), 6000))  # 60000 images
    spec = get_dataset_spec("cifar10")
    split = make_or_load_split(record, spec, tmp_path / "split.json", seed=0)
    assert split.counts() == {"train": 5000, "query": 1000, "gallery": 59000}
    parts = split.indices(record)
    assert np.bincount(record.labels[parts.train]).tolist() == [500] * 10
    assert np.bincount(record.labels[parts.query]).tolist() == [100] * 10
    assert not set(split.train) & set(split.query)
    assert not set(split.gallery) & set(split.query)
    assert set(split.gallery) | set(split.query) == set(record.ids)
    assert set(split.train) <= set(split.gallery)


def test_voc_multilabel_split_is_random_with_paper_counts(tmp_path):
    rng = np.random.default_rng(1)
    labels = (rng.random((9267, 20)) < 0.1).astype(np.uint8)
    record = fake_record("voc2012", labels, multilabel=True)
    split = make_or_load_split(record, get_dataset_spec("voc2012"), tmp_path / "s.json")
    assert split.counts() == {"train": 5000, "query": 1000, "gallery": 8267}
    assert not set(split.train) & set(split.query)


def test_same_seed_same_split_other_seed_other_split():
    record = fake_record("folders", np.repeat(np.arange(3), 20))
    a = draw_split(record, 10, 4, per_class=True, seed=3)
    b = draw_split(record, 10, 4, per_class=True, seed=3)
    c = draw_split(record, 10, 4, per_class=True, seed=4)
    assert a == b and a.query != c.query
    fractions = draw_split(record, 0.5, 0.1, per_class=True, seed=0)
    assert fractions.counts() == {"train": 30, "query": 6, "gallery": 54}


def test_too_small_class_is_an_error():
    record = fake_record("cifar10", np.array([0, 0, 0, 1, 1, 1, 1, 1]))
    with pytest.raises(InputError, match="class 'c0' has 3 images"):
        draw_split(record, 2, 2, per_class=True)


def test_saved_split_is_written_atomically_and_reused(tmp_path):
    record = fake_record("folders", np.repeat(np.arange(2), 10))
    spec = dataclasses.replace(get_dataset_spec("folders"), train_size=4, query_size=2)
    path = tmp_path / "results" / "split_folders_seed0.json"
    first = make_or_load_split(record, spec, path, seed=0)
    content = json.loads(path.read_text())
    assert content["format"] == 1 and content["dataset"] == "folders" and content["seed"] == 0
    assert set(content) == {"format", "dataset", "seed", "train", "query", "gallery"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    # A different seed or size does not redraw: the saved file wins.
    with pytest.warns(UserWarning, match="seed 0"):
        again = make_or_load_split(record, dataclasses.replace(spec, train_size=6), path, seed=5)
    assert again == first
    assert load_split(path, record) == first


def test_saved_split_that_does_not_fit_names_the_file(tmp_path):
    record = fake_record("folders", np.repeat(np.arange(2), 10))
    spec = dataclasses.replace(get_dataset_spec("folders"), train_size=4, query_size=2)
    path = tmp_path / "split.json"
    make_or_load_split(record, spec, path)
    other = fake_record("folders", np.repeat(np.arange(2), 5))  # ids img00010.. missing
    with pytest.raises(InputError, match="split.json") as info:
        make_or_load_split(other, spec, path)
    assert "not in data set" in str(info.value)
    content = json.loads(path.read_text())
    content["train"].append(content["query"][0])
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match="query ids are also in 'train'"):
        load_split(path, record)
    with pytest.raises(InputError, match="for data set 'folders', not 'cifar10'"):
        make_or_load_split(dataclasses.replace(record, name="cifar10"), spec, path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="split.json"):
        load_split(path)


def test_class_folders_split_file_is_used_and_gallery_defaults(tmp_path):
    given = {"train": ["cat/000.jpg", "dog/000.jpg"], "query": ["cat/001.png", "dog/002.jpg"]}
    root = fx.write_class_folders(tmp_path / "data", per_class=4, split=given)
    record = load_class_folders(root)
    spec = get_dataset_spec("folders")
    split = make_or_load_split(record, spec, tmp_path / "results" / "split.json")
    assert list(split.train) == given["train"] and list(split.query) == given["query"]
    assert len(split.gallery) == 6 and not set(split.gallery) & set(given["query"])
    bad = {"train": ["cat/000.jpg"], "query": ["cat/000.jpg"]}
    root = fx.write_class_folders(tmp_path / "bad", per_class=2, split=bad)
    with pytest.raises(InputError, match="query ids are also in 'train'"):
        make_or_load_split(load_class_folders(root), spec, tmp_path / "other.json")


def test_fashion_protocol_sets_the_streams_images_aside(tmp_path):
    """Fashion-MNIST: 200 / class set aside for the segmentation stream, then CIFAR-10's
    500 + 100 / class; the gallery is every image neither a query nor set aside."""
    record = fake_record("fashion_mnist", np.repeat(np.arange(10), 7000))  # 70000 images
    spec = get_dataset_spec("fashion_mnist")
    split = make_or_load_split(record, spec, tmp_path / "split.json", seed=0)
    assert split.counts() == {"train": 5000, "query": 1000, "gallery": 67000}
    aside = set(split.set_aside)
    assert len(aside) == 2000
    assert np.bincount(record.labels[record.index_of(split.set_aside)]).tolist() == [200] * 10
    for part in ("train", "query", "gallery"):
        assert not aside & set(getattr(split, part)), part
    assert set(split.gallery) | set(split.query) | aside == set(record.ids)
    again = load_split(tmp_path / "split.json", record)  # the set-aside list round-trips
    assert again == split
    assert json.loads((tmp_path / "split.json").read_text())["set_aside"] == list(split.set_aside)


def test_no_set_aside_leaves_a_split_as_it_was():
    record = fake_record("folders", np.repeat(np.arange(3), 20))
    plain = draw_split(record, 10, 4, per_class=True, seed=3)
    assert plain.set_aside == () and "set_aside" not in plain.to_json()
    aside = draw_split(record, 10, 4, per_class=True, seed=3, set_aside=2)
    assert len(aside.set_aside) == 6 and aside == draw_split(
        record, 10, 4, per_class=True, seed=3, set_aside=2
    )
    with pytest.raises(InputError, match=r"10 train \+ 4 query \+ 7 set aside"):
        draw_split(record, 10, 4, per_class=True, seed=3, set_aside=7)


def test_a_split_file_whose_set_aside_overlaps_a_part_is_refused(tmp_path):
    record = fake_record("folders", np.repeat(np.arange(3), 20))
    split = draw_split(record, 10, 4, per_class=True, seed=3, set_aside=2)
    bad = dataclasses.replace(split, set_aside=(*split.set_aside, split.gallery[0]))
    bad.save(tmp_path / "split.json")
    with pytest.raises(InputError, match="set aside for the segmentation stream are also in"):
        load_split(tmp_path / "split.json", record)
    twice = dataclasses.replace(split, set_aside=(split.set_aside[0],) * 2)
    twice.save(tmp_path / "split.json")
    with pytest.raises(InputError, match="'set_aside' lists an id twice"):
        load_split(tmp_path / "split.json", record)


def test_an_empty_train_part_is_refused_naming_the_file(tmp_path):
    """Issue 22 case 15: a data ``split.json`` with ``"train": []`` trained on nothing
    and then said "lower the learning rate"."""
    from rol_hashing.data.splits import make_or_load_split
    from rol_hashing.errors import InputError

    root = fx.write_class_folders(tmp_path / "mine", per_class=4)
    (root / "split.json").write_text(json.dumps({"train": [], "query": ["cat/000.jpg"]}))
    record = load_class_folders(root)
    with pytest.raises(InputError, match=r"split file in .*mine: 'train' is empty"):
        make_or_load_split(record, get_dataset_spec("folders"), tmp_path / "run_split.json")


def test_a_huge_unknown_id_is_quoted_short(tmp_path):
    """Issue 22 case 22: a 100,000-character id was printed in full."""
    from rol_hashing.data.splits import Split, check_split
    from rol_hashing.errors import InputError

    record = fake_record("folders", np.arange(12) % 3)
    huge = "x" * 100_000
    split = Split(record.name, 0, (huge,), (record.ids[0],), (record.ids[1],))
    with pytest.raises(InputError) as err:
        check_split(split, record, "split.json")
    assert len(str(err.value)) < 500 and "(100000 chars)" in str(err.value)
