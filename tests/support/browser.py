"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for tests that look at a page."""
from __future__ import annotations

import contextlib
import shutil

import numpy as np
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags that keep Chromium off the network this machine does not have.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def open_page(url: str, size=(1280, 900)):
    """Yield a Playwright page showing ``url`` in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.goto(url)
            yield page
        finally:
            browser.close()


def screenshot(url: str, path, wait_for: str, settle_ms: int = 1500, size=(1280, 900)) -> int:
    """Open ``url``, wait (in real time) for ``wait_for`` to appear, screenshot to ``path``.

    Returns the number of elements matching ``wait_for``.
    """
    with open_page(url, size) as page:
        page.wait_for_selector(wait_for, timeout=30_000)
        page.wait_for_timeout(settle_ms)
        page.screenshot(path=str(path))
        return page.locator(wait_for).count()


def drawn_fraction(path, top: int = 0) -> float:
    """Fraction of pixels below ``top`` that differ from the page's background colour."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)[top:]
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(pixels - background).sum(axis=2) > 30).mean())
