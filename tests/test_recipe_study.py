"""The recipe study's cells and rule (benchmarks/recipe_study.py, docs/recipe.md), at tiny
sizes: t10k items only, disjoint parts, the choice with its tie-break, one real cell."""

import dataclasses
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
    cells = tmp_path / "kept"
    first = rs.run_cell(family, 2, ("batch_norm", "gap"), tmp_path / "work", "unused", cells)
    assert (cells / "R2__digits_2.json").is_file()  # the first two levers: R2
    assert 0.0 < first["map"] <= 1.0 and first["chance"] == pytest.approx(0.1)
    assert first["queries"] == 20 and first["gallery"] == 40
    stored = json.loads(
        (tmp_path / "work/backbones" / "own_digits_2_s64_bn_gap_none.json").read_text()
    )
    assert stored["key"]["parts"]["batch_norm"] and stored["report"]["images"] == 20
    again = rs.run_cell(family, 2, ("batch_norm", "gap"), tmp_path / "work", "unused", cells)
    assert again == first  # finished: read back, not trained again
    # another machine draws the same digits again (new files, new mtimes): still fresh
    for path in (tmp_path / "work/data/digits").rglob("*.png"):
        path.write_bytes(path.read_bytes())
    (tmp_path / "work/data/digits/done.json").unlink()
    family = rs.digits_family(tmp_path / "work")
    again = rs.run_cell(family, 2, ("batch_norm", "gap"), tmp_path / "work", "unused", cells)
    assert again == first


def test_content_parts_read_the_bytes_not_the_mtime(tmp_path):
    from PIL import Image

    from rol_hashing.data.folders import load_class_folders

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for k in range(2):
            Image.new("RGB", (8, 8), (40 * k, 9, 9)).save(tmp_path / c / f"{k}.png")
    record = load_class_folders(tmp_path)
    first = rs.content_parts(record, np.arange(4))
    path = tmp_path / "a" / "0.png"
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)  # a new file, same bytes
    assert rs.content_parts(load_class_folders(tmp_path), np.arange(4)) == first
    Image.new("RGB", (8, 8), (200, 9, 9)).save(path)
    assert rs.content_parts(load_class_folders(tmp_path), np.arange(4))["pixels"] != first["pixels"]


def _recorded(cells, names):
    content = {
        "source": "a note",
        "chance": 0.1,
        "recipes": {
            "R0": {"commit": "abc", "map": {n: 0.2 for n in names}, "cost_seconds": 40},
        },
    }
    (cells / rs.RECORDED_FILE).write_text(json.dumps(content))


def test_a_recorded_recipe_stands_for_its_missing_cells_and_says_so(tiny, tmp_path, monkeypatch):
    family = rs.Family("digits", None, {}, None)
    families = {"digits": family}
    cells = tmp_path / "cells"
    cells.mkdir()
    _recorded(cells, ["digits_2"])
    measured = []
    row = {"map": 0.5, "chance": 0.1, "pretrain_seconds": 1.0, "hashing_seconds": 2.0}
    monkeypatch.setattr(rs, "run_cell", lambda *a, **k: measured.append(a[2]) or row)
    where = rs.Where(tmp_path / "work", "unused", cells, tmp_path / "weights")
    table = rs.measure({"R0": (), "R1": ("batch_norm",)}, families, where)
    assert measured == [("batch_norm",)]  # R0 came from the record
    assert table["R0"]["digits_2"]["map"] == 0.2
    assert table["R0"]["digits_2"]["hashing_seconds"] == 40.0  # one cell: the whole cost
    assert "a note (measured by abc)" in table["R0"]["digits_2"]["recorded"]
    text = rs.results_markdown({"table": table, "recipes": {"R1": ["batch_norm"]}})
    assert "| R0 (recorded) |" in text and "Recorded rows" in text
    assert "a note: R0 by abc." in text  # the source once, each recipe with its commit
    # --remeasure, or a kept cell file, wins over the record
    for names in ({"all"}, {"R0"}):
        rs.measure({"R0": ()}, families, rs.Where(tmp_path, "u", cells, tmp_path, frozenset(names)))
    (cells / "R0__digits_2.json").write_text("{}")
    rs.measure({"R0": ()}, families, where)
    assert measured == [("batch_norm",), (), (), ()]


def test_the_committed_record_holds_r0_to_r4_over_the_four_cells():
    table = rs.load_recorded(rs.CELLS_DIR)
    assert list(table) == ["R0", "R1", "R2", "R3", "R4"]
    for rows in table.values():
        assert set(rows) == {f"{f}_{n}" for f in rs.FAMILIES for n in rs.SIZES}
    assert rs.score(table["R4"]) == pytest.approx(0.75325)


def test_r0_is_pinned_to_the_declared_cpu_route(tmp_path, monkeypatch):
    """A later default in the profiles (the chosen recipe) does not change what R0 or
    any cell means: the study sets every key a lever touches itself."""
    import rol_hashing.training.config as config_module

    real = config_module.load_config
    new_defaults = {
        "model": {"batch_norm": True, "pooling": "gap", "input_size": 96},
        "hashing": {"optimizer": "adam", "epochs": 15, "augment": "crop_colour"},
    }

    def later_profile(experiment, profile, overrides):
        merged = {**overrides}
        for part, values in new_defaults.items():
            merged[part] = values | overrides.get(part, {})
        return real(experiment, profile, merged)

    monkeypatch.setattr(config_module, "load_config", later_profile)
    for family, drop in (("fashion_scenes", 4), ("digits", 20)):
        r0 = rs.cell_config(family, tmp_path, (), tmp_path, "none")
        assert {k: getattr(r0.model, k) for k in rs.R0_MODEL} == rs.R0_MODEL
        assert {k: getattr(r0.hashing, k) for k in rs.R0_HASHING} == rs.R0_HASHING
        assert r0.hashing.lr_drop_epoch == drop
        r4 = rs.cell_config(family, tmp_path, rs.LEVER_NAMES[:4], tmp_path, "none")
        assert r4.model.batch_norm and r4.hashing.optimizer == "adam"
        assert r4.hashing.augment == "crop_colour" and r4.model.input_size == 64


def test_leave_one_out_backbones_are_named_by_what_they_lack(tmp_path):
    """``--generic-only --without L`` makes the backbone the leave-one-out of L uses; the
    shipped one (R5's) is ready, the others are not until made; generic itself and
    unknown levers are refused."""
    where = rs.Where(tmp_path / "work", "unused", tmp_path / "cells", rs.GENERIC_DIR)
    r5 = rs.LEVER_NAMES[:5]
    assert rs.generic_ready(r5, where)  # shipped in weights/
    assert rs.generic_ready(rs.LEVER_NAMES[:4], where)  # no generic backbone at all
    names = {}
    for lever in ("batch_norm", "gap", "augment"):
        levers = tuple(x for x in r5 if x != lever)
        names[lever] = rs.generic_name(rs._generic_config(levers, where))
        empty = rs.Where(tmp_path, "unused", tmp_path, tmp_path / "none")
        assert not rs.generic_ready(levers, empty)
    assert names == {
        "batch_norm": "generic_fashion60k_nobn_gap_crop_colour.h5",
        "gap": "generic_fashion60k_s64_bn_flatten_crop_colour.h5",
        "augment": "generic_fashion60k_bn_gap_none.h5",
    }
    for bad in (("generic",), ("colour",), ("input_96",)):
        with pytest.raises(InputError, match="--without"):
            rs.make_generic(where, bad)
    with pytest.raises(InputError, match="--of"):
        rs.make_generic(where, ("gap",), "R4")
    r6_gap = tuple(x for x in rs.LEVER_NAMES if x != "gap")
    assert rs.generic_name(rs._generic_config(r6_gap, where)) == (
        "generic_fashion60k_s96_bn_flatten_crop_colour.h5"
    )


class FakeCells:
    """``run_cell`` over a dict of kept results: MAP 0.1 per lever (``maps`` overrides by
    levers), measuring only when asked to and recording what it measured."""

    def __init__(self, maps=None):
        self.kept: dict = {}
        self.measured: list[tuple[str, ...]] = []
        self.maps = maps or {}

    def __call__(self, family, n, levers, work, root, cells, generic, measure=True, make=True):
        key = (levers, family.name, n)
        if key not in self.kept:
            if not measure:
                return None
            self.measured.append(levers)
            value = self.maps.get(levers, 0.1 * len(levers))
            self.kept[key] = {"map": value, "chance": 0.1, "pretrain_seconds": 1.0,
                              "hashing_seconds": 1.0}  # fmt: skip
        return self.kept[key]


@pytest.fixture
def fake(monkeypatch):
    for name in rs.FAMILIES:
        family = rs.Family(name, None, {}, None)
        monkeypatch.setattr(rs, f"{name.split('_')[0]}_family", lambda *a, f=family: f)
    monkeypatch.setattr(rs, "SIZES", (2,))
    cells = FakeCells()
    monkeypatch.setattr(rs, "run_cell", cells)
    return cells


def _make_backbone(where, levers):
    name = rs.generic_name(rs._generic_config(levers, where))
    (where.generic_dir / name).write_bytes(b"")
    (where.generic_dir / name).with_suffix(".json").write_text("{}")


def test_with_no_make_step_3_measures_what_is_ready_and_names_what_waits(tmp_path, fake):
    """``--no-make``: a recipe whose generic backbone is not made waits (the study stops
    and names the file and its command); once the files are there the same call
    finishes the rule, measuring only what it had not."""
    (tmp_path / "weights").mkdir()
    where = rs.Where(tmp_path, "u", tmp_path / "cells", tmp_path / "weights", make_backbones=False)
    out = rs.study(where)
    assert set(out["waiting"]) == {"R5", "R6"}  # R5's backbone is missing too
    assert "chosen_by_step_2" not in out
    _make_backbone(where, rs.LEVER_NAMES[:5])  # the shipped one
    fake.measured.clear()
    out = rs.study(where)
    assert out["chosen_by_step_2"] == "R6" and "final" not in out
    assert set(out["waiting"]) == {"R6-batch_norm", "R6-gap", "R6-augment"}
    assert out["waiting"]["R6-gap"] == {
        "file": "generic_fashion60k_s96_bn_flatten_crop_colour.h5",
        "command": 'make generic-backbone WITHOUT="gap" OF=R6',
    }
    # R5 and R6 (two cells each), then R6-adam_15 and R6-generic (R6-input_96 is R5)
    assert list(dict.fromkeys(fake.measured)) == [
        rs.LEVER_NAMES[:5],
        rs.LEVER_NAMES,
        ("batch_norm", "gap", "augment", "generic", "input_96"),
        ("batch_norm", "gap", "adam_15", "augment", "input_96"),
    ]
    text = rs.results_markdown(out)
    assert "Waiting for generic backbones" in text and 'WITHOUT="gap" OF=R6' in text
    for lever in ("batch_norm", "gap", "augment"):
        _make_backbone(where, tuple(x for x in rs.LEVER_NAMES if x != lever))
    fake.measured.clear()
    out = rs.study(where)
    assert len(fake.measured) == 6  # three recipes, two cells: nothing measured twice
    assert "waiting" not in out and out["final"] == "R6" and out["dropped"] == []
    assert out["removal_loss"]["gap"] == pytest.approx(0.1)
    assert out["removal_loss"]["input_96"] == pytest.approx(0.1)  # against R5's row


def test_a_single_dropped_lever_makes_the_lean_recipe_that_leave_one_out(tmp_path, fake):
    """Removing augment costs nothing: it is dropped, the lean recipe is R6-augment as
    measured (not a new row), and it is final."""
    no_augment = tuple(x for x in rs.LEVER_NAMES if x != "augment")
    fake.maps[no_augment] = 0.6
    where = rs.Where(tmp_path, "u", tmp_path / "cells", tmp_path / "weights")
    out = rs.study(where)
    assert out["dropped"] == ["augment"] and out["final"] == "R6-augment"
    assert out["final_levers"] == list(no_augment)
    assert len(out["table"]) == 7 + 5  # R0..R6 and five leave-one-outs (one is R5)
    assert "Final recipe: R6-augment" in rs.results_markdown(out)


def test_report_reads_kept_cells_even_without_their_backbone(tmp_path, fake):
    """``--report`` trains nothing, reads a kept leave-one-out whose backbone is not on
    this machine, and says what is not measured; an empty table is reported too."""
    where = rs.Where(tmp_path, "u", tmp_path / "cells", tmp_path / "weights", measure=False)
    empty = rs.study(where)
    assert empty["table"] == {} and "No recipe has all its cells yet" in rs.results_markdown(empty)
    rs.study(rs.Where(tmp_path, "u", tmp_path / "cells", tmp_path / "weights"))  # all kept
    adam_less = ("batch_norm", "gap", "augment", "generic", "input_96")
    fake.kept = {k: v for k, v in fake.kept.items() if k[0] != adam_less}
    fake.measured.clear()
    out = rs.study(where)
    assert fake.measured == []
    assert out["chosen_by_step_2"] == "R6" and "R6-batch_norm" in out["table"]
    assert out["unmeasured"] == ["R6-adam_15"] and out["waiting"] == {}
    assert "Not measured yet: R6-adam_15." in rs.results_markdown(out)
    # as the CLI has it (--report makes no backbone): the missing one is what it waits for
    cli = rs.study(dataclasses.replace(where, make_backbones=False))
    assert list(cli["waiting"]) == ["R6-adam_15"] and cli["unmeasured"] == []
