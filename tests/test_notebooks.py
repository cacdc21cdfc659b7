"""The notebooks: stripped in git, and executed end to end on tiny runs."""

import json
from pathlib import Path

import pytest

from rol_hashing.cli.main import main
from rol_hashing.evaluation import compare
from rol_hashing.notebooks import count_figures

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


def _check_executed(nb, min_figures: int) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert count_figures(nb) >= min_figures
    # no TensorFlow start-up lines (oneDNN, cuInit, CUDA) in any output
    text = " ".join(o.get("text", "") for c in code for o in c.outputs)
    assert not any(w in text for w in ("oneDNN", "cuInit", "cuda_", "I0000", "E0000")), text


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


@pytest.mark.slow
def test_notebooks_command_outputs_carry_no_tensorflow_start_up_lines(tiny_runs, tmp_path):
    """As `make notebooks` runs it: a separate process, output redirected to a file; both
    notebooks execute without errors, show their figures and save them as PNG files, and
    the log holds no kernel transport warning."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "ROL_HASHING_TF_LOGS"}
    argv = [sys.executable, "-m", "rol_hashing", "notebooks", "--out", str(out)]
    argv += ["--notebooks-dir", str(NOTEBOOKS)]
    argv += [
        "--ssdh-run",
        str(tiny_runs["runs"]["ssdh"]),
        "--rol-run",
        str(tiny_runs["runs"]["rol"]),
    ]
    with open(tmp_path / "log.txt", "w") as log:
        result = subprocess.run(argv, stdout=log, stderr=log, env=env, timeout=600)
    log_text = (tmp_path / "log.txt").read_text()
    assert result.returncode == 0, log_text[-2000:]
    assert "without encryption" not in log_text  # the kernel talks over IPC, not TCP
    import nbformat
    from PIL import Image

    # rol_masks: >= 2 figures; top10: queries, the precision curves, wins and losses
    for name, min_figures in (("rol_masks.ipynb", 2), ("top10_retrievals.ipynb", 4)):
        nb = nbformat.read(out / name, as_version=4)
        _check_executed(nb, min_figures)
        text = " ".join(
            "".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs
        )
        assert not any(w in text for w in ("oneDNN", "cuInit", "I0000", "E0000")), text[:500]
        stem = Path(name).stem
        written = sorted((out / "figures").glob(f"{stem}_*.png"))
        assert len(written) == count_figures(nb)
        for path in written:
            with Image.open(path) as image:
                assert image.format == "PNG" and min(image.size) > 50


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
