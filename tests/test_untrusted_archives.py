"""Archives and images from elsewhere (issue 15): memory bounded by design, one-line errors.

Zip bombs (``model.keras``, ``index.npz``, codes and ``index_items.npz``) are refused
from their declared sizes before a byte is inflated; the bombs here are real (a few
hundred KB of deflate that inflate to hundreds of MB, built from one compressed MiB
repeated) and every test checks that the reader was never reached. Also: ``.npy``
headers declaring more than their member holds, a ``.keras`` config naming classes
from elsewhere, index files whose fields have the wrong form, gallery items the data
set lacks, and a huge query image decoded at the size the model needs.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from PIL import Image

import rol_hashing.retrieval.gallery_index as gallery_index
import rol_hashing.retrieval.query as query
import rol_hashing.retrieval.strip as strip
from rol_hashing.data.images import decode_image
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError
from rol_hashing.freshness import array_digest
from rol_hashing.io import atomic_save_model
from rol_hashing.retrieval.codes import CODES_FORMAT, load_codes
from rol_hashing.retrieval.index import INDEX_FORMAT, HammingIndex
from rol_hashing.retrieval.mapped import MappedHammingIndex
from rol_hashing.saving import load_model

MIB = 1 << 20
BOMB = 300 * MIB  # what each bomb inflates to


# ---- building archives byte by byte ---------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, len(data), zlib.crc32(data), zipfile.ZIP_STORED


def _deflated_zeros(name: str, prefix: bytes, zeros: int) -> tuple[str, bytes, int, int, int]:
    """A deflated member holding ``prefix`` then ``zeros`` zero bytes (a whole number of
    MiB), built from one compressed MiB repeated: a full flush resets deflate's history,
    so each copy decodes on its own. Never inflated here."""
    chunk = bytes(MIB)
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH)
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = block.compress(chunk) + block.flush(zlib.Z_FULL_FLUSH)
    count = zeros // MIB
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    final = b"\x03\x00"  # an empty final block
    return name, stream + one * count + final, len(prefix) + count * MIB, crc, zipfile.ZIP_DEFLATED


def _write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip archive of (name, bytes as stored, uncompressed size, crc, method)."""
    body, central = bytearray(), bytearray()
    for name, data, size, crc, method in members:
        raw = name.encode()
        offset = len(body)
        shared = (method, 0, 0x21, crc, len(data), size, len(raw))  # method, time, date, ...
        body += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, *shared, 0) + raw + data
        central += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, 0, *shared, 0, 0, 0, 0, 0, offset
        )
        central += raw
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0
    )
    path.write_bytes(bytes(body + central + end))
    return path


def test_the_bomb_builder_makes_real_deflate_streams():
    """The repeated-block stream inflates to exactly what it declares (checked small)."""
    name, data, size, crc, _ = _deflated_zeros("x.npy", b"header", 3 * MIB)
    out = zlib.decompressobj(-15)
    inflated = out.decompress(data) + out.flush()
    assert out.eof and len(inflated) == size and zlib.crc32(inflated) == crc
    assert len(data) < 8000


@pytest.fixture
def no_reader(monkeypatch) -> set[str]:
    """Fails a test that reaches ``np.load`` or Keras's loader (nothing may be inflated),
    except ``np.load`` of the paths the test adds to the returned set."""
    allowed: set[str] = set()
    real_load = np.load

    def reached(*args, **kwargs):
        raise AssertionError("the file was read: its sizes were not checked first")

    def load(path, *args, **kwargs):
        if os.fspath(path) not in allowed:
            reached()
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", load)
    monkeypatch.setattr(keras.saving, "load_model", reached)
    return allowed


# ---- 1. model.keras ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_members(tmp_path_factory) -> dict[str, bytes]:
    """The members of a small real model's ``.keras`` file."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    atomic_save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _keras_file(path: Path, members: dict[str, bytes], **replace) -> Path:
    out = [_stored(name, data) for name, data in members.items() if name not in replace]
    return _write_zip(path, out + list(replace.values()))


def test_a_model_of_this_package_loads(tmp_path, keras_members):
    model = load_model(_keras_file(tmp_path / "model.keras", keras_members))
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("member", ["config.json", "metadata.json", "model.weights.h5"])
def test_keras_member_inflating_to_hundreds_of_mb_is_refused_unread(
    tmp_path, keras_members, member, no_reader
):
    bomb = _deflated_zeros(member, b"", BOMB)
    path = _keras_file(tmp_path / "model.keras", keras_members, **{member: bomb})
    assert path.stat().st_size < 1 * MIB
    with pytest.raises(InputError, match="zip bomb") as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message and repr(member) in message
    assert f"{BOMB} bytes" in message and "limit" in message


def test_keras_member_declaring_more_than_it_stores_is_refused(tmp_path, keras_members, no_reader):
    name, data, _, crc, method = _stored("model.weights.h5", keras_members["model.weights.h5"])
    forged = (name, data, 1 << 31, crc, method)
    path = _keras_file(tmp_path / "model.keras", keras_members, **{name: forged})
    with pytest.raises(InputError, match=r"'model.weights.h5' declares 2147483648 bytes .*forged"):
        load_model(path)


@pytest.mark.parametrize(
    "change, named",
    [
        ({"class_name": "system", "module": "os"}, "'system' of module 'os'"),
        ({"class_name": "os.system"}, "'os.system'"),
        ({"class_name": "Popen", "module": "subprocess", "layer": 1}, "'Popen' of module"),
    ],
)
def test_keras_config_naming_a_class_from_elsewhere_is_one_line(
    tmp_path, keras_members, change, named, no_reader
):
    config = json.loads(keras_members["config.json"])
    change = dict(change)
    target = config["config"]["layers"][change.pop("layer")] if "layer" in change else config
    target.pop("module", None)
    target.update(change)
    member = _stored("config.json", json.dumps(config).encode())
    path = _keras_file(tmp_path / "evil.keras", keras_members, **{"config.json": member})
    with pytest.raises(InputError, match="config.json names class") as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message and named in message and "\n" not in message


def test_keras_config_nested_too_deeply_is_an_input_error(tmp_path, keras_members, no_reader):
    member = _stored("config.json", b"[" * 100_000 + b"]" * 100_000)
    path = _keras_file(tmp_path / "deep.keras", keras_members, **{"config.json": member})
    with pytest.raises(InputError, match="deep.keras: config.json is nested too deeply"):
        load_model(path)


def test_keras_errors_from_keras_itself_are_one_line(tmp_path, keras_members):
    """Keras quotes a whole config over several lines; the message keeps one."""
    config = json.loads(keras_members["config.json"])
    config["config"] = [1, 2]
    member = _stored("config.json", json.dumps(config).encode())
    path = _keras_file(tmp_path / "odd.keras", keras_members, **{"config.json": member})
    with pytest.raises(InputError, match="odd.keras is not a loadable .keras model") as err:
        load_model(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


def test_truncated_keras_file_is_called_damaged_not_missing(tmp_path, keras_members):
    whole = _keras_file(tmp_path / "whole.keras", keras_members).read_bytes()
    path = tmp_path / "model.keras"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="damaged or not a zip archive") as err:
        load_model(path)
    assert str(path) in str(err.value) and "not found" not in str(err.value).lower()


# ---- 2. npz bombs: index.npz, codes, index_items.npz ----------------------------------------


def _header(array_shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """A .npy header alone, declaring ``array_shape``."""
    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": array_shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _npz(path: Path, fmt: str, **arrays) -> Path:
    """An npz of ``format``, its version and ``arrays`` (bytes: a member as given)."""
    version = gallery_index.ITEMS_FORMAT_VERSION if fmt == gallery_index.ITEMS_FORMAT else 1
    members = [
        _stored("format.npy", _npy(np.array(fmt))),
        _stored("format_version.npy", _npy(version)),
    ]
    for key, value in arrays.items():
        members.append(value if isinstance(value, tuple) else _stored(f"{key}.npy", _npy(value)))
    return _write_zip(path, members)


def _index_digest(packed: np.ndarray) -> str:
    """What ``index_items.npz`` records of an index of these packed 12-bit codes."""
    index = HammingIndex(12)
    index.add(np.unpackbits(packed, axis=1)[:, :12].astype(bool))
    return array_digest(index.words)


def _fields(kind: str) -> tuple[str, dict]:
    """The format and valid arrays of an index, codes or items file of 4 12-bit codes."""
    codes = np.packbits(np.eye(4, 12, dtype=bool), axis=1)
    ids, labels = np.array(["a", "b", "c", "d"]), np.arange(4)
    return {
        "index": (INDEX_FORMAT, {"bits": 12, "codes": codes}),
        "codes": (CODES_FORMAT, {"bits": 12, "codes": codes, "ids": ids, "labels": labels}),
        "items": (
            gallery_index.ITEMS_FORMAT,
            {
                "bits": 12,
                "ids": ids,
                "labels": labels,
                "key": np.array('{"kind": "index", "code": "test", "parts": {}}'),
                "codes_sha256": np.array(_index_digest(codes)),
            },
        ),
    }[kind]


def _load(kind: str, path: Path, readable: set[str] | None = None):
    """Reads ``path`` as ``kind`` the way the package does (items: with a valid index,
    which is added to ``readable``)."""
    if kind == "index":
        return HammingIndex.load(path)
    if kind == "codes":
        return load_codes(path)
    fmt, arrays = _fields("index")
    index = _npz(path.parent / gallery_index.INDEX_FILE, fmt, **arrays)
    if readable is not None:
        readable.add(os.fspath(index))
    return gallery_index.load_gallery_index(path.parent)


def _name(kind: str) -> str:
    return {
        "index": gallery_index.INDEX_FILE,
        "codes": "codes.npz",
        "items": gallery_index.ITEMS_FILE,
    }[kind]


@pytest.mark.parametrize("kind", ["index", "codes", "items"])
def test_npz_files_load(tmp_path, kind):
    fmt, arrays = _fields(kind)
    assert _load(kind, _npz(tmp_path / _name(kind), fmt, **arrays)) is not None


@pytest.mark.parametrize(
    "kind, member", [("index", "codes"), ("codes", "labels"), ("items", "ids")]
)
def test_npz_member_inflating_to_hundreds_of_mb_is_refused_unread(
    tmp_path, kind, member, no_reader
):
    fmt, arrays = _fields(kind)
    shape = (BOMB // 2, 2) if member == "codes" else (BOMB,)
    arrays[member] = _deflated_zeros(f"{member}.npy", _header(shape), BOMB)
    path = _npz(tmp_path / _name(kind), fmt, **arrays)
    assert path.stat().st_size < 1 * MIB
    with pytest.raises(InputError, match="zip bomb") as err:
        _load(kind, path, no_reader)
    message = str(err.value)
    assert str(path) in message and f"'{member}.npy'" in message and "limit" in message


@pytest.mark.parametrize("kind", ["index", "codes", "items"])
def test_npy_header_declaring_more_than_its_member_holds_is_refused(tmp_path, kind, no_reader):
    fmt, arrays = _fields(kind)
    member = "ids" if kind == "items" else "codes"
    arrays[member] = _stored(f"{member}.npy", _header((10**12, 2)) + bytes(8))
    path = _npz(tmp_path / _name(kind), fmt, **arrays)
    with pytest.raises(InputError, match=r"declares shape \(1000000000000, 2\) of uint8") as err:
        _load(kind, path, no_reader)
    assert str(path) in str(err.value) and "holds 8 bytes" in str(err.value)


def test_npz_with_other_compression_or_too_many_members_is_refused(tmp_path, no_reader):
    fmt, arrays = _fields("index")
    name, data, size, crc, _ = _stored("codes.npy", _npy(arrays["codes"]))
    path = _npz(tmp_path / "index.npz", fmt, **{**arrays, "codes": (name, data, size, crc, 14)})
    with pytest.raises(InputError, match="compression method 14; expected stored or deflated"):
        HammingIndex.load(path)
    many = {f"x{i}": _stored(f"x{i}.npy", _npy(i)) for i in range(70)}
    path = _npz(tmp_path / "index.npz", fmt, **arrays, **many)
    with pytest.raises(InputError, match="holds 74 zip members, expected at most 64"):
        HammingIndex.load(path)


def test_packed_npy_declaring_more_codes_than_it_holds_is_an_input_error(tmp_path):
    path = tmp_path / "gallery.npy"
    path.write_bytes(_header((10**9, 2)) + bytes(20))
    with pytest.raises(InputError, match="gallery.npy: not a readable packed codes .npy"):
        MappedHammingIndex(path, bits=12)


# ---- 3. fields of the wrong form --------------------------------------------------------


@pytest.mark.parametrize("kind", ["index", "codes", "items"])
@pytest.mark.parametrize(
    "bits", [np.array([12, 48]), np.array(12.0), np.array("12"), np.array(True)]
)
def test_bits_that_is_not_one_integer_names_the_file(tmp_path, kind, bits):
    fmt, arrays = _fields(kind)
    path = _npz(tmp_path / _name(kind), fmt, **{**arrays, "bits": bits})
    with pytest.raises(InputError, match="'bits' must be a single integer") as err:
        _load(kind, path)
    assert str(path) in str(err.value)


def test_format_version_that_is_not_one_integer_names_the_file(tmp_path):
    fmt, arrays = _fields("index")
    path = _npz(tmp_path / "index.npz", fmt, **arrays)
    members = [_stored("format.npy", _npy(np.array(fmt))), _stored("format_version.npy", _npy([1]))]
    members += [_stored(f"{k}.npy", _npy(v)) for k, v in arrays.items()]
    _write_zip(path, members)
    with pytest.raises(InputError, match="index.npz: 'format_version' must be a single integer"):
        HammingIndex.load(path)


@pytest.mark.parametrize("bits", [0, -3])
def test_bits_that_is_not_positive_names_the_file(tmp_path, bits):
    fmt, arrays = _fields("index")
    path = _npz(tmp_path / "index.npz", fmt, **{**arrays, "bits": bits})
    with pytest.raises(
        InputError, match=f"index.npz: 'bits' must be a positive integer, got {bits}"
    ):
        HammingIndex.load(path)


def test_codes_that_do_not_fit_bits_name_the_file(tmp_path):
    fmt, arrays = _fields("index")
    path = _npz(tmp_path / "index.npz", fmt, **{**arrays, "bits": 48})
    with pytest.raises(InputError, match="index.npz: 'codes': expected 6 bytes per packed 48-bit"):
        HammingIndex.load(path)


# ---- 4. index_items.npz that does not fit its index or data set ----------------------------


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"labels": np.arange(3)}, "'ids' 4, 'labels' 3"),
        ({"labels": np.array(1)}, "'labels' must have 1 or 2 dimension"),
        ({"ids": np.array([["a", "b"], ["c", "d"]])}, "'ids' must have 1 dimension"),
    ],
)
def test_items_whose_labels_do_not_fit_the_ids_name_the_file(tmp_path, change, expected):
    fmt, arrays = _fields("items")
    path = _npz(tmp_path / gallery_index.ITEMS_FILE, fmt, **{**arrays, **change})
    with pytest.raises(InputError, match=expected) as err:
        _load("items", path)
    assert str(path) in str(err.value) and "rol-hashing index" in str(err.value)


@pytest.mark.parametrize(
    ("ids", "words"), [(["a", "b", "a", "d"], "repeat"), ([0, 1, 2, 3], "are not strings")]
)
def test_items_with_repeated_or_non_string_ids_name_the_file(tmp_path, ids, words):
    """Ids the data set lacks are found by the freshness check before a search, which
    rebuilds the index (``tests/test_index_freshness.py``); the loader itself refuses
    ids that cannot be a gallery's."""
    fmt, arrays = _fields("items")
    path = _npz(tmp_path / gallery_index.ITEMS_FILE, fmt, **{**arrays, "ids": np.array(ids)})
    with pytest.raises(InputError, match=f"the gallery ids {words}") as err:
        _load("items", path)
    assert str(path) in str(err.value) and "rol-hashing index" in str(err.value)


# ---- 5. a huge query image is decoded at the size the model needs ---------------------------


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    """A 6000x6000 RGB PNG of one colour: a few hundred KB on disk, 108 MB decoded."""
    path = tmp_path_factory.mktemp("query") / "huge.png"
    Image.new("RGB", (6000, 6000), (200, 30, 90)).save(path, compress_level=1)
    return path


def test_query_is_shrunk_before_it_becomes_float(huge_png, monkeypatch):
    seen = {}
    real = query.preprocess_image

    def spy(image, input_size):
        seen["decoded"] = np.shape(image)
        assert max(np.shape(image)[:2]) < 2048, "full-size image reached the float steps"
        return real(image, input_size)

    def fake_encode(model, batches, bits, verbose):
        seen["input"] = batches[0][0].shape
        return SimpleNamespace(codes=np.zeros((1, bits), bool))

    monkeypatch.setattr(query, "preprocess_image", spy)
    monkeypatch.setattr(query, "encode", fake_encode)
    query.encode_image(None, huge_png, input_size=224, bits=12)
    assert seen["decoded"] == (1200, 1200, 3)  # 6000 / 5: each side at least 4 x 256
    assert seen["input"] == (1, 224, 224, 3)


def test_strip_query_thumbnail_is_decoded_small(huge_png, tmp_path, monkeypatch):
    seen = {}

    class StopError(Exception):
        pass

    def plot(query, thumbs, thumb_inches):
        seen["query"] = query.shape
        raise StopError

    monkeypatch.setattr(strip.viz, "plot_search_strip", plot)
    record = DatasetRecord("toy", ["x"], np.zeros(1, np.int64), ["a"], tmp_path, paths=["a"])
    with pytest.raises(StopError):
        strip.write_strip_png(huge_png, [], record, tmp_path / "strip.png")
    assert max(seen["query"][:2]) < 1024  # 6000 / 11: at least 512 a side


def test_decode_image_min_size_keeps_small_images_and_drafts_jpegs(tmp_path):
    rng = np.random.default_rng(0)
    small = (rng.random((300, 500, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).save(tmp_path / "small.png")
    assert np.array_equal(decode_image(tmp_path / "small.png", min_size=256), small)
    Image.new("RGB", (3000, 2000), (10, 20, 30)).save(tmp_path / "big.jpg", quality=90)
    shrunk = decode_image(tmp_path / "big.jpg", min_size=256)
    assert shrunk.shape == (500, 375, 3)  # DCT-scaled to 750x500 while decoding, then / (2, 1)
    assert np.abs(shrunk.astype(int) - (10, 20, 30)).max() <= 3
