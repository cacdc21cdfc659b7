"""``fashion_keep``: a kept run's key names what the run is made of (the protocol, the
resolved profile, the seed, the bytes of its inputs), not where the session put it."""

from __future__ import annotations

from pathlib import Path

from rol_hashing.experiments import fashion_keep as fk
from rol_hashing.experiments.fashion import QUICK, variant_config
from rol_hashing.freshness import make_key


def _inputs(work: Path, variant: str, backbone: bytes = b"backbone") -> None:
    """Stand-in bytes for the split, backbone and stream a run's key digests."""
    (work / "backbone").mkdir(parents=True)
    (work / "backbone" / "vgg16_pretrained.h5").write_bytes(backbone)
    (work / f"split_{variant}.json").write_text("{}")
    stream = work / "runs" / f"{variant}-seg"
    stream.mkdir(parents=True)
    (stream / "model.keras").write_bytes(b"stream")


def test_a_run_key_is_the_same_in_another_work_folder(tmp_path):
    keys = []
    for name in ("one", "two"):
        work = tmp_path / name / "seed0"
        _inputs(work, "fashion_scenes")
        config = variant_config("fashion_scenes", work, tmp_path / "data", QUICK, 0)
        keys.append(fk.run_key(config, QUICK, "rol", 12, 0))
    assert keys[0] is not None and keys[0] == keys[1]


def test_a_run_key_changes_with_the_inputs_bytes_the_method_and_the_seed(tmp_path):
    work = tmp_path / "a" / "seed0"
    _inputs(work, "fashion_mnist")
    config = variant_config("fashion_mnist", work, tmp_path / "data", QUICK, 0)
    key = fk.run_key(config, QUICK, "ssdh", 12, 0)
    other = tmp_path / "b" / "seed0"
    _inputs(other, "fashion_mnist", backbone=b"another backbone")
    changed = variant_config("fashion_mnist", other, tmp_path / "data", QUICK, 0)
    assert fk.run_key(changed, QUICK, "ssdh", 12, 0) != key
    assert fk.run_key(config, QUICK, "rol", 12, 0) != key
    assert fk.run_key(config, QUICK, "ssdh", 48, 0) != key
    assert fk.classical_key(config, QUICK, (12,), 0) != fk.classical_key(changed, QUICK, (12,), 0)


def test_no_key_before_the_inputs_are_there(tmp_path):
    config = variant_config("fashion_mnist", tmp_path / "seed0", tmp_path / "data", QUICK, 0)
    assert fk.run_key(config, QUICK, "ssdh", 12, 0) is None
    assert fk.classical_key(config, QUICK, (12,), 0) is None


def test_a_kept_row_is_read_back_only_under_its_key(tmp_path):
    path = tmp_path / "kept" / "seed0" / "fashion_mnist" / "ssdh-12b.json"
    key = make_key("fashion_run", a=1)
    fk.write(path, key, {"row": {"map": 0.5}, "machine": "m"})
    assert fk.read(path, key, "kept run")["row"] == {"map": 0.5}
    assert fk.read(path, make_key("fashion_run", a=2), "kept run") is None
    assert fk.read(path, None, "kept run") is None
    fk.write(tmp_path / "none.json", None, {"row": {}})  # an unknown key keeps nothing
    assert not (tmp_path / "none.json").exists()


def test_a_generated_run_without_split_file_is_keyed_by_its_data_sets_split(tmp_path):
    """The shapes ablation's runs take the generated set's own split file: their kept
    key digests it (else no run of an unfinished group would be kept)."""
    from rol_hashing.experiments.demo import DemoSizes, demo_config
    from rol_hashing.experiments.kept_inputs import input_digests, split_source

    data, runs = tmp_path / "data", tmp_path / "runs"
    backbone = tmp_path / "backbone" / "vgg16_pretrained.h5"
    config = demo_config(data, runs, backbone, DemoSizes(), 0)
    backbone.parent.mkdir(parents=True)
    backbone.write_bytes(b"backbone")
    stream = Path(config.hashing.segmentation_model)
    stream.parent.mkdir(parents=True)
    stream.write_bytes(b"stream")
    (data / "classes").mkdir(parents=True)
    assert config.split_file is None and input_digests(config) is None  # no split yet
    split = data / "classes" / "split.json"
    split.write_text('{"train": ["a/1.png"]}')
    assert split_source(config) == split
    first = input_digests(config)
    assert first is not None
    split.write_text('{"train": ["a/2.png"]}')
    assert input_digests(config)["split"] != first["split"]
