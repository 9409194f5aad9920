"""What the browser tests share: Debian's Chromium driven by playwright, and a quiet local web server.

Needs /usr/bin/chromium and the playwright Python package (no ``playwright install``); :func:`require` skips the
calling module without them.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require() -> None:
    """Skip the calling test module when Chromium or playwright is missing."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the playwright Python package is not installed", allow_module_level=True)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser (playwright), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextlib.contextmanager
def serve(directory: Path | str) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
