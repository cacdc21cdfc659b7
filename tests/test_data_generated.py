"""The generated data set: deterministic, in the real formats, readable by the real loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rol_hashing.cli.main import main
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.generated import load_generated, make_generated_dataset, write_examples_png
from rol_hashing.data.images import read_mask
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.data.shapes import SHAPES, render_sample
from rol_hashing.data.splits import make_or_load_split
from rol_hashing.data.voc import load_voc2012, load_voc_segmentation
from rol_hashing.errors import InputError

SMALL = {"num_images": 24, "num_seg_images": 8, "num_classes": 3, "image_size": 40}


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return make_generated_dataset(tmp_path_factory.mktemp("gen") / "generated", seed=0, **SMALL)


def test_same_seed_same_bytes_other_seed_other_images(generated, tmp_path):
    again = make_generated_dataset(tmp_path / "again", seed=0, **SMALL)
    assert files(generated) == files(again)
    other = files(make_generated_dataset(tmp_path / "other", seed=1, **SMALL))
    first = "classes/disk/img_00000.jpg"
    assert other[first] != files(generated)[first]


def test_layout_and_meta(generated):
    devkit = generated / "VOCdevkit" / "VOC2012"
    meta = json.loads((generated / "meta.json").read_text())
    assert meta["classes"] == ["disk", "square", "triangle"] and meta["config"]["seed"] == 0
    assert meta["counts"]["segmentation"] == {"train": 6, "val": 2, "trainval": 8}
    assert (devkit / "ImageSets" / "Main" / "square_trainval.txt").is_file()
    assert len(list((devkit / "JPEGImages").glob("*.jpg"))) == 32
    assert len(list((devkit / "SegmentationClass").glob("*.png"))) == 8
    mask_file = Image.open(devkit / "SegmentationClass" / "seg_00001.png")
    assert mask_file.mode == "P"


def test_voc_loaders_read_the_devkit(generated):
    seg = load_voc_segmentation(generated, split="trainval")
    assert len(seg) == 8 and seg.class_names == ["background", "disk", "square", "triangle"]
    for k in range(len(seg)):
        mask = read_mask(seg.mask_paths[k])
        values = set(np.unique(mask).tolist())
        label = 1 + k % 3  # image i shows class i % num_classes
        assert values == {0, label, 255}
        with Image.open(seg.paths[k]) as image:
            assert image.size == (40, 40) and image.format == "JPEG"
    assert len(load_voc_segmentation(generated, "train")) == 6
    hashing = load_voc2012(generated)
    assert len(hashing) == 24 and hashing.info["segmentation images removed"] == 8
    folders = load_generated(generated)
    names = [key.split("/")[1][:-4] for key in folders.ids]
    by_id = dict(zip(names, folders.labels, strict=True))
    for key, row in zip(hashing.ids, hashing.labels, strict=True):
        assert row.sum() == 1 and int(np.argmax(row)) == by_id[key]


def test_class_folders_and_split_file(generated, tmp_path):
    record = load_class_folders(generated / "classes")
    assert record.class_names == ["disk", "square", "triangle"]
    assert record.class_counts().tolist() == [8, 8, 8]
    record = load_generated(generated)
    assert record.name == "generated" and record.predefined_split is not None
    split = make_or_load_split(record, get_dataset_spec("generated"), tmp_path / "split.json")
    assert split.counts() == {"train": 12, "query": 3, "gallery": 21}
    assert not set(split.train) & set(split.query)


def test_masks_have_object_and_255_border():
    rng = np.random.default_rng(0)
    image, mask = render_sample(rng, 2, sorted(SHAPES[:4]), 64, clutter=1.0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert set(np.unique(mask).tolist()) == {0, 3, 255}
    border = mask == 255
    assert border.sum() < (mask == 3).sum()
    # Every object pixel touching the background is a border pixel.
    obj = mask == 3
    assert not (obj[1:] & (mask[:-1] == 0)).any() and not (obj[:, 1:] & (mask[:, :-1] == 0)).any()


def test_existing_set_is_kept_or_replaced_with_force(generated, tmp_path):
    out = make_generated_dataset(tmp_path / "g", seed=0, **SMALL)
    stamp = (out / "meta.json").stat().st_mtime_ns
    make_generated_dataset(out, seed=0, **SMALL)  # same settings: left as is
    assert (out / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="--force"):
        make_generated_dataset(out, seed=2, **SMALL)
    make_generated_dataset(out, seed=2, force=True, **SMALL)
    assert json.loads((out / "meta.json").read_text())["config"]["seed"] == 2
    assert not (tmp_path / "g.partial").exists()
    with pytest.raises(InputError, match="clutter"):
        make_generated_dataset(tmp_path / "bad", clutter=2.0)


def test_examples_png(generated, tmp_path):
    png = write_examples_png(generated, tmp_path / "examples.png", count=4, per_row=2, scale=1)
    with Image.open(png) as image:
        assert image.size == (2 * 80 + 3 * 4, 2 * 40 + 3 * 4)


def test_cli_make_data_and_summary(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["make-data", "--out", str(out), "--num-images", "12", "--num-seg-images", "4"]
    argv += ["--num-classes", "2", "--image-size", "32", "--clutter", "0.3"]
    assert main(argv) == 0
    assert main(["data-summary", "--dataset", "generated", "--root", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "12 images" in printed and "skipped files: 0" in printed
    assert main(["data-summary", "--dataset", "voc2012", "--root", str(out)]) == 0
    assert "hashing images (rule): 12" in capsys.readouterr().out
    assert main(["data-summary", "--dataset", "imagenet", "--root", str(out)]) == 2
    assert main(["data-summary", "--dataset", "awa2", "--root", str(tmp_path / "no")]) == 2
    assert "Animals_with_Attributes2" in capsys.readouterr().err


def test_colour_statistics_do_not_name_the_class(tmp_path):
    """A colour-histogram classifier stays near chance (the CNN that learns the shapes
    is a benchmark: ``make generated-check``)."""
    from sklearn.linear_model import LogisticRegression

    from benchmarks.generated_check import colour_histograms

    root = make_generated_dataset(tmp_path / "g", num_images=600, num_seg_images=2, image_size=48)
    record = load_generated(root)
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in record.paths])
    order = np.random.default_rng(0).permutation(len(record.labels))
    train, test = order[:480], order[480:]
    hist, labels = colour_histograms(images), record.labels
    colour = LogisticRegression(max_iter=3000).fit(hist[train], labels[train])
    assert colour.score(hist[test], labels[test]) < 1 / 6 + 0.1
