"""Plot helpers: each returns a figure with the expected panels."""

import numpy as np

from rol_hashing import viz


def _images(b, s=16):
    return np.random.default_rng(0).integers(0, 255, (b, s, s, 3), dtype=np.uint8)


def test_rol_masks_panels(tmp_path):
    probs = np.random.default_rng(1).dirichlet(np.ones(4), size=(2, 16, 16)).astype("float32")
    fig = viz.plot_rol_masks(
        _images(2), probs, probs[..., 1:].max(-1), np.ones((2, 2, 2)), ["bg", "a", "b", "c"]
    )
    # per image: input, 2 class maps, R, R at the grid, overlay
    assert len(fig.axes) == 2 * 6
    assert "P(" in fig.axes[1].get_title()
    out = viz.save(fig, tmp_path / "m.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_overlay_tints_only_where_the_mask_is_high():
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((2, 2))
    mask[0, 0] = 1.0
    out = viz.overlay(image, mask)
    assert out[0, 0, 0] > 100 and out[0, 0, 1] < 100
    np.testing.assert_array_equal(out[3, 3], [100, 100, 100])


def test_feature_energy_panels():
    before = np.ones((3, 2, 2))
    fig = viz.plot_feature_energy(_images(3), before, before * 0.5)
    assert len(fig.axes) == 9
    assert "50%" in fig.axes[2].get_xlabel()


def test_retrieval_comparison_is_fig3_layout():
    rows = {
        "SSDH": [(_images(1)[0], j % 2 == 0) for j in range(10)],
        "ROL": [(_images(1)[0], True) for _ in range(10)],
    }
    fig = viz.plot_retrieval_comparison(_images(1)[0], rows, title="q")
    assert len(fig.axes) == 1 + 20
    assert "5/10" in fig.axes[1].get_ylabel() and "10/10" in fig.axes[11].get_ylabel()
    edge = fig.axes[2].spines["left"].get_edgecolor()
    assert np.allclose(edge[:3], [0xD7 / 255, 0x19 / 255, 0x1C / 255])  # 2nd SSDH result: red


def test_curves_and_map_plot():
    fig = viz.plot_precision_curves({"a": np.linspace(1, 0.5, 100), "b": np.ones(100)})
    assert len(fig.axes[0].lines) == 2
    fig = viz.plot_map_vs_bits({"SSDH": {12: 0.5, 48: (0.7, 0.05)}}, chance=1 / 6)
    assert fig.axes[0].get_ylabel() == "MAP"


def test_training_curves_show_only_series_that_exist():
    fig = viz.plot_training_curves(
        {"epoch": [0, 1], "loss": [2.0, 1.0], "val_acc": [float("nan")] * 2}
    )
    assert len(fig.axes) == 1  # no empty metric panel for an all-NaN column
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["loss"]
    both = viz.plot_training_curves({"epoch": [0], "loss": [1.0], "class_accuracy": [0.5]})
    assert len(both.axes) == 2
