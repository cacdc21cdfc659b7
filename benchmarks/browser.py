"""The system's headless Chromium (Debian's ``chromium`` and ``chromium-driver``) under
Selenium, for the serve page's browser test and its screenshot."""

from __future__ import annotations

import shutil


def headless_chromium(width: int = 1400, height: int = 1000):
    """A Selenium driver of the system Chromium, headless, at ``width`` x ``height``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
