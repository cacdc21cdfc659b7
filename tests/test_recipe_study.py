"""The recipe study's cells and rule (benchmarks/recipe_study.py, docs/recipe.md), at tiny
sizes: t10k items only, disjoint parts, the choice with its tie-break, one real cell."""

import json

import numpy as np
import pytest

import benchmarks.recipe_study as rs
from rol_hashing.errors import InputError
from tests.data_fixtures import write_fashion_idx


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(rs, "QUERY_PER_CLASS", 2)
    monkeypatch.setattr(rs, "GALLERY_PER_CLASS", 4)
    monkeypatch.setattr(rs, "SET_ASIDE_PER_CLASS", 1)
    monkeypatch.setattr(rs, "SIZES", (2,))
    monkeypatch.setattr(rs, "PRETRAIN_EPOCHS", 1)


def test_fashion_cells_use_t10k_items_only_in_disjoint_parts(tiny, tmp_path):
    root = write_fashion_idx(tmp_path / "idx", per_class=10, test_share=8)
    family = rs.fashion_family(tmp_path / "work", root)
    ids = [i for part in family.parts.values() for m in part.values() for i in m]
    assert ids and all(i.startswith("t10k/") for i in ids)
    split = rs.cell_split(family.parts, 2, "fashion_scenes")
    assert len(split.query) == 20 and len(split.gallery) == 40 and len(split.train) == 20
    assert set(split.train) <= set(split.gallery)
    assert not set(split.query) & set(split.gallery)
    assert not set(split.set_aside) & (set(split.query) | set(split.gallery))
    assert len(family.record) == 70 and family.record.images.shape[1:] == (64, 64, 3)
    labels = family.record.labels[family.record.index_of(split.train)]
    assert np.bincount(labels).tolist() == [2] * 10


def test_too_few_images_per_class_is_a_clear_error(tiny, tmp_path):
    root = write_fashion_idx(tmp_path / "idx", per_class=6, test_share=4)
    with pytest.raises(InputError, match="class 0 has 4 images, the study needs 7"):
        rs.fashion_family(tmp_path / "work", root)


def _rows(maps, seconds):
    return {
        f"c{k}": {"map": m, "pretrain_seconds": 0.0, "hashing_seconds": seconds}
        for k, m in enumerate(maps)
    }


def test_the_rule_takes_the_best_unless_a_cheaper_one_is_within_the_margin():
    table = {
        "R0": _rows([0.10, 0.12], 10),
        "R1": _rows([0.40, 0.42], 50),
        "R2": _rows([0.405, 0.43], 500),  # best by 0.0075: within TIE, ten times dearer
        "R3": _rows([0.20, 0.20], 5),
    }
    assert rs.score(table["R2"]) - rs.score(table["R1"]) < rs.TIE
    assert rs.choose(table, list(table)) == "R1"
    table["R2"] = _rows([0.45, 0.45], 500)  # now clearly the best
    assert rs.choose(table, list(table)) == "R2"


def test_recipe_names_follow_the_declared_order():
    assert rs.recipe_name(()) == "R0"
    assert rs.recipe_name(rs.LEVER_NAMES[:3]) == "R3"
    assert rs.recipe_name(("batch_norm", "augment")) == "batch_norm+augment"


@pytest.mark.slow
def test_one_cell_trains_evaluates_and_is_reused(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(rs, "BITS", 12)
    family = rs.digits_family(tmp_path / "work")
    assert len(family.record) == 60
    first = rs.run_cell(family, 2, ("batch_norm", "gap"), tmp_path / "work", "unused")
    assert 0.0 < first["map"] <= 1.0 and first["chance"] == pytest.approx(0.1)
    assert first["queries"] == 20 and first["gallery"] == 40
    stored = json.loads(
        (tmp_path / "work/backbones" / "own_digits_2_s64_bn_gap_none.json").read_text()
    )
    assert stored["key"]["parts"]["batch_norm"] and stored["report"]["images"] == 20
    again = rs.run_cell(family, 2, ("batch_norm", "gap"), tmp_path / "work", "unused")
    assert again == first  # finished: read back, not trained again
