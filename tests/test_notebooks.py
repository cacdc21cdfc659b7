"""The notebooks: stripped in git, and executed end to end on tiny runs."""

import json
from pathlib import Path

import pytest

from rol_hashing.cli.main import main
from rol_hashing.evaluation import compare
from rol_hashing.notebooks import count_figures, execute, save_figures

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


@pytest.mark.slow
def test_rol_masks_notebook_runs(tiny_runs, tmp_path):
    nb = execute(
        NOTEBOOKS / "rol_masks.ipynb",
        {"ROL_RUN": str(tiny_runs["runs"]["rol"]), "N_IMAGES": 3},
        out_path=tmp_path / "rol_masks.ipynb",
    )
    _check_executed(nb, min_figures=2)
    assert (tmp_path / "rol_masks.ipynb").is_file()
    written = save_figures(nb, tmp_path / "figures", "rol_masks")
    assert [p.name for p in written] == [
        f"rol_masks_{n}.png" for n in range(1, count_figures(nb) + 1)
    ]
    from PIL import Image

    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 50


def test_notebooks_command_names_the_missing_run(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["notebooks", "--ssdh-run", str(missing), "--rol-run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}/model.keras not found" in err and "make demo" in err


@pytest.mark.slow
def test_top10_notebook_runs(tiny_runs, tmp_path):
    nb = execute(
        NOTEBOOKS / "top10_retrievals.ipynb",
        {
            "SSDH_RUN": str(tiny_runs["runs"]["ssdh"]),
            "ROL_RUN": str(tiny_runs["runs"]["rol"]),
            "N_QUERIES": 1,
            "N_EXTREMES": 1,
        },
    )
    # 1 query + the precision curves + 1 win + 1 loss
    _check_executed(nb, min_figures=4)


@pytest.mark.slow
def test_analysis_loads_a_data_set_once(tiny_runs):
    ssdh, rol = tiny_runs["runs"]["ssdh"], tiny_runs["runs"]["rol"]
    record = compare.load_record(ssdh)
    assert compare.load_record(rol) is record  # same data set and root: not re-read
    assert len(record.paths) == 240


@pytest.mark.slow
def test_notebooks_command_outputs_carry_no_tensorflow_start_up_lines(tiny_runs, tmp_path):
    """As `make notebooks` runs it: a separate process, output redirected to a file."""
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
    assert result.returncode == 0, (tmp_path / "log.txt").read_text()[-2000:]
    for name in ("rol_masks.ipynb", "top10_retrievals.ipynb"):
        nb = json.loads((out / name).read_text())
        text = " ".join(
            "".join(o.get("text", ""))
            for c in nb["cells"]
            if c["cell_type"] == "code"
            for o in c.get("outputs", [])
        )
        assert not any(w in text for w in ("oneDNN", "cuInit", "I0000", "E0000")), text[:500]
