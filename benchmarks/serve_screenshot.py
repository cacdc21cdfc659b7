"""A screenshot of ``rol-hashing serve``'s page after one search (for the README).

Against a running server (``make serve RUN=... COMPARE=...``): opens the page in headless
Chromium, uploads ``--image``, waits for the grid and saves ``--out``.

    python -m benchmarks.serve_screenshot --url http://127.0.0.1:8000 --image q.jpg \\
        --out docs/serve/page.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.browser import headless_chromium


def main(argv: list[str] | None = None) -> int:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--top-k", default="10")
    p.add_argument("--out", type=Path, default=Path("docs/serve/page.png"))
    args = p.parse_args(argv)
    driver = headless_chromium(1420, 1180)
    try:
        driver.get(args.url + "/")
        WebDriverWait(driver, 30).until(lambda d: "gallery" in d.find_element(By.ID, "served").text)
        box = driver.find_element(By.ID, "topk")
        box.clear()
        box.send_keys(args.top_k)
        driver.find_element(By.ID, "file").send_keys(str(args.image.resolve()))
        WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done"
        )
        first = driver.find_elements(By.CSS_SELECTOR, ".grid figure")[0]
        first.click()  # a gallery image as the query: relevance known, frames coloured
        WebDriverWait(driver, 60).until(
            lambda d: d.find_elements(
                By.CSS_SELECTOR, ".grid figure.relevant, .grid figure.irrelevant"
            )
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
