"""The Flask application of ``rol-hashing serve``: the API and the page.

Routes:
    GET  /api/health      what is served (each run: method, bits, gallery size; version)
    POST /api/search      multipart ``image`` (an upload) or form field ``id`` (a gallery
                          image); ``top_k`` (default 10); ``method`` to ask one of two
                          served runs; ``label`` (a class name) gives an upload's
                          relevance. JSON: ``{"query", "top_k", "results": {method: [...]}}``
    POST /api/mask        the ROL run's mask R of the same query over its view, as a PNG
    GET  /thumbs/<id>     a gallery image as a small PNG (only the gallery's own ids)
    GET  /                the page: drop or pick an image, see the top k as a grid

Every refusal is a 4xx with ``{"error": "<one line>"}``; the server keeps running.
Flask (a sync WSGI framework, its test client built in) fits a model whose calls block.
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from rol_hashing.data.images import ImageError
from rol_hashing.errors import InputError, one_line
from rol_hashing.serve.service import RunService, UnknownIdError, result_json

MAX_UPLOAD_BYTES = 20 * 2**20
DEFAULT_TOP_K = 10


def create_app(services: dict[str, RunService], max_upload: int = MAX_UPLOAD_BYTES) -> Flask:
    """The application over ``services`` (method -> loaded run; one or two)."""
    if not services:
        raise InputError("serve needs at least one run")
    app = Flask("rol_hashing.serve")
    app.config["MAX_CONTENT_LENGTH"] = max_upload
    first = next(iter(services.values()))

    def error(status: int, message: str):
        return jsonify({"error": one_line(message, 300)}), status

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err):
        return error(413, f"the upload is larger than the limit of {max_upload // 2**20} MiB")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return error(err.code or 400, err.description or err.name)

    @app.get("/api/health")
    def health():
        return jsonify({"runs": {m: s.health() for m, s in services.items()}})

    @app.post("/api/search")
    def search():
        try:
            asked = request.form.get("method")
            if asked is not None and asked not in services:
                raise InputError(f"method must be one of {sorted(services)}, got {asked[:40]!r}")
            chosen = {asked: services[asked]} if asked else services
            top_k = first.check_top(request.form.get("top_k", str(DEFAULT_TOP_K)))
            upload, gallery_id = _one_query()
            out: dict[str, Any] = {}
            if upload is not None:
                data = upload.read()
                name = upload.filename or "upload"
                query = {"upload": name[:200]}
                label = first.label_of(request.form.get("label"))
                decoded: dict[int, Any] = {}  # one decode per input size, not per run
                for method, service in chosen.items():
                    if service.input_size not in decoded:
                        decoded[service.input_size] = service.decode_upload(data, name)
                    out[method] = service.search_pixels(decoded[service.input_size], top_k, label)
            else:
                query = {"id": gallery_id, "thumb": _thumb_url(gallery_id)}
                for method, service in chosen.items():
                    out[method] = service.search_id(gallery_id, top_k)
        except UnknownIdError as err:
            return error(404, str(err))
        except (InputError, ImageError) as err:
            return error(400, str(err))
        return jsonify(
            {
                "query": query,
                "top_k": top_k,
                "results": {
                    m: [result_json(r, _thumb_url(r.id)) for r in results]
                    for m, results in out.items()
                },
            }
        )

    @app.post("/api/mask")
    def mask():
        rol = services.get("rol")
        try:
            if rol is None:
                raise InputError("no ROL run is served: only a ROL run has masks")
            upload, gallery_id = _one_query()
            if upload is not None:
                pixels = rol.decode_upload(upload.read(), upload.filename or "upload")
            else:
                pixels = rol.pixels_of(gallery_id)
            data = rol.mask_png(pixels)
        except UnknownIdError as err:
            return error(404, str(err))
        except (InputError, ImageError) as err:
            return error(400, str(err))
        return Response(data, mimetype="image/png")

    @app.get("/thumbs/<path:gallery_id>")
    def thumb(gallery_id: str):
        try:
            data = first.thumbnail(gallery_id)
        except UnknownIdError as err:
            return error(404, str(err))
        return Response(data, mimetype="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/")
    def page():
        html = resources.files("rol_hashing.serve").joinpath("page.html").read_text("utf-8")
        return Response(html, mimetype="text/html")

    return app


def _one_query():
    """The request's query: ``(upload, None)`` or ``(None, gallery id)``; InputError for
    neither or both."""
    upload, gallery_id = request.files.get("image"), request.form.get("id")
    if (upload is None) == (gallery_id is None):
        raise InputError("give one query: an 'image' upload or a gallery 'id'")
    return upload, gallery_id


def _thumb_url(gallery_id: str) -> str:
    return "/thumbs/" + quote(gallery_id, safe="/")
