"""One served run: its model, index and gallery record loaded once; searches by an
uploaded image or by a gallery id, ranked exactly as ``rol-hashing search`` ranks them.

Encoding and the Hamming search run under one lock per run: Keras models and the numba
index are not made for concurrent calls from several request threads.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rol_hashing import __version__, viz
from rol_hashing.data.images import decode_image
from rol_hashing.data.pipeline import load_rgb, preprocess_image, resize_and_crop
from rol_hashing.errors import InputError
from rol_hashing.models import reliability_mask
from rol_hashing.retrieval.encode import load_run_model, stream_of
from rol_hashing.retrieval.gallery_index import check_top, fresh_index
from rol_hashing.retrieval.query import decode_query, encode_pixels, query_label
from rol_hashing.retrieval.results import SearchResult
from rol_hashing.retrieval.search import check_searchable, rank
from rol_hashing.training.layout import check_split_parts, open_hashing_run

THUMB_SIDE = 160
THUMB_CACHE = 2048  # thumbnails kept in memory (PNG bytes), least recently used dropped


class UnknownIdError(InputError):
    """An id that is not one of the served gallery's images."""


@dataclass
class RunService:
    """A loaded run (``load``): search it with ``search_pixels`` (an upload, decoded by
    ``decode_upload``) or ``search_id``. ``lock`` guards the model and the index;
    ``_thumbs_lock`` only the thumbnail cache, so thumbnails never wait for an encoding."""

    run: Any
    record: Any
    gallery: Any
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    _thumbs: OrderedDict = field(default_factory=OrderedDict)
    _thumbs_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._ids = frozenset(self.gallery.ids.tolist())  # what /thumbs/ and ids may name

    @classmethod
    def load(cls, run_dir: str | Path, verbose: int = 1) -> RunService:
        """Opens the run, builds its index when it is not fresh, loads its model.

        Raises:
            FileNotFoundError, InputError: as ``rol-hashing search`` does.
        """
        run = open_hashing_run(run_dir)
        check_searchable(run)
        _, record, split = run.load_data()
        check_split_parts(split, run.split)
        gallery = fresh_index(run, record, split, verbose)
        model = load_run_model(run, len(record.class_names))
        return cls(run, record, gallery, model)

    @property
    def method(self) -> str:
        return self.run.method

    @property
    def input_size(self) -> int:
        return int(self.run.config.model.input_size)

    def health(self) -> dict[str, Any]:
        """What is served: the run, method, code length, gallery size, the version."""
        return {
            "run": self.run.name,
            "method": self.method,
            "bits": self.run.bits,
            "dataset": self.run.config.dataset,
            "gallery": len(self.gallery),
            "classes": list(self.record.class_names),
            "version": __version__,
        }

    def check_top(self, top_k: object) -> int:
        """``top_k`` as an int in 1..gallery size (a form field's text allowed)."""
        if isinstance(top_k, str):
            try:
                top_k = int(top_k.strip())
            except ValueError:
                raise InputError(f"top_k must be a whole number, got {top_k!r}") from None
        return check_top(top_k, len(self.gallery))

    def decode_upload(self, data: bytes, name: str = "upload") -> np.ndarray:
        """An uploaded file's pixels, through the hardened query path (``decode_query``:
        formats, size and decompression-bomb checks), as one file of that name."""
        suffix = Path(name).suffix[:10] if Path(name).suffix.isascii() else ""
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                return decode_query(tmp.name, self.input_size)
            except InputError as err:  # name the upload, not the temporary file
                raise InputError(str(err).replace(tmp.name, repr(name))) from None

    def label_of(self, class_name: str | None) -> np.ndarray | None:
        """An upload's label from its class name (as ``search --label``); None: unknown."""
        if class_name is None or class_name == "":
            return None
        return query_label(self.record, "", class_name)

    def position_of(self, gallery_id: str) -> int:
        """The record position of a gallery id; UnknownIdError for any other string."""
        if gallery_id not in self._ids:
            raise UnknownIdError(f"{gallery_id[:120]!r} is not an image of the served gallery")
        return int(self.record.index_of([gallery_id])[0])

    def search_pixels(
        self, pixels: np.ndarray, top_k: int, label: np.ndarray | None = None
    ) -> list[SearchResult]:
        """The ``top_k`` nearest gallery items of decoded pixels (uint8 (H, W, 3))."""
        with self.lock:
            code = encode_pixels(self.model, pixels, self.input_size, self.run.bits)
            return rank(self.gallery, self.record, code, top_k, label)

    def pixels_of(self, gallery_id: str) -> np.ndarray:
        """A gallery image's pixels, decoded as the gallery decodes it."""
        return load_rgb(self.record, self.position_of(gallery_id), self.input_size)

    def mask_png(self, pixels: np.ndarray, side: int = 256) -> bytes:
        """A ROL run's reliability mask R of decoded pixels, over the model's view of the
        image (resized and centre-cropped as for encoding), as a PNG of ``side`` pixels.

        Raises:
            InputError: the run is not a ROL run.
        """
        if self.method != "rol":
            raise InputError(f"{self.run.name} is an SSDH run: only a ROL run has masks")
        x = preprocess_image(pixels, self.input_size)[None]
        view = np.asarray(resize_and_crop(pixels, self.input_size)).astype(np.uint8)
        with self.lock:
            probs = stream_of(self.model)(x, training=False)
            r = reliability_mask(probs, background_index=self.run.config.model.background_index)
        r = np.asarray(r)[0, ..., 0]
        tinted = Image.fromarray(viz.overlay(view, r), "RGB").resize((side, side), Image.BILINEAR)
        buffer = io.BytesIO()
        tinted.save(buffer, format="PNG")
        return buffer.getvalue()

    def search_id(self, gallery_id: str, top_k: int) -> list[SearchResult]:
        """Searches with a gallery image, decoded as the gallery decodes it; its label
        gives the relevance."""
        i = self.position_of(gallery_id)
        pixels = load_rgb(self.record, i, self.input_size)
        return self.search_pixels(pixels, top_k, np.asarray(self.record.labels[i]))

    def thumbnail(self, gallery_id: str) -> bytes:
        """A gallery image as a PNG of at most ``THUMB_SIDE`` pixels a side."""
        i = self.position_of(gallery_id)
        with self._thumbs_lock:
            if gallery_id in self._thumbs:
                self._thumbs.move_to_end(gallery_id)
                return self._thumbs[gallery_id]
        if self.record.images is not None:
            pixels = np.ascontiguousarray(self.record.images[i])
        else:
            pixels = decode_image(self.record.paths[i], min_size=THUMB_SIDE)
        image = Image.fromarray(pixels, "RGB")
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
        with self._thumbs_lock:
            self._thumbs[gallery_id] = data
            while len(self._thumbs) > THUMB_CACHE:
                self._thumbs.popitem(last=False)
        return data


def result_json(result: SearchResult, thumb_url: str) -> dict[str, Any]:
    """One result as the API returns it."""
    return {
        "rank": result.rank,
        "id": result.id,
        "distance": result.distance,
        "relevant": result.relevant,
        "thumb": thumb_url,
    }


def load_services(run_dir: str | Path, compare: str | Path | None = None) -> dict[str, RunService]:
    """``{method: RunService}`` of the run and, with ``compare``, a second run of the same
    gallery and another method (SSDH beside ROL: the paper's Fig. 3, live)."""
    main = RunService.load(run_dir)
    services = {main.method: main}
    if compare is not None:
        other = RunService.load(compare)
        if other.method == main.method:
            raise InputError(
                f"--compare {compare} is a {other.method!r} run like {run_dir}; give the "
                "other method's run (SSDH beside ROL)"
            )
        if other.gallery.ids.tolist() != main.gallery.ids.tolist():
            raise InputError(
                f"--compare {compare} searches another gallery than {run_dir}; give a run of "
                "the same data set and split"
            )
        services[other.method] = other
    return services
