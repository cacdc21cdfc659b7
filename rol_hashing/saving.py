"""Loading the project's ``.keras`` files safely, with every custom class registered.

Imports ``rol_hashing.models`` only (its layers, losses and metrics register on import).
Checkpoints also hold the hashing optimiser, ``CaffeSGD``: the training code that loads
them imports ``rol_hashing.training.optim``, which registers it.

Before Keras reads a file, ``check_keras_archive`` refuses what a model of this package
never is: a damaged zip, members declaring more than the file can hold (a zip bomb:
``config.json`` and ``metadata.json`` at most ``KERAS_JSON_LIMIT``, all members at most
``4 x the file size + 64 MiB``; Keras stores members uncompressed), and a
``config.json`` naming a class outside Keras and this package.
"""

from __future__ import annotations

import json
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import keras

import rol_hashing.models  # noqa: F401  (registers the layers, losses and metrics)
from rol_hashing.archives import check_members, open_archive
from rol_hashing.errors import InputError, one_line
from rol_hashing.freshness import bytes_digest

# Largest config.json / metadata.json accepted (this package's are below 100 KB).
KERAS_JSON_LIMIT = 16 << 20
# All members together: weights are stored uncompressed, so a real model declares
# about its file size; this leaves room for deflated copies of mostly-zero weights.
KERAS_RATIO = 4
KERAS_SLACK = 64 << 20
# Packages whose classes a config.json may name ("module"); Keras resolves the rest.
ALLOWED_PACKAGES = ("keras", "rol_hashing")

# Models loaded for prediction only, by the SHA-256 of their file's bytes: the last few,
# each of a file under INFERENCE_CACHE_BYTES (load_inference_model).
INFERENCE_CACHE_SIZE = 4
INFERENCE_CACHE_BYTES = 64 << 20
_INFERENCE_MODELS: OrderedDict[str, keras.Model] = OrderedDict()

# Errors Keras raises (or lets through) for a config or weights file it cannot use.
_KERAS_ERRORS = (
    ValueError,
    OSError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    ImportError,
    RecursionError,
    zipfile.BadZipFile,
)


def keras_total_limit(size: int) -> int:
    """Uncompressed bytes the members of a ``.keras`` file of ``size`` bytes may declare."""
    return KERAS_RATIO * size + KERAS_SLACK


def check_keras_archive(path: Path) -> None:
    """Refuses a ``.keras`` file that is no zip, declares too much, or names foreign classes.

    Raises:
        InputError: naming the file and the member, declared size and limit, or class.
    """
    with open_archive(path, ".keras model") as archive:
        check_members(
            archive,
            path,
            keras_total_limit(path.stat().st_size),
            {"config.json": KERAS_JSON_LIMIT, "metadata.json": KERAS_JSON_LIMIT},
        )
        try:
            raw = archive.read("config.json")
        except KeyError:
            raise InputError(f"{path}: not a .keras model (no config.json inside)") from None
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise InputError(f"{path}: damaged .keras model (config.json: {err})") from None
    try:
        config = json.loads(raw)
    except RecursionError:
        raise InputError(f"{path}: config.json is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise InputError(f"{path}: config.json is not valid JSON ({err})") from None
    _check_classes(config, path)


def _check_classes(config: Any, path: Path) -> None:
    """Every ``{"class_name": ..., "module": ...}`` in the config names a Keras or
    rol_hashing class (walked without recursion; ``json`` bounds the depth)."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        if "class_name" not in node:
            continue
        name, module = node["class_name"], node.get("module")
        plain_name = isinstance(name, str) and "." not in name
        allowed_module = module is None or (
            isinstance(module, str) and module.split(".")[0] in ALLOWED_PACKAGES
        )
        if not (plain_name and allowed_module):
            where = f" of module {str(module)[:100]!r}" if module is not None else ""
            raise InputError(
                f"{path}: config.json names class {str(name)[:100]!r}{where}, which is not "
                f"a Keras or rol_hashing class; refused"
            )


def load_model(path: str | Path, compile: bool = False) -> keras.Model:
    """Loads a model, checkpoint or segmentation stream with ``safe_mode=True``.

    Args:
        path: a ``.keras`` file written by this package.
        compile: also restore loss, metrics and optimizer state (checkpoints).

    Raises:
        FileNotFoundError: the file is missing.
        InputError: the file is not a loadable model (damaged, another format, a zip
            bomb, or a config naming classes from elsewhere), in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    check_keras_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except _KERAS_ERRORS as err:
        # Keras reports a damaged archive as "File not found" or a bare ValueError, and
        # quotes whole configs over several lines: one line, a few hundred characters.
        raise InputError(
            f"{path} is not a loadable .keras model of this package "
            f"({type(err).__name__}: {one_line(err, 300)})"
        ) from err


def load_inference_model(path: str | Path) -> keras.Model:
    """``load_model`` for prediction only: one model object per file content in a process.

    Evaluating, indexing, searching and drawing a run's figures each load its
    ``model.keras``; a file of the same bytes (SHA-256) as one of the last
    ``INFERENCE_CACHE_SIZE`` loaded here, each under ``INFERENCE_CACHE_BYTES``, gives that
    model again. A changed or replaced file is loaded anew. The model is shared: callers
    predict with it and never change it (no compile, fit or set_weights).

    Raises:
        FileNotFoundError, InputError: as ``load_model``.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size > INFERENCE_CACHE_BYTES:
        return load_model(path)
    digest = bytes_digest(path)
    model = _INFERENCE_MODELS.get(digest)
    if model is not None:
        _INFERENCE_MODELS.move_to_end(digest)
        return model
    model = load_model(path)
    if bytes_digest(path) == digest:  # not rewritten while Keras read it
        _INFERENCE_MODELS[digest] = model
        while len(_INFERENCE_MODELS) > INFERENCE_CACHE_SIZE:
            _INFERENCE_MODELS.popitem(last=False)
    return model
