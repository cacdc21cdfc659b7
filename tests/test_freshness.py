"""The one freshness rule (rol_hashing/freshness.py): keys name what differs."""

import os

import numpy as np

from rol_hashing.data.record import DatasetRecord
from rol_hashing.freshness import (
    CODE_VERSION,
    array_digest,
    file_digest,
    images_digest,
    is_fresh,
    make_key,
    records_parts,
    stale_parts,
)


def test_a_key_names_each_part_that_differs():
    key = make_key("codes", model="m1", ids="i1", bits=12)
    assert key["code"] == CODE_VERSION and is_fresh(
        key, make_key("codes", model="m1", ids="i1", bits=12)
    )
    other = make_key("codes", model="m2", ids="i1", bits=48)
    assert stale_parts(key, other) == ["bits", "model"]
    assert stale_parts(key, make_key("masks", model="m1", ids="i1", bits=12)) == ["kind"]
    older = dict(key, code="rol_hashing-derived-0")
    assert stale_parts(older, key) == ["code"]
    assert stale_parts(make_key("codes", model="m1"), key) == ["bits", "ids"]  # a part added
    for not_a_key in (None, {}, {"model_sha256": "m1"}, [1, 2]):  # older layouts
        assert stale_parts(not_a_key, key) == ["key"]


def test_key_parts_are_plain_json():
    key = make_key("x", n=np.int64(3), shape=(2, 3), nested={"b": 1, "a": [np.float32(0.5)]})
    assert key["parts"] == {"n": 3, "shape": [2, 3], "nested": {"a": [0.5], "b": 1}}


def test_file_digest_follows_the_bytes(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"one")
    first = file_digest(path)
    assert file_digest(path) == first
    path.write_bytes(b"two")  # same size, new bytes
    os.utime(path, ns=(1, 1))
    assert file_digest(path) != first


def test_images_digest_sees_new_bytes_in_memory_and_new_files_on_disk(tmp_path):
    pixels = np.zeros((3, 4, 4, 3), np.uint8)
    record = DatasetRecord(
        "t", ["a"], np.zeros(3, np.int64), ["x", "y", "z"], tmp_path, images=pixels
    )
    before = images_digest(record)
    pixels[1, 0, 0, 0] = 1
    assert images_digest(record) != before
    assert images_digest(record, [0, 2]) == images_digest(record, [0, 2])
    files = []
    for k in range(3):
        f = tmp_path / f"{k}.png"
        f.write_bytes(b"png" * (k + 1))
        files.append(f)
    on_disk = DatasetRecord(
        "t", ["a"], np.zeros(3, np.int64), ["x", "y", "z"], tmp_path, paths=files
    )
    before = images_digest(on_disk)
    files[2].write_bytes(b"another image")
    assert images_digest(on_disk) != before
    files[2].unlink()
    assert images_digest(on_disk) != before  # a missing file is a change too


def test_record_parts_cover_ids_labels_and_pixels(tmp_path):
    pixels = np.zeros((2, 4, 4, 3), np.uint8)
    record = DatasetRecord("t", ["a", "b"], np.array([0, 1]), ["x", "y"], tmp_path, images=pixels)
    parts = records_parts(record)
    shifted = DatasetRecord("t", ["a", "b"], np.array([1, 0]), ["x", "y"], tmp_path, images=pixels)
    assert stale_parts(make_key("k", **parts), make_key("k", **records_parts(shifted))) == [
        "labels"
    ]
    assert array_digest(np.zeros(2, np.int64)) != array_digest(np.zeros(2, np.int32))
