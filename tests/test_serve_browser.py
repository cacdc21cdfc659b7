"""The page of ``rol-hashing serve`` in a real browser (headless Chromium driven by
Selenium): upload an image, wait for the grid, check ranks and frames against the API,
then click a result and check the search by id (issue 24).

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them;
``make test-extras`` does, then runs this file) and ``selenium`` (requirements.txt);
``make test`` runs it where the browser is installed and skips it, saying why, elsewhere.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="selenium not installed (make test-extras)")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (make test-extras)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from benchmarks.browser import headless_chromium  # noqa: E402
from rol_hashing.data.splits import load_split  # noqa: E402
from rol_hashing.serve.app import create_app  # noqa: E402
from rol_hashing.serve.service import load_services  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_runs, tmp_path_factory):
    """(base URL, app, runs, record): the tiny ROL and SSDH runs served on 127.0.0.1."""
    base = tmp_path_factory.mktemp("browser")
    runs = {m: Path(shutil.copytree(tiny_runs["runs"][m], base / m)) for m in ("rol", "ssdh")}
    services = load_services(runs["rol"], runs["ssdh"])
    app = create_app(services)
    port = _free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", app, runs, services["rol"].record
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def _grid(driver) -> dict[str, list[tuple[int, str, int, str]]]:
    """Each method's grid as shown: (rank, id, distance, frame class)."""
    out = {}
    for grid in driver.find_elements(By.CSS_SELECTOR, ".grid"):
        out[grid.get_attribute("data-method")] = [
            (
                int(f.get_attribute("data-rank")),
                f.get_attribute("data-id"),
                int(f.get_attribute("data-distance")),
                f.get_attribute("class") or "",
            )
            for f in grid.find_elements(By.TAG_NAME, "figure")
        ]
    return out


def _frame(relevant) -> str:
    return {True: "relevant", False: "irrelevant", None: ""}[relevant]


def _wait_done(driver) -> None:
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done"
    )


def test_upload_then_click_a_result(server, browser):
    url, app, runs, record = server
    split = load_split(runs["rol"] / "split.json", record)
    image = Path(record.paths[record.index_of([split.query[0]])[0]])
    browser.get(url + "/")
    WebDriverWait(browser, 30).until(
        lambda d: "gallery images" in d.find_element(By.ID, "served").text
    )
    browser.find_element(By.ID, "topk").clear()
    browser.find_element(By.ID, "topk").send_keys("6")
    browser.find_element(By.ID, "file").send_keys(str(image))
    _wait_done(browser)
    shown = _grid(browser)
    mask = browser.find_element(By.ID, "query-mask")  # a ROL run is served: its R is shown
    assert browser.execute_script("return arguments[0].naturalWidth", mask) == 256
    client = app.test_client()
    with open(image, "rb") as f:
        api = client.post(
            "/api/search",
            data={"image": (f, image.name), "top_k": "6"},
            content_type="multipart/form-data",
        ).get_json()["results"]
    assert set(shown) == {"rol", "ssdh"}
    for method, results in api.items():
        assert shown[method] == [
            (r["rank"], r["id"], r["distance"], _frame(r["relevant"])) for r in results
        ]
    # clicking the first ROL result searches with it: relevance is known, frames follow it
    first = api["rol"][0]["id"]
    browser.execute_script("document.body.dataset.state = 'waiting'")
    browser.find_element(
        By.CSS_SELECTOR, f'.grid[data-method="rol"] figure[data-id="{first}"]'
    ).click()
    _wait_done(browser)
    clicked = _grid(browser)
    api = client.post(
        "/api/search", data={"id": first, "top_k": "6"}, content_type="multipart/form-data"
    ).get_json()["results"]
    for method, results in api.items():
        assert clicked[method] == [
            (r["rank"], r["id"], r["distance"], _frame(r["relevant"])) for r in results
        ]
        assert {c for *_, c in clicked[method]} <= {"relevant", "irrelevant"}
    assert clicked["rol"][0][2] == 0  # the image itself, at distance 0
