"""Odd files where data or a query is expected (issue 15): named pipes, folders, symbolic
link loops and dangling links, repeated class names, JSON nested too deeply, bytes that
are not UTF-8, numbers too large, and names with control characters in printed tables.

Every error names the file and what it is; nothing opens a named pipe (each test that
makes one runs under an alarm, so a reader that blocks on it fails instead of hanging).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import data_fixtures as fx
import numpy as np
import pytest

from rol_hashing.cli.main import main
from rol_hashing.data.awa2 import load_awa2
from rol_hashing.data.cifar10 import load_cifar10
from rol_hashing.data.fileio import path_problem, read_json, read_text
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.splits import load_split
from rol_hashing.data.voc import load_voc2012
from rol_hashing.errors import InputError, printable

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="named pipes and symlinks")


@pytest.fixture
def no_hang():
    """Fails the test after 300 s instead of letting a blocked ``open`` hang the suite
    (a guard against hanging for ever, far beyond any test's time on any machine)."""

    def on_alarm(signum, frame):
        raise TimeoutError("blocked for 300 s (opened a named pipe?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(300)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def make_odd(path: Path, kind: str) -> Path:
    """Makes ``path`` a named pipe, a folder, a symbolic link loop or a dangling link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("missing.jpg")
    else:
        raise AssertionError(kind)
    return path


ODD_MESSAGES = {
    "fifo": "is a named pipe (FIFO), not an image file",
    "folder": "is a folder",
    "loop": "is a symbolic link loop",
    "dangling": "is a dangling symbolic link (to 'missing.jpg')",
}


# ---- 1. search queries that are not image files --------------------------------------


def test_path_problem_names_each_kind_without_opening(tmp_path, no_hang):
    good = fx.write_jpeg(tmp_path / "good.jpg", fx.random_rgb(np.random.default_rng(0), 8, 8))
    assert path_problem(good) is None
    assert path_problem(tmp_path / "absent.jpg") == "not found"
    assert path_problem(tmp_path / "good.jpg" / "below.jpg") == "not found"
    for kind, message in ODD_MESSAGES.items():
        odd = make_odd(tmp_path / f"{kind}.jpg", kind)
        assert path_problem(odd, "an image file").startswith(message), kind
    chained = tmp_path / "chained.jpg"
    chained.symlink_to("fifo.jpg")  # a link to a pipe is judged by what it points to
    assert path_problem(chained, "an image file") == ODD_MESSAGES["fifo"]


@pytest.fixture
def any_run(monkeypatch):
    """Lets ``search_image`` open any folder as an ``ssdh`` run: the query is checked
    right after the run is opened, before anything is loaded, built or written."""
    from rol_hashing.retrieval import search  # lazy: TensorFlow

    monkeypatch.setattr(search, "open_hashing_run", lambda run_dir: SimpleNamespace(method="ssdh"))
    return search.search_image


@pytest.mark.parametrize("kind", sorted(ODD_MESSAGES))
def test_search_names_what_an_odd_query_is(kind, tmp_path, capsys, any_run, no_hang):
    query = make_odd(tmp_path / "query.jpg", kind)
    expected = f"query image {query} {ODD_MESSAGES[kind]}"
    with pytest.raises(InputError, match=re.escape(expected)):
        any_run(tmp_path / "run", query)
    assert main(["search", str(tmp_path / "run"), "--image", str(query)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rol-hashing search: error: {expected}") and "\n" not in err
    assert not any(p.name.startswith("search_") for p in tmp_path.rglob("*"))


def test_search_of_a_missing_query_still_says_not_found(tmp_path, any_run):
    with pytest.raises(FileNotFoundError, match="query image .*absent.jpg not found"):
        any_run(tmp_path / "run", tmp_path / "absent.jpg")


# ---- 2. odd entries inside class folders are skipped and counted -----------------------


def _add_odd_entries(folder: Path) -> None:
    make_odd(folder / "x_dangling.jpg", "dangling")
    make_odd(folder / "x_loop.jpg", "loop")
    make_odd(folder / "x_pipe.jpg", "fifo")


def test_class_folders_count_odd_entries_as_skipped(tmp_path, no_hang):
    root = fx.write_class_folders(tmp_path / "shapes", per_class=2)
    _add_odd_entries(root / "cat")
    with pytest.warns(UserWarning, match="skipped 3 unreadable file"):
        record = load_class_folders(root)
    assert len(record) == 4
    reasons = {Path(path).name: reason for path, reason in record.skipped}
    assert reasons == {
        "x_dangling.jpg": "is a dangling symbolic link (to 'missing.jpg')",
        "x_loop.jpg": "is a symbolic link loop",
        "x_pipe.jpg": "is a named pipe (FIFO), not an image file",
    }
    with pytest.raises(InputError, match="x_dangling.jpg: is a dangling symbolic link"):
        load_class_folders(root, strict=True)


def test_awa2_counts_odd_entries_as_skipped(tmp_path, no_hang):
    folder = fx.write_awa2(tmp_path, per_class=2)
    _add_odd_entries(folder / "JPEGImages" / "antelope")
    with pytest.warns(UserWarning, match="skipped 3 unreadable file"):
        record = load_awa2(tmp_path)
    assert len(record) == 6 and len(record.skipped) == 3
    assert {reason for _, reason in record.skipped} == {
        ODD_MESSAGES["dangling"],
        ODD_MESSAGES["loop"],
        ODD_MESSAGES["fifo"],
    }


def test_list_and_split_files_that_are_pipes_are_named_not_read(tmp_path, no_hang):
    devkit = fx.write_voc_devkit(tmp_path)
    listed = devkit / "ImageSets" / "Segmentation" / "trainval.txt"
    listed.unlink()
    make_odd(listed, "fifo")
    with pytest.raises(InputError, match="trainval.txt is a named pipe \\(FIFO\\), not a file"):
        load_voc2012(tmp_path)
    split = make_odd(tmp_path / "split.json", "fifo")
    with pytest.raises(InputError, match="split.json is a named pipe"):
        load_split(split)
    root = fx.write_class_folders(tmp_path / "shapes", per_class=2)
    make_odd(root / "classes.txt", "loop")
    with pytest.raises(InputError, match="classes.txt is a symbolic link loop"):
        load_class_folders(root)


# ---- 3. repeated class names -----------------------------------------------------------


def test_awa2_repeated_class_name_is_named(tmp_path):
    folder = fx.write_awa2(tmp_path, per_class=1)
    with open(folder / "classes.txt", "a") as f:
        f.write("4\tantelope\n")
    with pytest.raises(InputError, match="classes.txt:4: class 'antelope' is listed twice"):
        load_awa2(tmp_path)


def test_class_folders_and_voc_repeated_class_name_is_named(tmp_path):
    root = fx.write_class_folders(tmp_path / "shapes", per_class=2)
    (root / "classes.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(InputError, match="classes.txt:3: class 'cat' is listed twice"):
        load_class_folders(root)
    devkit = fx.write_voc_devkit(tmp_path / "voc")
    (devkit / "classes.txt").write_text("background\naeroplane\nbicycle\n\naeroplane\n")
    with pytest.raises(InputError, match="classes.txt:5: class 'aeroplane' is listed twice"):
        load_voc2012(tmp_path / "voc")


@pytest.mark.parametrize("number", ["²", "9" * 5000])
def test_awa2_class_number_that_is_no_plain_integer(number, tmp_path):
    folder = fx.write_awa2(tmp_path, per_class=1)
    (folder / "classes.txt").write_text(f"{number}\tantelope\n")
    with pytest.raises(InputError, match="classes.txt:1: expected '<number> <class>'"):
        load_awa2(tmp_path)


# ---- 4. JSON nested too deeply, not UTF-8, numbers too large ---------------------------


def _split_json(**changes) -> str:
    content = {"format": 1, "dataset": "x", "seed": 0, "train": [], "query": [], "gallery": []}
    content.update(changes)
    return json.dumps(content)


BAD_JSON = {
    "nested": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "not utf-8": ('{"a": "caf\xe9"}', "not UTF-8 text \\(invalid continuation byte at byte 10\\)"),
    "huge integer": (_split_json().replace('"seed": 0', '"seed": ' + "9" * 5000), "5000 digits"),
    "1e999": (_split_json().replace('"seed": 0', '"seed": 1e999'), "number 1e999 is out of range"),
    "NaN": (_split_json().replace('"seed": 0', '"seed": NaN'), "NaN is not a JSON number"),
}


def _write_bad(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode("ascii"))
    return path


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_split_file_json_faults_name_the_file(case, tmp_path):
    text, message = BAD_JSON[case]
    path = _write_bad(tmp_path / "split.json", text)
    with pytest.raises(
        InputError, match=f"{re.escape(str(path))}: not a readable split file \\(.*{message}"
    ):
        load_split(path)


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_class_folders_split_json_faults_name_the_file(case, tmp_path):
    root = fx.write_class_folders(tmp_path / "shapes", per_class=2)
    text, message = BAD_JSON[case]
    path = _write_bad(root / "split.json", text)
    with pytest.raises(
        InputError, match=f"{re.escape(str(path))}: not a readable split file \\(.*{message}"
    ):
        load_class_folders(root)


def test_read_json_and_read_text_refuse_what_they_cannot_read(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2.5, "x"]}')
    assert read_json(path, "file") == {"a": [1, 2.5, "x"]}
    path.write_bytes(b"\xef\xbb\xbfplain\n")  # a byte order mark is dropped
    assert read_text(path) == "plain\n"
    path.write_bytes(b"line one\nline \xff two\n")
    with pytest.raises(InputError, match=f"{re.escape(str(path))}:2: not UTF-8 text"):
        read_text(path)
    with pytest.raises(FileNotFoundError, match="absent.txt not found"):
        read_text(tmp_path / "absent.txt")


def _not_utf8(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"caf\xe9\n")


def test_list_files_that_are_not_utf8_name_the_file(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path / "voc")
    listed = devkit / "ImageSets" / "Segmentation" / "trainval.txt"
    _not_utf8(listed)
    with pytest.raises(InputError, match=f"{re.escape(str(listed))}:\\d+: not UTF-8 text"):
        load_voc2012(tmp_path / "voc")
    main_list = sorted((devkit / "ImageSets" / "Main").glob("*_trainval.txt"))[0]
    listed.write_text("")
    _not_utf8(main_list)
    with pytest.raises(InputError, match=f"{re.escape(str(main_list))}:\\d+: not UTF-8 text"):
        load_voc2012(tmp_path / "voc")
    folder = fx.write_awa2(tmp_path / "awa", per_class=1)
    _not_utf8(folder / "classes.txt")
    with pytest.raises(InputError, match="classes.txt:4: not UTF-8 text"):
        load_awa2(tmp_path / "awa")
    root = fx.write_class_folders(tmp_path / "shapes", per_class=2)
    (root / "classes.txt").write_bytes(b"cat\ndog\xff\n")
    with pytest.raises(InputError, match="classes.txt:2: not UTF-8 text"):
        load_class_folders(root)
    folder = fx.write_cifar_bin(tmp_path / "cifar")
    _not_utf8(folder / "batches.meta.txt")
    with pytest.raises(InputError, match="batches.meta.txt:\\d+: not UTF-8 text"):
        load_cifar10(tmp_path / "cifar")


# ---- 5. control characters in printed tables -------------------------------------------


def test_data_summary_escapes_class_and_file_names(tmp_path, capsys):
    root = fx.write_class_folders(tmp_path / "shapes", classes=("cat", "red\x1b[31m"), per_class=2)
    fx.write_corrupt_jpeg(root / "red\x1b[31m" / "bad\nname.jpg")
    with pytest.warns(UserWarning, match="skipped 1"):
        assert main(["data-summary", "--dataset", "folders", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "bad\nname" not in out
    assert "red\\x1b[31m" in out and "bad\\nname.jpg" in out


def test_evaluate_and_table2_tables_escape_names():
    from rol_hashing.evaluation.evaluate import metrics_markdown  # lazy: TensorFlow
    from rol_hashing.experiments.table2_files import Table2Row, table2_markdown

    metrics = {
        "top_k": 10,
        "radius": 2,
        "map_at_k": 0.5,
        "map_full": 0.4,
        "precision_at": {},
        "precision_radius": 0.3,
        "recall_radius": 0.2,
        "method": "rol",
        "dataset": "folders",
        "profile": "cpu\x1b[2J",
        "bits": 12,
        "num_queries": 3,
        "num_gallery": 9,
        "codes": "encoded",
        "seconds": 1.0,
    }
    text = metrics_markdown(metrics, "run\x1b]0;title\x07")
    assert "\x1b" not in text and "\x07" not in text
    assert "# run\\x1b]0;title\\x07" in text and "cpu\\x1b[2J" in text
    row = Table2Row(bits=12, method="rol", top_k=10, map_ours=50.0, map_paper=None, run=Path("r"))
    table = table2_markdown([row], "folders", "cpu\r\x1b[2J")
    assert "\x1b" not in table and "\r" not in table and "cpu\\r\\x1b[2J" in table


def test_printable_lives_in_the_lowest_layer():
    assert printable("a\x1b[2J\nb\udcff") == "a\\x1b[2J\\nb\\udcff"
    assert printable("plain ü") == "plain ü"


def test_cli_error_lines_escape_control_characters_in_file_names(tmp_path, capsys):
    from rol_hashing.cli.main import main

    evil = tmp_path / "run\x1b[2J"
    assert main(["evaluate", str(evil)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "run\\x1b[2J" in err
    assert err.startswith("rol-hashing evaluate: error:") and err.count("\n") == 1
