"""evaluate / index / search / table2 on tiny trained runs, and their bad-input errors.

Tests on trained runs are marked slow: the session fixture ``tiny_runs`` (conftest.py)
trains them once, ~15-30 s on two cores; each test then takes a few seconds.
"""

from __future__ import annotations

import csv
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rol_hashing.cli.main import main
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.data.splits import load_split
from rol_hashing.errors import InputError
from rol_hashing.evaluation import mean_average_precision, ranking_metrics
from rol_hashing.evaluation.evaluate import METRICS_JSON, METRICS_MD, evaluate_run
from rol_hashing.experiments.table2 import (
    PAPER_TABLE2,
    Table2Row,
    comparable_paper_map,
    paper_map,
    run_table2,
    write_table2,
)
from rol_hashing.freshness import array_digest
from rol_hashing.io import atomic_savez
from rol_hashing.retrieval import HammingIndex, load_codes
from rol_hashing.retrieval.codes import pack_codes
from rol_hashing.retrieval.encode import GALLERY_CODES, QUERY_CODES
from rol_hashing.retrieval.gallery_index import (
    ITEMS_FORMAT,
    ITEMS_FORMAT_VERSION,
    build_index,
    load_gallery_index,
)
from rol_hashing.retrieval.index import INDEX_FORMAT
from rol_hashing.retrieval.search import search_image
from rol_hashing.training.layout import INDEX_FILE, ITEMS_FILE

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(tiny_runs):
    return get_dataset_spec("generated").load(tiny_runs["data_root"])


def _query_image(tiny_runs, run: Path, position: int = 0) -> tuple[str, Path]:
    """(id, path) of one of the run's query images."""
    record = _record(tiny_runs)
    split = load_split(run / "split.json", record)
    qid = split.query[position]
    return qid, Path(record.paths[record.index_of([qid])[0]])


def _copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def _listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


# ---- evaluate ------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_writes_metrics_consistent_with_map(tiny_runs, tmp_path):
    # A copy without cached codes: other tests (notebooks, search) may encode first.
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    for name in (QUERY_CODES, GALLERY_CODES, METRICS_JSON, METRICS_MD):
        (run / name).unlink(missing_ok=True)
    metrics = evaluate_run(run, verbose=0)
    saved = json.loads((run / METRICS_JSON).read_text())
    assert saved == metrics
    assert (run / METRICS_MD).read_text().startswith(f"# {run.name}")

    query, gallery = load_codes(run / QUERY_CODES, 12), load_codes(run / GALLERY_CODES, 12)
    split = load_split(run / "split.json")
    assert query.ids.tolist() == list(split.query)
    assert gallery.ids.tolist() == list(split.gallery)
    assert metrics["num_queries"] == len(query) == 24
    assert metrics["num_gallery"] == len(gallery) == 216
    assert metrics["top_k"] == 216  # the data set's 1000, capped at the gallery
    assert (metrics["dataset"], metrics["method"], metrics["bits"]) == ("generated", "ssdh", 12)
    expected = mean_average_precision(
        query.codes, query.labels, gallery.codes, gallery.labels, top_k=216
    )
    assert metrics["map_at_k"] == pytest.approx(expected, abs=1e-12)
    for key in ("map_at_k", "map_full", "precision_radius", "recall_radius"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["precision_at"]) == {"1", "10", "100"}
    assert all(0.0 <= v <= 1.0 for v in metrics["precision_at"].values())
    assert metrics["codes"] == "encoded"


@pytest.mark.slow
def test_second_evaluate_reuses_codes(tiny_runs, monkeypatch):
    run = tiny_runs["runs"]["ssdh"]
    first = evaluate_run(run, verbose=0)
    stamps = {name: (run / name).stat().st_mtime_ns for name in (QUERY_CODES, GALLERY_CODES)}

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded again although the cached codes are valid")

    encode_module = importlib.import_module("rol_hashing.retrieval.encode")
    monkeypatch.setattr(encode_module, "encode", no_encoding)
    second = evaluate_run(run, top_k=10, verbose=0)
    assert second["codes"] == "cached" and second["top_k"] == 10
    assert second["map_full"] == first["map_full"]
    assert {n: (run / n).stat().st_mtime_ns for n in stamps} == stamps


@pytest.mark.slow
def test_cli_evaluate_returns_0(tiny_runs, capsys):
    run = tiny_runs["runs"]["rol"]
    assert main(["evaluate", str(run), "--verbose", "0"]) == 0
    assert "wrote" in capsys.readouterr().out
    metrics = json.loads((run / METRICS_JSON).read_text())
    assert metrics["method"] == "rol" and 0.0 <= metrics["map_at_k"] <= 1.0


# ---- index and search ----------------------------------------------------------------


def _parse_table(out: str) -> list[list[str]]:
    lines = out.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["rank"])
    return [line.split() for line in lines[start + 1 :] if line.split()[0].isdigit()]


@pytest.mark.slow
def test_index_and_search_print_the_index_ranking_and_write_a_png(tiny_runs, tmp_path, capsys):
    run = tiny_runs["runs"]["rol"]
    assert main(["index", str(run), "--verbose", "0"]) == 0
    assert (run / INDEX_FILE).is_file()
    capsys.readouterr()

    qid, image = _query_image(tiny_runs, run)
    out_png = tmp_path / "strip.png"
    assert main(["search", str(run), "--image", str(image), "--out", str(out_png)]) == 0
    rows = _parse_table(capsys.readouterr().out)
    assert out_png.read_bytes()[:8] == PNG_MAGIC

    query, gallery = load_codes(run / QUERY_CODES), load_codes(run / GALLERY_CODES)
    q = query.ids.tolist().index(qid)
    index = HammingIndex(12)
    index.add(gallery.codes)
    distances, positions = index.search(query.codes[q : q + 1], 10)
    assert [int(r[0]) for r in rows] == list(range(1, 11))
    assert [r[1] for r in rows] == gallery.ids[positions[0]].tolist()
    assert [int(r[2]) for r in rows] == distances[0].tolist()
    relevant = gallery.labels[positions[0]] == query.labels[q]
    assert [r[3] for r in rows] == ["yes" if v else "no" for v in relevant]
    record = _record(tiny_runs)
    paths = [str(record.paths[i]) for i in record.index_of(gallery.ids[positions[0]].tolist())]
    assert [r[4] for r in rows] == paths

    # the default strip goes into the run folder
    assert main(["search", str(run), "--image", str(image), "--top", "3"]) == 0
    assert (run / f"search_{image.stem}.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@pytest.mark.slow
def test_the_strip_shows_at_most_50_results_and_the_table_all(tiny_runs, tmp_path, capsys):
    from PIL import Image

    run = tiny_runs["runs"]["ssdh"]
    _, image = _query_image(tiny_runs, run)
    sizes = {}
    for k in (50, 60):
        out_png = tmp_path / f"strip{k}.png"
        assert (
            main(
                [
                    "search",
                    str(run),
                    "--image",
                    str(image),
                    "--top-k",
                    str(k),
                    "--out",
                    str(out_png),
                ]
            )
            == 0
        )
        assert len(_parse_table(capsys.readouterr().out)) == k
        with Image.open(out_png) as png:
            sizes[k] = png.size
    assert sizes[60] == sizes[50]  # 50 thumbnails and the query, however many results


def test_search_outside_image_with_label(tiny_runs, tmp_path):
    run = tiny_runs["runs"]["rol"]
    _, image = _query_image(tiny_runs, run, position=1)
    outside = Path(shutil.copy(image, tmp_path / "outside.jpg"))
    assert {r.relevant for r in search_image(run, outside, top=5)} == {None}
    name = _record(tiny_runs).class_names[0]
    labelled = search_image(run, outside, top=5, label=name, out_png=tmp_path / "s.png")
    assert all(r.relevant in (True, False) for r in labelled)
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(InputError, match="unknown class 'nope'"):
        search_image(run, outside, top=5, label="nope")


# ---- table2 --------------------------------------------------------------------------


@pytest.mark.slow
def test_table2_on_tiny_runs(tiny_runs, tmp_path):
    result = run_table2(
        REPO / "experiments" / "generated.yaml",
        "cpu",
        bits=(12,),
        overrides=tiny_runs["overrides"],
        results_dir=tmp_path,
        train=False,
        verbose=0,
    )
    stem = tmp_path / "table2_generated_cpu"
    assert (result.md, result.csv, result.png) == tuple(
        Path(f"{stem}.{e}") for e in ("md", "csv", "png")
    )
    assert result.png.read_bytes()[:8] == PNG_MAGIC
    with open(result.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["bits"], r["method"]) for r in rows] == [("12", "ssdh"), ("12", "rol")]
    for row in rows:
        metrics = json.loads((Path(row["run"]) / METRICS_JSON).read_text())
        assert float(row["map_ours_pct"]) == pytest.approx(100 * metrics["map_at_k"], abs=0.006)
        assert row["map_paper_pct"] == "" and row["delta_pct"] == ""
    md = result.md.read_text()
    assert "12 bits: ROL" in md and "the paper has no number" in md
    assert "MAP@216" in md


@pytest.mark.slow
def test_table2_without_training_names_the_missing_run(tiny_runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="train-hash .*--method ssdh --bits 24"):
        run_table2(
            REPO / "experiments" / "generated.yaml",
            "cpu",
            bits=(24,),
            overrides=tiny_runs["overrides"],
            results_dir=tmp_path,
            train=False,
            verbose=0,
        )
    assert not any(tmp_path.iterdir())


def test_paper_table2_is_copied_exactly():
    assert paper_map("cifar10", "ssdh", 12) == 40.25
    assert paper_map("cifar10", "rol", 12) == 51.95
    assert paper_map("awa2", "ssdh", 48) == 83.91
    assert paper_map("voc2012", "rol", 24) == 64.36
    assert paper_map("folders", "rol", 48) == 72.13
    assert paper_map("generated", "rol", 48) is None
    assert all(set(v) == {12, 24, 32, 48} for t in PAPER_TABLE2.values() for v in t.values())
    paper_txt = Path("/work/shared/paper.txt")
    if paper_txt.is_file():  # every number appears in the paper's Table 2
        text = paper_txt.read_text(encoding="utf-8")
        table = text[text.index("Table 2.") : text.index("Indicative retrieval results")]
        for methods in PAPER_TABLE2.values():
            for values in methods.values():
                for value in values.values():
                    assert f"{value:.2f}%" in table


def test_table2_files_hold_the_paper_column(tmp_path):
    rows = [
        Table2Row(12, "ssdh", 1000, 50.0, paper_map("awa2", "ssdh", 12), tmp_path / "a"),
        Table2Row(12, "rol", 1000, 55.5, paper_map("awa2", "rol", 12), tmp_path / "b"),
        Table2Row(24, "ssdh", 1000, 70.0, paper_map("awa2", "ssdh", 24), tmp_path / "c"),
        Table2Row(24, "rol", 1000, 69.0, paper_map("awa2", "rol", 24), tmp_path / "d"),
    ]
    result = write_table2(rows, "awa2", "paper", tmp_path)
    assert result.csv.name == "table2_awa2.csv"
    with open(result.csv, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["map_paper_pct"] for r in table] == ["57.16", "60.80", "73.83", "77.30"]
    assert table[0]["delta_pct"] == "-7.16"
    md = result.md.read_text()
    assert "12 bits: ROL beat SSDH here by 5.50 points; in the paper ROL beat SSDH" in md
    assert "24 bits: ROL did not beat SSDH here (SSDH ahead by 1.00 points)" in md


def test_table2_on_own_folders_does_not_show_the_papers_private_set(tmp_path):
    rows = [
        Table2Row(12, m, 1000, 50.0, comparable_paper_map("folders", m, 12), tmp_path / m)
        for m in ("ssdh", "rol")
    ]
    assert paper_map("folders", "rol", 12) == 60.16  # kept for reference, not compared
    result = write_table2(rows, "folders", "paper", tmp_path)
    with open(result.csv, newline="") as f:
        assert [r["map_paper_pct"] for r in csv.DictReader(f)] == ["", ""]
    md = result.md.read_text()
    assert "60.16" not in md and "private" in md and "not shown" in md


# ---- bad input -------------------------------------------------------------------------


@pytest.mark.slow
def test_search_with_a_corrupt_image_names_it_and_writes_nothing(tiny_runs, tmp_path, capsys):
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    before = _listing(run)
    assert main(["search", str(run), "--image", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1
    assert _listing(run) == before


@pytest.mark.slow
def test_run_without_model_names_the_command(tiny_runs, tmp_path, capsys):
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    (run / "model.keras").unlink()
    _, image = _query_image(tiny_runs, tiny_runs["runs"]["ssdh"])
    before = _listing(run)
    for argv in (
        ["evaluate", str(run)],
        ["index", str(run)],
        ["search", str(run), "--image", str(image)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "model.keras not found" in err
        assert "rol-hashing train-hash --config experiments/generated.yaml" in err
        assert "--method ssdh --bits 12" in err
    assert _listing(run) == before
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["version", "bits"])
def test_index_of_another_version_or_length_is_rebuilt(tiny_runs, tmp_path, capsys, problem):
    """The index is derived: a file of another version or code length is made again, the
    line saying why (issue 22: one freshness rule); ``load_gallery_index`` refuses it."""
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    _, image = _query_image(tiny_runs, tiny_runs["runs"]["ssdh"])
    assert main(["index", str(run), "--verbose", "0"]) == 0
    if problem == "version":
        codes = np.zeros((3, 12), bool)
        atomic_savez(
            run / INDEX_FILE,
            format=np.array(INDEX_FORMAT),
            format_version=np.array(99),
            bits=np.array(12),
            codes=pack_codes(codes),
        )
        expected = "format version 1, file has version 99"
    else:
        other = HammingIndex(24)
        other.add(np.zeros((3, 24), bool))
        other.save(run / INDEX_FILE)
        expected = "expected an index of 12-bit codes, file holds 24-bit codes"
    with pytest.raises(InputError, match=expected):
        load_gallery_index(run, bits=12)
    capsys.readouterr()
    assert main(["search", str(run), "--image", str(image)]) == 0
    out = capsys.readouterr().out
    assert "rebuilt: " in out and expected in out
    assert len(load_gallery_index(run, bits=12)) == 216


@pytest.mark.slow
def test_query_code_of_the_wrong_length(tiny_runs):
    run = tiny_runs["runs"]["ssdh"]
    assert main(["index", str(run), "--verbose", "0"]) == 0
    gallery = load_gallery_index(run)
    assert gallery.bits == 12
    with pytest.raises(InputError, match="query code has 24 bits but the index holds 12-bit"):
        gallery.search(np.zeros(24, bool), 5)
    with pytest.raises(InputError, match="12-bit"):
        gallery.search(np.zeros((1, 3), np.uint8), 5)  # packed, 3 bytes instead of 2
    with pytest.raises(InputError, match="query_codes"):
        mean_average_precision(
            np.zeros((2, 24), bool), np.zeros(2, int), np.zeros((5, 12), bool), np.zeros(5, int)
        )


@pytest.mark.slow
def test_top_larger_than_the_gallery(tiny_runs, tmp_path, capsys):
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    _, image = _query_image(tiny_runs, run)
    before = _listing(run)
    assert main(["search", str(run), "--image", str(image), "--top", "217"]) == 2
    assert "top=217 is larger than the gallery (216 images)" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--top-k", "5000"]) == 2
    assert "top_k=5000 is larger than the gallery (216 images)" in capsys.readouterr().err
    assert _listing(run) == before
    build_index(run, verbose=0)
    with pytest.raises(InputError, match="larger than the gallery"):
        load_gallery_index(run).search(np.zeros(12, bool), 217)


@pytest.mark.slow
def test_empty_gallery(tiny_runs, tmp_path, capsys):
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    for name in (QUERY_CODES, GALLERY_CODES, METRICS_JSON, METRICS_MD, INDEX_FILE):
        (run / name).unlink(missing_ok=True)
    split = json.loads((run / "split.json").read_text())
    split["gallery"] = []
    (run / "split.json").write_text(json.dumps(split))
    before = _listing(run)
    for argv in (["evaluate", str(run)], ["index", str(run)]):
        assert main(argv) == 2  # refused by the split check, naming the file
        assert "split.json: 'gallery' is empty" in capsys.readouterr().err
    assert _listing(run) == before
    with pytest.raises(InputError, match="the gallery is empty"):
        mean_average_precision(
            np.zeros((2, 12), bool), np.zeros(2, int), np.zeros((0, 12), bool), np.zeros(0, int)
        )


@pytest.mark.slow
def test_labels_of_the_wrong_shape(tiny_runs):
    run = tiny_runs["runs"]["ssdh"]
    evaluate_run(run, verbose=0)
    q, g = load_codes(run / QUERY_CODES), load_codes(run / GALLERY_CODES)
    with pytest.raises(InputError, match="gallery_labels has 215 rows, expected 216"):
        ranking_metrics(q.codes, q.labels, g.codes, g.labels[:-1], top_k=10)
    with pytest.raises(InputError, match="query_labels are multi-hot"):
        ranking_metrics(q.codes, np.eye(4, dtype=np.uint8)[q.labels], g.codes, g.labels, 10)
    with pytest.raises(InputError, match="must be class ids"):
        ranking_metrics(q.codes, q.labels[:, None, None], g.codes, g.labels, top_k=10)


@pytest.mark.slow
def test_cached_codes_of_another_model_are_encoded_again(tiny_runs, tmp_path, capsys):
    """Codes copied from another run of the same bits and ids are not trusted: the cache
    is bound to the SHA-256 of the model that wrote it (issue 15)."""
    run = _copy_run(tiny_runs["runs"]["ssdh"], tmp_path)
    other = _copy_run(tiny_runs["runs"]["rol"], tmp_path)
    truth = evaluate_run(run, verbose=0)
    evaluate_run(other, verbose=0)
    for name in (QUERY_CODES, GALLERY_CODES):
        shutil.copy2(other / name, run / name)
    capsys.readouterr()
    metrics = evaluate_run(run, verbose=0)
    assert metrics["codes"] == "encoded"
    assert "made from another model" in capsys.readouterr().out
    assert metrics["map_at_k"] == truth["map_at_k"]
    assert evaluate_run(run, verbose=0)["codes"] == "cached"  # re-written for this model


@pytest.mark.slow
def test_cached_codes_see_new_image_bytes_and_tampered_labels(tmp_path, capsys):
    """Issue 22 cases 1 and 7: after every image of the data set is replaced, evaluate
    encodes again (it said "Codes cached"); labels edited inside a cache file are not
    trusted either."""
    import zipfile

    from rol_hashing.data.generated import make_generated_dataset
    from rol_hashing.training.config import load_config
    from rol_hashing.training.hashing import train_hashing

    data = tmp_path / "data"
    make_generated_dataset(data, num_images=80, num_seg_images=4, image_size=32, num_classes=4)
    config = load_config(
        "generated",
        "cpu",
        {
            "data_root": str(data),
            "runs_dir": str(tmp_path / "runs"),
            "model": {"input_size": 32, "width": 0.125, "backbone_weights": "none"},
            "hashing": {"epochs": 1},
        },
    )
    run = train_hashing(config, "ssdh", 12, verbose=0).path
    assert evaluate_run(run, verbose=0)["codes"] == "encoded"
    assert evaluate_run(run, verbose=0)["codes"] == "cached"
    make_generated_dataset(  # the same ids, other pixels
        data, num_images=80, num_seg_images=4, image_size=32, num_classes=4, seed=5, force=True
    )
    capsys.readouterr()
    assert evaluate_run(run, verbose=0)["codes"] == "encoded"
    assert "made from another images" in capsys.readouterr().out
    # labels shifted inside the gallery cache, its key left as it was
    path = run / GALLERY_CODES
    with np.load(path, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    members["labels"] = np.roll(members["labels"], 1)
    np.savez(path, **members)
    assert zipfile.is_zipfile(path)
    capsys.readouterr()
    assert evaluate_run(run, verbose=0)["codes"] == "encoded"
    assert "its labels are not the data set's" in capsys.readouterr().out


# ---- bad input without a trained run (fast) ----------------------------------------------


def _write_index(folder: Path, codes: np.ndarray, ids: list[str], labels: np.ndarray) -> None:
    index = HammingIndex(codes.shape[1])
    index.add(codes)
    index.save(folder / INDEX_FILE)
    atomic_savez(
        folder / ITEMS_FILE,
        format=np.array(ITEMS_FORMAT),
        format_version=np.array(ITEMS_FORMAT_VERSION),
        bits=np.array(codes.shape[1]),
        ids=np.asarray(ids),
        labels=labels,
        key=np.array(json.dumps({"kind": "index", "code": "test", "parts": {}})),
        codes_sha256=np.array(array_digest(index.words)),
    )


def test_gallery_index_checks_its_files_and_queries(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.random((6, 12)) > 0.5
    _write_index(tmp_path, codes, [f"g{i}" for i in range(6)], np.arange(6) % 2)
    gallery = load_gallery_index(tmp_path, bits=12)
    distances, positions = gallery.search(codes[3], 6)
    assert positions[0] == 3 and distances[0] == 0
    assert sorted(positions.tolist()) == list(range(6))
    with pytest.raises(InputError, match="query code has 13 bits"):
        gallery.search(np.zeros(13, bool), 2)
    with pytest.raises(InputError, match="top=7 is larger than the gallery"):
        gallery.search(codes[0], 7)
    with pytest.raises(InputError, match="top must be a positive integer"):
        gallery.search(codes[0], 0)
    with pytest.raises(InputError, match="expected an index of 24-bit codes"):
        load_gallery_index(tmp_path, bits=24)

    _write_index(tmp_path, codes[:0], [], np.zeros(0, int))
    with pytest.raises(InputError, match="is empty"):
        load_gallery_index(tmp_path)

    _write_index(tmp_path, codes, [f"g{i}" for i in range(6)], np.arange(6) % 2)
    atomic_savez(
        tmp_path / ITEMS_FILE,
        format=np.array(ITEMS_FORMAT),
        format_version=np.array(ITEMS_FORMAT_VERSION),
        bits=np.array(12),
        ids=np.asarray(["only", "five", "ids", "for", "six"]),
        labels=np.zeros(5, int),
        key=np.array("{}"),
        codes_sha256=np.array("0"),
    )
    with pytest.raises(InputError, match="does not match"):
        load_gallery_index(tmp_path)
    _write_index(tmp_path, codes, ["g0", "g1", "g0", "g3", "g4", "g5"], np.arange(6) % 2)
    with pytest.raises(InputError, match="the gallery ids repeat"):
        load_gallery_index(tmp_path)
    (tmp_path / ITEMS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="rol-hashing index"):
        load_gallery_index(tmp_path)


def test_commands_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "config.yaml not found" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "missing"), "--image", "x.jpg"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_table2_trains_what_is_missing_then_skips_it(tiny_runs, tmp_path, capsys):
    runs = tmp_path / "runs"
    overrides = {
        **tiny_runs["overrides"],
        "runs_dir": str(runs),
        "hashing": {
            **tiny_runs["overrides"]["hashing"],
            "segmentation_model": str(runs / "generated-seg" / "model.keras"),
        },
    }
    kwargs = dict(bits=(12,), methods=("rol",), overrides=overrides, results_dir=tmp_path)
    config = REPO / "experiments" / "generated.yaml"
    first = run_table2(config, "cpu", verbose=0, **kwargs)
    model = runs / "generated-rol-12b" / "model.keras"
    assert (runs / "generated-seg" / "model.keras").is_file() and model.is_file()
    stamp = model.stat().st_mtime_ns
    capsys.readouterr()
    second = run_table2(config, "cpu", verbose=1, **kwargs)
    assert "metrics.json is up to date" in capsys.readouterr().out
    assert model.stat().st_mtime_ns == stamp
    assert second.rows[0].map_ours == first.rows[0].map_ours
    assert "only one method evaluated here" in second.md.read_text()
