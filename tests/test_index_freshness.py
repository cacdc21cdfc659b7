"""The search index is a derived file like the others (issue 22 case 4), and a query file
is prepared exactly as the same file is in the gallery (case 3)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rol_hashing.data.generated import load_generated
from rol_hashing.data.pipeline import make_image_dataset, preprocess_image
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.splits import load_split
from rol_hashing.errors import InputError
from rol_hashing.io import atomic_savez
from rol_hashing.retrieval import query
from rol_hashing.retrieval.gallery_index import build_index, load_gallery_index
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.retrieval.search import search_image
from rol_hashing.saving import load_model
from rol_hashing.training.layout import INDEX_FILE, ITEMS_FILE, open_hashing_run

# ---- case 3: one file, one input ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_large_gallery_file_is_the_same_input_as_a_query(tmp_path, suffix):
    rng = np.random.default_rng(0)
    pixels = (rng.random((1000, 760, 3)) * 255).astype(np.uint8)  # reduced at input 32
    path = tmp_path / f"big{suffix}"
    Image.fromarray(pixels).save(path)
    record = DatasetRecord("toy", ["x"], np.zeros(1, np.int64), ["big"], tmp_path, paths=[path])
    ((gallery, _),) = make_image_dataset(record, None, input_size=32, batch_size=1)
    prepared = preprocess_image(query.decode_query(path, 32), 32)
    np.testing.assert_array_equal(np.asarray(gallery[0]), np.asarray(prepared))


# ---- case 4: the index's key and items ------------------------------------------------------


@pytest.fixture
def indexed(tiny_runs, tmp_path) -> tuple[Path, Path]:
    """(run, a query image of it): a copy of the tiny SSDH run with a built index."""
    run = Path(shutil.copytree(tiny_runs["runs"]["ssdh"], tmp_path / "run"))
    build_index(run, verbose=0)
    record = load_generated(tiny_runs["data_root"])
    qid = load_split(run / "split.json", record).query[0]
    return run, Path(record.paths[record.index_of([qid])[0]])


def _items(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / ITEMS_FILE) as z:
        return {k: z[k] for k in z.files}


def test_another_model_copied_in_with_an_older_time_rebuilds_the_index(indexed, capsys):
    run, image = indexed
    before = load_gallery_index(run)
    model = load_model(run / "model.keras")
    weights = model.get_layer("hash").get_weights()
    model.get_layer("hash").set_weights([-w for w in weights])  # other codes
    model.save(run / "model.keras")
    old = (run / INDEX_FILE).stat().st_mtime_ns - 10**9
    os.utime(run / "model.keras", ns=(old, old))  # as `cp -p` of an older model leaves it
    capsys.readouterr()
    results = search_image(run, image, top=5)
    assert "rebuilt: made from another model" in capsys.readouterr().out
    after = load_gallery_index(run)
    assert not np.array_equal(after.index.words, before.index.words)
    code = query.encode_image(load_model(run / "model.keras"), image, 32, 12)
    distances, _ = after.search(code, 5)
    assert [r.distance for r in results] == distances.tolist()


@pytest.mark.parametrize("tamper", ["reversed", "duplicated", "labels_100"])
def test_tampered_items_are_rebuilt_not_trusted(indexed, capsys, tamper):
    run, image = indexed
    items = _items(run)
    if tamper == "reversed":
        items["ids"] = items["ids"][::-1].copy()
    elif tamper == "duplicated":
        items["ids"] = items["ids"].copy()
        items["ids"][1] = items["ids"][0]
    else:
        items["labels"] = items["labels"] + 100
    atomic_savez(run / ITEMS_FILE, **items)  # the key and the codes' digest kept
    capsys.readouterr()
    search_image(run, image, top=3)
    out = capsys.readouterr().out
    assert "index of" in out and "rebuilt" in out
    fresh = load_gallery_index(run)
    split = load_split(run / "split.json", _record_of(run))
    assert fresh.ids.tolist() == list(split.gallery)
    assert int(fresh.labels.max()) < 100


def _record_of(run: Path) -> DatasetRecord:
    return open_hashing_run(run).load_data()[1]


def test_items_of_another_build_are_refused_by_the_loader_and_rebuilt(indexed, capsys):
    run, image = indexed
    items = _items(run)
    index = HammingIndex(12)
    codes = np.zeros((len(items["ids"]), 12), bool)
    index.add(codes)
    index.save(run / INDEX_FILE)  # a kill between the pair's writes: new index, old items
    with pytest.raises(InputError, match="written for other codes than"):
        load_gallery_index(run)
    capsys.readouterr()
    search_image(run, image, top=3)
    assert "written for other codes" in capsys.readouterr().out
    load_gallery_index(run)


def test_an_index_of_format_1_is_rebuilt(indexed, capsys):
    run, image = indexed
    items = _items(run)
    for name in ("key", "codes_sha256"):
        del items[name]
    items["format_version"] = np.array(1)
    atomic_savez(run / ITEMS_FILE, **items)
    capsys.readouterr()
    search_image(run, image, top=3)
    assert "version 1" in capsys.readouterr().out
    assert load_gallery_index(run).key["kind"] == "index"
