"""PIL decoding: odd modes become RGB, bad files are refused with their name."""

from __future__ import annotations

import data_fixtures as fx
import numpy as np
import pytest
from PIL import Image

from rol_hashing.data.images import (
    ImageError,
    check_files,
    decode_image,
    read_mask,
    validate_image,
    voc_palette,
)


def test_voc_palette_matches_known_colours():
    palette = voc_palette()
    assert palette.shape == (256, 3)
    assert tuple(palette[1]) == (128, 0, 0)  # aeroplane
    assert tuple(palette[15]) == (192, 128, 128)  # person
    assert tuple(palette[255]) == (224, 224, 192)  # void border


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    rgb = decode_image(fx.write_cmyk_jpeg(tmp_path / "cmyk.jpg"))
    assert rgb.shape == (16, 20, 3) and rgb.dtype == np.uint8
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    # Pure cyan, within JPEG error.
    np.testing.assert_allclose(rgb.reshape(-1, 3).mean(axis=0), (0, 255, 255), atol=8)


def test_png_with_alpha_is_composited_on_white(tmp_path):
    rgb = decode_image(fx.write_rgba_png(tmp_path / "alpha.png"))
    assert rgb.shape == (16, 20, 3)
    assert (rgb[:, :10] == (255, 0, 0)).all()
    assert (rgb[:, 10:] == 255).all()  # transparent, not the hidden black


def test_grayscale_and_palette_pngs_become_rgb(tmp_path):
    gray = decode_image(fx.write_gray_png(tmp_path / "gray.png", value=77))
    assert gray.shape == (16, 20, 3) and (gray == 77).all()
    palette = decode_image(fx.write_palette_png(tmp_path / "palette.png"))
    assert (palette == (0, 128, 0)).all()


def test_sixteen_bit_png_is_scaled(tmp_path):
    values = np.full((4, 5), 65535, dtype=np.uint16)
    values[0, 0] = 0
    Image.fromarray(values).save(tmp_path / "deep.png")
    rgb = decode_image(tmp_path / "deep.png")
    assert rgb.shape == (4, 5, 3) and rgb[1, 1, 0] == 255 and rgb[0, 0, 0] == 0


def test_corrupt_and_truncated_jpegs_are_refused_by_name(tmp_path):
    corrupt = fx.write_corrupt_jpeg(tmp_path / "corrupt.jpg")
    truncated = fx.write_truncated_jpeg(tmp_path / "truncated.jpg")
    for path in (corrupt, truncated):
        with pytest.raises(ImageError, match=path.name):
            validate_image(path)
        with pytest.raises(ImageError, match=path.name):
            decode_image(path)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = fx.write_bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="bomb"):
        decode_image(bomb)
    with pytest.raises(ImageError, match="decompression bomb"):
        decode_image(fx.write_gray_png(tmp_path / "small.png"), max_pixels=100)


def test_check_files_skips_counts_and_strict_raises(tmp_path):
    good = fx.write_gray_png(tmp_path / "good.png")
    bad = fx.write_corrupt_jpeg(tmp_path / "bad.jpg")
    missing = tmp_path / "missing.jpg"
    with pytest.warns(UserWarning, match="skipped 2"):
        ok, skipped = check_files([good, bad, missing])
    assert ok.tolist() == [True, False, False]
    assert [p for p, _ in skipped] == [str(bad), str(missing)]
    with pytest.raises(ImageError, match="bad.jpg"):
        check_files([good, bad], strict=True)


def test_masks_keep_indices_and_255(tmp_path):
    mask = fx.object_mask(12, 16, 15, (3, 4, 9, 12))
    path = fx.write_voc_mask(tmp_path / "mask.png", mask)
    np.testing.assert_array_equal(read_mask(path), mask)
    # An RGB-converted mask maps back through the VOC colour map.
    Image.open(path).convert("RGB").save(tmp_path / "rgb_mask.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb_mask.png"), mask)
    odd = np.zeros((4, 4, 3), np.uint8)
    odd[0, 0] = (1, 2, 3)
    Image.fromarray(odd).save(tmp_path / "odd.png")
    with pytest.raises(ImageError, match="odd.png"):
        read_mask(tmp_path / "odd.png")
