"""The notebooks: stripped in git, and executed end to end on tiny runs."""

import json
from pathlib import Path

import pytest

from rol_hashing.cli.main import main
from rol_hashing.evaluation import compare

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["rol_masks.ipynb", "top10_retrievals.ipynb"])
def test_notebooks_are_stripped_and_parameterised(name):
    nb = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert any("parameters" in c["metadata"].get("tags", []) for c in code)
    # thin narrative: no function or class definitions in the notebooks
    assert not any(
        line.lstrip().startswith(("def ", "class ")) for c in code for line in c["source"]
    )


def test_notebooks_command_names_the_missing_run(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["notebooks", "--ssdh-run", str(missing), "--rol-run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}/model.keras not found" in err and "make demo" in err


@pytest.mark.slow
def test_analysis_loads_a_data_set_once(tiny_runs):
    ssdh, rol = tiny_runs["runs"]["ssdh"], tiny_runs["runs"]["rol"]
    record = compare.load_record(ssdh)
    assert compare.load_record(rol) is record  # same data set and root: not re-read
    assert len(record.paths) == 240


# `rol-hashing notebooks` as `make notebooks` runs it (a separate process, output to a
# file, no TensorFlow start-up lines, figures saved as PNG): the last step of the README's
# own-images route, tests/test_cli.py::test_your_own_images_route_from_the_readme, on
# the route's runs (helpers.check_notebooks_command).


@pytest.mark.parametrize("content", [b"not json at all", b'{"cells": 3}', b"\xff\xfe\x00"])
def test_a_notebooks_dir_holding_a_file_that_is_no_notebook(tiny_runs, tmp_path, capsys, content):
    """Issue 22 case 19: a traceback from nbformat; now one line naming the file, before
    any notebook runs."""
    import shutil

    folder = tmp_path / "nbs"
    folder.mkdir()
    shutil.copy(NOTEBOOKS / "rol_masks.ipynb", folder / "rol_masks.ipynb")
    (folder / "top10_retrievals.ipynb").write_bytes(content)
    runs = tiny_runs["runs"]
    argv = ["notebooks", "--ssdh-run", str(runs["ssdh"]), "--rol-run", str(runs["rol"])]
    argv += ["--notebooks-dir", str(folder), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "top10_retrievals.ipynb: not a Jupyter notebook" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing ran
