"""The Fashion-MNIST variants' derived files and the classical baselines: scenes are a
function of the seed, their distractors stay in the scene's split part, the devkit is
what ``train-seg`` reads, LSH and ITQ learn from features, and ROL runs that share
their stream's masks encode exactly as the live model does."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_fixtures import write_fashion_idx

from rol_hashing.data import fashion_sets
from rol_hashing.data.fashion import load_fashion_mnist
from rol_hashing.data.fashion_sets import load_fashion_scenes, write_devkit, write_scenes
from rol_hashing.data.scenes import PHOTOS, photo_path, render_scene
from rol_hashing.data.splits import draw_split
from rol_hashing.data.voc import load_voc_segmentation
from rol_hashing.errors import InputError
from rol_hashing.retrieval.classical import ITQ, LSH


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return load_fashion_mnist(write_fashion_idx(tmp_path_factory.mktemp("idx")))


def test_the_photographs_are_shipped_by_dependencies():
    for package, name in PHOTOS:
        assert photo_path(package, name).is_file(), (package, name)


def test_a_scene_is_a_function_of_its_draws(clean):
    gray = clean.images[:3, :, :, 0]
    a = render_scene(np.random.default_rng([0, 41, 5]), gray[0], [gray[1], gray[2]], 48)
    b = render_scene(np.random.default_rng([0, 41, 5]), gray[0], [gray[1], gray[2]], 48)
    c = render_scene(np.random.default_rng([1, 41, 5]), gray[0], [gray[1], gray[2]], 48)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    image, mask = a
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 255} and (mask == 1).sum() > 100


def test_scenes_keep_distractors_in_their_part_and_are_reused(clean, tmp_path, monkeypatch):
    split = draw_split(clean, 3, 1, True, 0, set_aside=2)
    pools = fashion_sets._pools(clean, split)
    labels = clean.labels
    rng = np.random.default_rng(0)
    for i in range(len(clean)):
        members = np.flatnonzero(pools == pools[i])
        for k in fashion_sets._distractors(rng, members, labels, int(labels[i])):
            assert pools[k] == pools[i] and labels[k] != labels[i]
    monkeypatch.setattr(fashion_sets.os, "sched_getaffinity", lambda _: {0})  # in-process
    out = write_scenes(clean, split, tmp_path / "scenes", size=32, seed=0)
    scenes = load_fashion_scenes(out)
    assert scenes.images.shape == (len(clean), 32, 32, 3) and scenes.ids == clean.ids
    first = np.array(scenes.images)
    stamp = (out / "images.npy").stat().st_mtime_ns
    assert write_scenes(clean, split, out, size=32, seed=0) == out  # same settings: kept
    assert (out / "images.npy").stat().st_mtime_ns == stamp
    again = write_scenes(clean, split, tmp_path / "again", size=32, seed=0)
    np.testing.assert_array_equal(np.array(load_fashion_scenes(again).images), first)


def test_a_scenes_folder_that_disagrees_with_its_meta_is_refused(clean, tmp_path):
    split = draw_split(clean, 3, 1, True, 0, set_aside=2)
    out = write_scenes(clean, split, tmp_path / "scenes", size=32, seed=0)
    with pytest.raises(FileNotFoundError, match="rol-hashing fashion"):
        load_fashion_scenes(tmp_path / "missing")
    np.save(out / "labels.npy", np.zeros(3, np.int64))
    with pytest.raises(InputError, match=r"labels.npy: shape \(3,\), meta.json says \(80,\)"):
        load_fashion_scenes(out)


def test_the_devkit_holds_the_set_aside_images_with_their_classes(clean, tmp_path):
    split = draw_split(clean, 3, 1, True, 0, set_aside=2)
    devkit = write_devkit(clean, split, tmp_path / "voc")
    train = load_voc_segmentation(devkit, "train")
    val = load_voc_segmentation(devkit, "val")
    assert len(train) + len(val) == 20 and len(val) == 5
    assert train.class_names == ["background", *clean.class_names]
    names = sorted(i.replace("/", "_") for i in split.set_aside)
    assert sorted(train.ids + val.ids) == names
    # each mask marks its item with its class (label + 1)
    present = np.concatenate([train.labels, val.labels])
    ids = train.ids + val.ids
    for row, name in zip(present, ids, strict=True):
        label = int(clean.labels[clean.index_of([name.replace("_", "/")])[0]])
        assert row[label + 1] == 1 and row[1:].sum() == 1
    assert write_devkit(clean, split, tmp_path / "voc") == devkit  # kept
    shutil.rmtree(devkit / "JPEGImages")
    (devkit / "made_from.json").unlink()
    write_devkit(clean, split, tmp_path / "voc")  # rewritten when its key is gone
    assert len(list((devkit / "JPEGImages").iterdir())) == 20


def test_a_devkit_is_kept_whether_its_source_is_named_relatively_or_absolutely(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    idx = write_fashion_idx(tmp_path / "idx")
    relative = load_fashion_mnist(idx.relative_to(tmp_path))
    absolute = load_fashion_mnist(idx.resolve())
    split = draw_split(relative, 3, 1, True, 0, set_aside=2)
    devkit = write_devkit(relative, split, "voc")
    first = {p.name: p.stat().st_mtime_ns for p in (devkit / "JPEGImages").iterdir()}
    assert write_devkit(absolute, split, tmp_path / "voc").resolve() == devkit.resolve()
    again = {p.name: p.stat().st_mtime_ns for p in (devkit / "JPEGImages").iterdir()}
    assert again == first  # not written again
    meta = fashion_sets.scenes_meta
    assert meta(relative, split, 32, 0) == meta(absolute, split, 32, 0)  # scenes too


def test_lsh_and_itq_learn_codes_from_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 32))
    labels = rng.integers(0, 4, 400)
    feats = centres[labels] + rng.normal(0, 1, (400, 32))
    for cls in (LSH, ITQ):
        coder = cls(16, seed=1).fit(feats[:300])
        codes = coder.encode(feats)
        assert codes.shape == (400, 16) and codes.dtype == bool
        np.testing.assert_array_equal(codes, cls(16, seed=1).fit(feats[:300]).encode(feats))
        # same-cluster items are closer in Hamming distance than other-cluster ones
        d = (codes[:, None, :] != codes[None, :, :]).sum(-1)
        same = labels[:, None] == labels[None, :]
        assert d[same].mean() < 0.6 * d[~same].mean(), cls.__name__
    itq = ITQ(16, seed=1).fit(feats)
    v = itq.pca.transform(feats)
    rotated = v @ itq.rotation
    # ITQ minimises ||sign(VR) - VR||, i.e. maximises sum |VR|: its rotation quantises
    # with less loss than the plain PCA projection
    assert np.abs(rotated).sum() > np.abs(v).sum()
    with pytest.raises(InputError, match="at least 64 feature dimensions"):
        ITQ(64).fit(feats)


@pytest.mark.slow
def test_shared_masks_encode_as_the_live_model(tiny_runs, tmp_path):
    """A ROL run encoded through its stream's shared masks (the mask-input twin) gives
    the codes of the live model, and a second run reuses the masks."""
    from rol_hashing.evaluation.evaluate import evaluate_run
    from rol_hashing.retrieval.codes import load_codes

    run = tmp_path / "rol"
    shutil.copytree(tiny_runs["runs"]["rol"], run)
    for name in ("codes_query.npz", "codes_gallery.npz", "metrics.json"):
        (run / name).unlink(missing_ok=True)
    live = evaluate_run(run, verbose=0)
    live_codes = load_codes(run / "codes_gallery.npz", bits=12).codes
    for name in ("codes_query.npz", "codes_gallery.npz"):
        (run / name).unlink()
    shared = tmp_path / "shared"
    twin = evaluate_run(run, verbose=0, shared_masks=shared)
    np.testing.assert_array_equal(load_codes(run / "codes_gallery.npz", bits=12).codes, live_codes)
    assert twin["map_at_k"] == live["map_at_k"]
    assert sorted(p.name for p in shared.iterdir()) == [
        "gallery.json",
        "gallery.npy",
        "query.json",
        "query.npy",
    ]
