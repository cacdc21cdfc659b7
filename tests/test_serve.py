"""``rol-hashing serve``: every API route, every refused input, equality with
``rol-hashing search``, concurrent requests (issue 24)."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from rol_hashing.cli.main import build_parser
from rol_hashing.data.splits import load_split
from rol_hashing.retrieval.search import search_image
from rol_hashing.serve.app import create_app
from rol_hashing.serve.service import load_services


@pytest.fixture(scope="module")
def served(tiny_runs, tmp_path_factory):
    """(client, runs, record): the tiny ROL run served with the SSDH run beside it."""
    base = tmp_path_factory.mktemp("serve")
    runs = {m: Path(shutil.copytree(tiny_runs["runs"][m], base / m)) for m in ("rol", "ssdh")}
    services = load_services(runs["rol"], runs["ssdh"])
    app = create_app(services, max_upload=2**20)
    return app.test_client(), runs, services["rol"].record


def _gallery_file(runs, record, k: int = 0) -> tuple[str, Path]:
    gid = load_split(runs["rol"] / "split.json", record).gallery[k]
    return gid, Path(record.paths[record.index_of([gid])[0]])


def _query_file(runs, record) -> Path:
    qid = load_split(runs["rol"] / "split.json", record).query[0]
    return Path(record.paths[record.index_of([qid])[0]])


def _post(client, **form):
    return client.post("/api/search", data=form, content_type="multipart/form-data")


def _upload(path: Path, name: str | None = None):
    return (io.BytesIO(path.read_bytes()), name or path.name)


def test_health_names_each_run(served):
    client, runs, record = served
    body = client.get("/api/health").get_json()
    assert set(body["runs"]) == {"rol", "ssdh"}
    gallery = len(load_split(runs["rol"] / "split.json", record).gallery)
    for method, h in body["runs"].items():
        assert h["method"] == method and h["bits"] == 12 and h["gallery"] == gallery
        assert h["run"] == method and h["version"]


@pytest.mark.parametrize("method", ["rol", "ssdh"])
def test_an_upload_is_ranked_exactly_as_rol_hashing_search(served, method):
    client, runs, record = served
    image = _query_file(runs, record)
    label = image.parent.name  # the class folder: the class name
    form = {"image": _upload(image), "top_k": "7", "method": method, "label": label}
    body = _post(client, **form).get_json()
    expected = search_image(runs[method], image, top=7)
    got = body["results"][method]
    assert [(r["rank"], r["id"], r["distance"], r["relevant"]) for r in got] == [
        (r.rank, r.id, r.distance, r.relevant) for r in expected
    ]
    assert all(r["thumb"] == "/thumbs/" + r["id"] for r in got)


def test_a_gallery_id_searches_as_its_file_and_knows_relevance(served):
    client, runs, record = served
    gid, path = _gallery_file(runs, record)
    body = _post(client, id=gid, top_k="5").get_json()
    assert set(body["results"]) == {"rol", "ssdh"}  # both served runs, side by side
    for method, got in body["results"].items():
        expected = search_image(runs[method], path, top=5)
        assert [(r["id"], r["distance"], r["relevant"]) for r in got] == [
            (r.id, r.distance, r.relevant) for r in expected
        ]
        assert got[0]["distance"] == 0 and all(r["relevant"] is not None for r in got)


def test_thumbnails_only_for_gallery_ids(served):
    client, runs, record = served
    gid, _ = _gallery_file(runs, record)
    r = client.get(f"/thumbs/{gid}")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert max(Image.open(io.BytesIO(r.data)).size) <= 160
    query_id = load_split(runs["rol"] / "split.json", record).query[0]
    for bad in ("../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", query_id, "nope.jpg"):
        r = client.get(f"/thumbs/{bad}")
        assert r.status_code == 404 and "error" in r.get_json(), bad


def _bomb_png() -> bytes:
    """A valid PNG header declaring 60000 x 60000 pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("form", "status", "words"),
    [
        ({"top_k": "0"}, 400, "top must be a positive integer"),
        ({"top_k": "ten"}, 400, "top_k must be a whole number"),
        ({"top_k": "100000"}, 400, "is larger than the gallery"),
        ({"method": "dsh"}, 400, "method must be one of"),
        ({"id": "no/such.jpg"}, 404, "is not an image of the served gallery"),
        ({}, 400, "give one query"),
        ({"image": (io.BytesIO(b"not an image at all"), "x.jpg")}, 400, "'x.jpg'"),
        ({"image": (io.BytesIO(_bomb_png()), "bomb.png")}, 400, "'bomb.png'"),
        ({"image": (io.BytesIO(b"\0" * (2**20 + 10)), "big.jpg")}, 413, "larger than the limit"),
    ],
)
def test_bad_requests_are_one_line_4xx_and_the_server_keeps_running(served, form, status, words):
    client, runs, record = served
    if "id" not in form and "image" not in form and form:
        form = {**form, "id": _gallery_file(runs, record)[0]}
    r = _post(client, **form)
    assert r.status_code == status, r.data[:300]
    message = r.get_json()["error"]
    assert words in message and "\n" not in message
    assert client.get("/api/health").status_code == 200  # still serving


def test_concurrent_requests_give_the_same_answers(served):
    client, runs, record = served
    gids = [_gallery_file(runs, record, k)[0] for k in range(4)]
    alone = {g: _post(client, id=g, top_k="5").get_json()["results"] for g in gids}

    def ask(g: str):
        return g, served[0].application.test_client().post(
            "/api/search", data={"id": g, "top_k": "5"}, content_type="multipart/form-data"
        ).get_json()["results"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, gids * 6))
    assert all(results == alone[g] for g, results in answers)


def test_the_page_is_self_contained(served):
    client, _, _ = served
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "/api/search" in html and "http://" not in html and "https://" not in html


def test_serve_cli_defaults_to_localhost():
    args = build_parser().parse_args(["serve", "runs/x"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.compare is None


def test_compare_refuses_a_run_of_the_same_method(tiny_runs):
    from rol_hashing.errors import InputError

    run = tiny_runs["runs"]["ssdh"]
    with pytest.raises(InputError, match="is a 'ssdh' run like"):
        load_services(run, run)


def test_the_rol_mask_of_a_query(served, tiny_runs):
    client, runs, record = served
    gid, path = _gallery_file(runs, record)
    r = client.post("/api/mask", data={"id": gid}, content_type="multipart/form-data")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert Image.open(io.BytesIO(r.data)).size == (256, 256)
    up = _post_mask(client, image=_upload(path))
    assert up.status_code == 200 and up.data == r.data  # the same file, the same mask
    assert _post_mask(client, id="no/such.jpg").status_code == 404
    ssdh_only = create_app(load_services(tiny_runs["runs"]["ssdh"])).test_client()
    refused = _post_mask(ssdh_only, id=gid)
    assert refused.status_code == 400 and "only a ROL run has masks" in refused.get_json()["error"]


def _post_mask(client, **form):
    return client.post("/api/mask", data=form, content_type="multipart/form-data")


def test_another_host_than_localhost_is_served_with_a_warning(tiny_runs, monkeypatch, capsys):
    import waitress

    from rol_hashing.cli.main import main

    seen = {}
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: seen.update(kw))
    assert main(["serve", str(tiny_runs["runs"]["ssdh"]), "--host", "0.0.0.0", "--port", "9"]) == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9
    assert "warning: serving on 0.0.0.0" in capsys.readouterr().err
    assert main(["serve", str(tiny_runs["runs"]["ssdh"])]) == 0
    assert seen["host"] == "127.0.0.1" and "warning" not in capsys.readouterr().err
