"""Executing the project's notebooks with parameters (``make notebooks`` and the tests).

A notebook's first code cell tagged ``parameters`` holds its defaults; ``execute``
inserts a cell after it that sets the given values (papermill's convention), runs
every cell with nbclient in a fresh kernel, and returns the executed notebook.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

from rol_hashing.errors import InputError
from rol_hashing.io import atomic_open

PARAMETERS_TAG = "parameters"


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """A notebook file (nbformat 4), or ``InputError`` naming it when it is not one
    (not JSON, not a notebook, unreadable); a missing file is ``FileNotFoundError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: notebook not found (expected a .ipynb file)")
    try:
        return nbformat.read(path, as_version=4)
    except (ValueError, OSError, KeyError, AttributeError, TypeError) as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a Jupyter notebook (nbformat 4 JSON): {first}") from None


class NotebookError(RuntimeError):
    """A cell of a notebook raised: the notebook, the exception's name and its message."""

    def __init__(self, path: Path, ename: str, evalue: str) -> None:
        self.path, self.ename, self.evalue = Path(path), ename, evalue
        super().__init__(f"{path}: a cell raised {ename}: {evalue}")


def _inject(nb: nbformat.NotebookNode, params: dict) -> None:
    lines = [f"{key} = {value!r}" for key, value in params.items()]
    cell = nbformat.v4.new_code_cell("# injected parameters\n" + "\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    for position, existing in enumerate(nb.cells):
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", []):
            nb.cells.insert(position + 1, cell)
            return
    raise InputError("the notebook has no cell tagged 'parameters'")


def execute(
    path: str | Path,
    params: dict | None = None,
    out_path: str | Path | None = None,
    cwd: str | Path | None = None,
    timeout: int = 600,
) -> nbformat.NotebookNode:
    """Runs notebook ``path`` with ``params``; writes the executed copy to ``out_path``.

    Raises:
        NotebookError: a cell failed; it names the notebook and the cell's exception.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the kernel
    path = Path(path)
    nb = read_notebook(path)
    if params:
        _inject(nb, params)
    # IPC sockets in a private folder instead of TCP on localhost: nothing listens on a
    # port, and the kernel prints no "running over TCP without encryption" warning
    with tempfile.TemporaryDirectory(prefix="rol-kernel-") as sockets:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(cwd or path.parent)}},
            config=Config(
                {"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}}
            ),
        )
        try:
            client.execute()
        except CellExecutionError as err:
            raise NotebookError(path, err.ename, err.evalue) from err
    if out_path is not None:
        with atomic_open(out_path, "w") as f:
            nbformat.write(nb, f)
    return nb


def _png_outputs(nb: nbformat.NotebookNode) -> Iterator[str]:
    """The base64 PNG outputs of an executed notebook, in order."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    yield output["data"]["image/png"]


def count_figures(nb: nbformat.NotebookNode) -> int:
    """Number of PNG images among the executed notebook's outputs."""
    return sum(1 for _ in _png_outputs(nb))


def save_figures(nb: nbformat.NotebookNode, folder: str | Path, prefix: str) -> list[Path]:
    """Writes each PNG output of an executed notebook to ``<folder>/<prefix>_<n>.png``.

    Figures are numbered from 1 in notebook order; returns the written paths.
    """
    written = []
    for number, data in enumerate(_png_outputs(nb), start=1):
        path = Path(folder) / f"{prefix}_{number}.png"
        with atomic_open(path) as f:
            f.write(base64.b64decode(data))
        written.append(path)
    return written


def strip_outputs(path: str | Path) -> None:
    """Removes outputs and execution counts in place (what git keeps)."""
    path = Path(path)
    nb = read_notebook(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
