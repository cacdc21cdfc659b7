"""PASCAL-VOC2012 devkit: segmentation set, hashing rule, bad input."""

from __future__ import annotations

import shutil

import data_fixtures as fx
import numpy as np
import pytest
from PIL import Image

from rol_hashing.data.images import read_mask
from rol_hashing.data.voc import VOC_CLASSES, load_voc2012, load_voc_segmentation
from rol_hashing.errors import InputError


def test_segmentation_set_reads_lists_and_palette_masks(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path)
    record = load_voc_segmentation(tmp_path, split="trainval")  # from the parent folder
    assert record.root == devkit
    assert record.ids == fx.VOC_SEG_TRAIN + fx.VOC_SEG_VAL
    assert record.class_names == ["background", *VOC_CLASSES]
    assert record.labels.shape == (3, 21) and record.multilabel
    assert record.labels[0, 0] == 1 and record.labels[0, 1 + VOC_CLASSES.index("bus")] == 1
    assert record.labels[1, 1 + VOC_CLASSES.index("aeroplane")] == 1
    mask = read_mask(record.mask_paths[0])
    assert set(np.unique(mask).tolist()) == {0, 1 + VOC_CLASSES.index("bus"), 255}
    assert [len(load_voc_segmentation(devkit, s)) for s in ("train", "val")] == [2, 1]


def test_hashing_set_is_main_trainval_minus_segmentation(tmp_path):
    fx.write_voc_devkit(tmp_path)
    record = load_voc2012(tmp_path / "VOCdevkit")
    assert record.ids == fx.VOC_HASHING
    assert record.multilabel and record.labels.dtype == np.uint8
    assert record.labels.shape == (5, 20)
    row = record.labels[record.ids.index("2008_000002")]
    assert set(np.flatnonzero(row)) == {VOC_CLASSES.index("person"), VOC_CLASSES.index("dog")}
    info = record.info
    assert info["Main trainval images"] == 8
    assert info["with a positive label"] == 7  # 2008_000008 has only a difficult cat
    assert info["segmentation images removed"] == 2  # 2008_000001, 2008_000003
    assert info["hashing images (rule)"] == 5
    summary = record.summary()
    assert "hashing images (rule): 5" in summary and "paper reports: 9267" in summary


def test_difficult_flags_count_when_asked(tmp_path):
    fx.write_voc_devkit(tmp_path)
    record = load_voc2012(tmp_path, include_difficult=True)
    assert "2008_000008" in record.ids
    assert record.labels[record.ids.index("2008_000008"), VOC_CLASSES.index("cat")] == 1


def test_missing_root_and_list_files_name_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="SegmentationClass") as info:
        load_voc2012(tmp_path / "nothing")
    assert "nothing" in str(info.value)
    devkit = fx.write_voc_devkit(tmp_path)
    (devkit / "ImageSets" / "Segmentation" / "val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val.txt"):
        load_voc_segmentation(devkit, split="val")
    shutil.rmtree(devkit / "ImageSets" / "Main")
    with pytest.raises(FileNotFoundError, match="_trainval.txt"):
        load_voc2012(devkit)


def test_malformed_main_line_names_file_and_line(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path)
    path = devkit / "ImageSets" / "Main" / "dog_trainval.txt"
    path.write_text(path.read_text() + "2008_000099 yes\n")
    with pytest.raises(InputError, match=r"dog_trainval.txt:9"):
        load_voc2012(devkit)


def test_corrupt_image_is_skipped_and_counted_or_strict_error(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path)
    bad = fx.write_truncated_jpeg(devkit / "JPEGImages" / "2008_000004.jpg")
    with pytest.warns(UserWarning, match="2008_000004.jpg"):
        record = load_voc2012(devkit)
    assert "2008_000004" not in record.ids and len(record) == 4
    assert record.skipped[0][0] == str(bad)
    assert "skipped files: 1" in record.summary()
    with pytest.raises(InputError, match="2008_000004.jpg"):
        load_voc2012(devkit, strict=True)


def test_mask_size_mismatch_names_both_files(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path, height=30, width=40)
    mask_path = devkit / "SegmentationClass" / "2008_000001.png"
    fx.write_voc_mask(mask_path, np.zeros((31, 40), np.uint8))
    with pytest.raises(InputError) as info:
        load_voc_segmentation(devkit)
    assert "2008_000001.png" in str(info.value) and "2008_000001.jpg" in str(info.value)


def test_mask_with_unknown_class_value_is_refused(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path)
    mask = np.zeros((30, 40), np.uint8)
    mask[0, 0] = 42
    fx.write_voc_mask(devkit / "SegmentationClass" / "2008_000003.png", mask)
    with pytest.raises(InputError, match=r"2008_000003.png.*\[42\]"):
        load_voc_segmentation(devkit, strict=True)
    with pytest.warns(UserWarning):
        record = load_voc_segmentation(devkit)
    assert "2008_000003" not in record.ids


def test_grayscale_mask_png_is_read_as_indices(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path)
    path = devkit / "SegmentationClass" / "2007_000032.png"
    mask = np.asarray(Image.open(path))
    Image.fromarray(mask, "L").save(path)
    record = load_voc_segmentation(devkit)
    np.testing.assert_array_equal(read_mask(record.mask_paths[0]), mask)
