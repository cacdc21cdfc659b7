"""``rol-hashing fashion --quick`` end to end on a tiny IDX fixture: split with the
segmentation stream's images set aside, scenes, devkits, backbone, streams, SSDH, ROL,
LSH and ITQ, results and figures; a second call reuses every finished stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import write_fashion_idx

from rol_hashing.cli.main import main
from rol_hashing.data.fashion import load_fashion_mnist
from rol_hashing.data.fashion_sets import load_fashion_scenes
from rol_hashing.data.splits import load_split
from rol_hashing.models.weights import read_provenance


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fashion")
    root = write_fashion_idx(tmp / "idx")
    argv = ["fashion", "--quick", "--data-root", str(root), "--out", str(tmp / "results")]
    argv += ["--work-dir", str(tmp / "work")]
    assert main(argv) == 0
    return tmp, root, argv


@pytest.mark.slow
def test_quick_benchmark_writes_every_row(fashion_run):
    tmp, root, _ = fashion_run
    summary = json.loads((tmp / "results" / "results.json").read_text())
    assert set(summary["variants"]) == {"fashion_mnist", "fashion_scenes"}
    for variant in summary["variants"].values():
        assert set(variant["map"]) == {"ssdh", "rol", "lsh", "itq"}
        for row in variant["map"].values():
            assert 0.0 <= row["12"]["mean"] <= 1.0
        assert variant["num_queries"] == 10  # 1 per class
        # gallery: every image neither a query nor set aside (80 - 10 - 20)
        assert variant["num_gallery"] == 50
    text = (tmp / "results" / "results.md").read_text()
    assert "LSH (backbone features)" in text and "ROL - SSDH" in text
    for name in ("map_vs_bits", "rol_masks", "retrieval_top10"):
        for variant in ("fashion_mnist", "fashion_scenes"):
            assert (tmp / "results" / f"{name}_{variant}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_quick_benchmark_protocol_and_reuse(fashion_run, capsys):
    tmp, root, argv = fashion_run
    work = tmp / "work" / "seed0"
    clean = load_fashion_mnist(root)
    split = load_split(work / "split.json", clean)
    parts = {p: set(getattr(split, p)) for p in ("train", "query", "gallery", "set_aside")}
    assert len(parts["set_aside"]) == 20 and len(parts["query"]) == 10
    assert not parts["set_aside"] & (parts["train"] | parts["query"] | parts["gallery"])
    assert parts["train"] <= parts["gallery"] and not parts["query"] & parts["gallery"]
    # the backbone saw the training items only
    backbone = json.loads((work / "backbone" / "vgg16_pretrained.json").read_text())
    assert backbone["report"]["images"] == len(parts["train"])
    seen = read_provenance(work / "backbone" / "vgg16_pretrained.h5")
    assert set(seen["ids"]) == parts["train"] and seen["dataset"] == "fashion_mnist"
    # the segmentation devkit holds exactly the set-aside images
    listed = work / "fashion_mnist_voc/VOCdevkit/VOC2012/ImageSets/Segmentation/trainval.txt"
    assert sorted(listed.read_text().split()) == sorted(
        i.replace("/", "_") for i in parts["set_aside"]
    )
    scenes = load_fashion_scenes(work / "fashion_scenes")
    assert scenes.images.shape == (80, 32, 32, 3) and scenes.ids == clean.ids
    np.testing.assert_array_equal(scenes.labels, clean.labels)
    assert set(np.unique(scenes.object_masks)) <= {0, 1, 255}
    first = json.loads((work / "seed_results.json").read_text())["seconds"]
    capsys.readouterr()
    assert main(argv) == 0  # everything finished is reused
    out = capsys.readouterr().out
    assert out.count(", reused)") == 4  # ssdh and rol, both variants
    # a reused stage keeps the time of the call that made it, not its reuse time
    again = json.loads((work / "seed_results.json").read_text())["seconds"]
    for stage in ("pretrain", "scenes", "fashion_scenes segmentation", "fashion_mnist ssdh-12b"):
        assert again[stage] == first[stage], stage
    assert out.count("(reused; made in") >= 7


@pytest.mark.slow
def test_ablation_on_scenes_builds_on_the_benchmark(fashion_run):
    """``ablate --dataset fashion_scenes`` starts from the benchmark's folders: its SSDH
    and ROL runs are the grid's, and the oracle source reads the scenes' object masks."""
    from rol_hashing.experiments.ablation import (
        QUICK,
        ablation_grid,
        prepare_seed,
        run_folder,
        run_variant,
    )

    tmp, root, _ = fashion_run
    work = tmp / "work" / "seed0"
    config = prepare_seed(work, QUICK, 0, "fashion_scenes", str(root), quick=True)
    assert config.dataset == "fashion_scenes" and config.profile == "cpu_quick"
    grid = {v.name: v for v in ablation_grid(bits=(12,))}
    runs = work / "runs"
    assert run_folder(runs, grid["ssdh"], 12, config.dataset) == runs / "fashion_scenes-ssdh-12b"
    seg_models = {config.model.input_size: Path(config.hashing.segmentation_model)}
    reused = run_variant(config, grid["ssdh"], 12, seg_models)
    assert reused["reused"]  # the benchmark's own run
    oracle = run_variant(config, grid["rol-oracle-soft"], 12, seg_models)
    assert not oracle["reused"] and 0.0 <= oracle["map"] <= 1.0
    assert Path(oracle["run"]) == runs / "ablation" / "rol-oracle-soft-12b"


@pytest.mark.slow
def test_a_scenes_ablation_goes_on_run_by_run_in_a_later_session(fashion_run, tmp_path, capsys):
    """``--keep``: each finished run and the seed's backbone and stream are kept, so a
    session that starts with an empty work folder and an unfinished group trains only
    the group's missing runs, on the kept backbone and stream."""
    import shutil

    from rol_hashing.experiments.ablation import run_ablation
    from rol_hashing.freshness import file_digest

    tmp, root, _ = fashion_run
    keep, work, aside = tmp_path / "kept", tmp / "work", tmp_path / "lost"
    args = {"quick": True, "dataset": "fashion_scenes", "data_root": str(root)}
    # 4 runs of the sources grid: the benchmark's SSDH and ROL, the oracle run of the test
    # above and one normalized run (the ones and shuffled sources: test_ablation.py)
    variants = ("rol-oracle-soft", "rol-predicted-normalized")
    args |= {"grid_kind": "sources", "seeds": (0,), "keep_dir": keep, "variants": variants}
    first = run_ablation(tmp_path / "out", work, **args)  # on the benchmark's seed
    maps = {r["variant"]: r["map"] for r in first["rows"]}
    runs = sorted(p.stem for p in (keep / "seed0_12b").glob("*.json"))
    assert runs == sorted(maps) == sorted(("ssdh", "rol-predicted-soft", *variants))
    inputs = keep / "seed0" / "inputs"
    backbone = inputs / "backbone" / "vgg16_pretrained.h5"
    stream = inputs / "runs" / "fashion_scenes-seg" / "model.keras"
    assert file_digest(backbone) == file_digest(work / "seed0/backbone/vgg16_pretrained.h5")
    # a later session: the group is not finished (one run lost), the work folder is gone
    (keep / "seed0_12b.json").unlink()
    (keep / "seed0_12b" / "rol-predicted-normalized.json").unlink()
    work.rename(aside)
    try:
        capsys.readouterr()
        later = run_ablation(tmp_path / "out2", work, **args)
        shown = capsys.readouterr().out
        new_runs = work / "seed0" / "runs"
        assert "copied back" in shown
        assert shown.count("(kept, ") == 3, shown
        assert not (new_runs / "fashion_scenes-ssdh-12b").exists()  # kept, not trained
        assert (new_runs / "ablation" / "rol-predicted-normalized-12b" / "model.keras").is_file()
        assert file_digest(new_runs / "fashion_scenes-seg" / "model.keras") == file_digest(stream)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        aside.rename(work)  # the module's fixture, as it was
    assert {r["variant"]: r["map"] for r in later["rows"]} == maps  # seeded: the same run
    assert later["mask_quality"] == first["mask_quality"]
    assert (keep / "seed0_12b.json").is_file()


@pytest.mark.slow
def test_the_benchmark_goes_on_from_its_keep_and_the_ablations(fashion_run, tmp_path, capsys):
    """``--keep``: every finished run, the LSH and ITQ rows and the seed's backbone and
    streams are kept, so a later session with an empty work folder trains nothing kept;
    ``--ablation-keep``: the scenes ablation's kept SSDH and ROL runs are taken."""
    import shutil

    from rol_hashing.experiments.ablation import run_ablation
    from rol_hashing.freshness import file_digest

    tmp, root, _ = fashion_run
    keep, ablation_keep = tmp_path / "kept", tmp_path / "ablation_kept"
    work, aside = tmp / "work", tmp_path / "lost"
    base = ["fashion", "--quick", "--data-root", str(root), "--work-dir", str(work)]
    # the scenes ablation keeps its SSDH and ROL (the benchmark's runs, reused)
    run_ablation(
        tmp_path / "ablation",
        work,
        seeds=(0,),
        quick=True,
        dataset="fashion_scenes",
        data_root=str(root),
        grid_kind="sources",
        keep_dir=ablation_keep,
        variants=(),
    )
    assert main([*base, "--out", str(tmp_path / "out"), "--keep", str(keep)]) == 0
    first = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = sorted(p.relative_to(keep).as_posix() for p in keep.glob("seed0/*/*.json"))
    assert rows == [
        f"seed0/{v}/{name}.json"
        for v in ("fashion_mnist", "fashion_scenes")
        for name in ("classical", "rol-12b", "ssdh-12b")
    ]
    streams = {v: keep / f"seed0/inputs/runs/{v}-seg/model.keras" for v in first["variants"]}
    assert all(s.is_file() for s in streams.values())
    assert (keep / "seed0" / "inputs" / "backbone" / "vgg16_pretrained.h5").is_file()
    # a later session: the work folder is gone, and the scenes ROL row was never kept by
    # the benchmark (the ablation's is taken)
    (keep / "seed0" / "fashion_scenes" / "rol-12b.json").unlink()
    work.rename(aside)
    try:
        capsys.readouterr()
        argv = [*base, "--out", str(tmp_path / "out2"), "--keep", str(keep)]
        assert main([*argv, "--ablation-keep", str(ablation_keep)]) == 0
        shown = capsys.readouterr().out
        assert "copied back" in shown
        assert shown.count(", kept, ") == 4, shown
        runs = work / "seed0" / "runs"
        assert not list(runs.glob("*-12b"))  # nothing trained
        for variant, stream in streams.items():  # the kept streams, reused
            assert file_digest(runs / f"{variant}-seg" / "model.keras") == file_digest(stream)
        assert "retrieval_top10_fashion_scenes.png are not made" in shown
    finally:
        shutil.rmtree(work, ignore_errors=True)
        aside.rename(work)  # the module's fixture, as it was
    later = json.loads((tmp_path / "out2" / "results.json").read_text())
    for variant, v in first["variants"].items():
        assert later["variants"][variant]["map"] == v["map"]
    accuracy = later["variants"]["fashion_scenes"]["query_accuracy"]
    assert accuracy["rol"]["12"] is None and accuracy["ssdh"]["12"] is not None
    assert later["variants"]["fashion_scenes"]["kept_runs"] == 2
    assert (
        "a run kept by the ablation has no query accuracy"
        in (tmp_path / "out2" / "results.md").read_text()
    )
    assert (keep / "seed0" / "fashion_scenes" / "rol-12b.json").is_file()  # kept again
    capsys.readouterr()
    nowhere = tmp_path / "nowhere"
    assert main([*base, "--ablation-keep", str(nowhere), "--out", str(tmp_path / "o3")]) != 0
    assert f"{nowhere}: no such folder" in capsys.readouterr().err
