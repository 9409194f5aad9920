"""The loops page (``index.html`` of generate / vary / fit) in a real headless Chromium, from file:// and http.

Same harness as ``test_browser.py``: Debian's /usr/bin/chromium and the playwright package; skips without them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import browser_harness
from loopgen.book.audio import fluidsynth_available
from loopgen.musician import page

pytestmark = pytest.mark.browser
browser_harness.require()


@pytest.fixture(scope="module")
def loops_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "my loops"
    half = (np.random.default_rng(2).random((64, 93)) < 0.04).astype(np.uint8)
    loops = np.stack([np.concatenate([half, half]), np.concatenate([half, half[::-1]])])
    page.add_loops(out, loops, [{"seed": 1, "index": 0}, {"seed": 1, "index": 1}], prefix="vq_vae", run={},
                   with_stems=True)
    return out


@pytest.fixture(scope="module")
def browser():
    with browser_harness.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(loops_dir):
    with browser_harness.serve(loops_dir) as url:
        yield url


def _check(page_, errors) -> None:
    assert page_.locator("figure.loop").count() == 2
    widths = page_.eval_on_selector_all("figure.loop img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert all(w and w > 100 for w in widths)  # every pianoroll PNG loaded
    scores = [float(t) for t in page_.locator("figure.loop .loopability").all_inner_texts()]
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores) and 1.0 in scores  # loop 0 repeats exactly
    assert page_.locator("a.mid").count() == 2
    if fluidsynth_available():
        assert page_.locator("audio").count() == 2 and page_.locator("a.wav-bass").count() == 2
    assert not errors


@pytest.mark.parametrize("how", ["file", "http"])
def test_loops_page_shows_every_loop_and_its_files_resolve(browser, loops_dir, server, how) -> None:
    context = browser.new_context()
    page_ = context.new_page()
    errors: list[str] = []
    page_.on("pageerror", lambda err: errors.append(str(err)))
    failed: list[str] = []
    page_.on("requestfailed", lambda request: failed.append(request.url))
    page_.goto((loops_dir / "index.html").as_uri() if how == "file" else server)
    page_.wait_for_load_state("load")
    _check(page_, errors)
    if how == "http":
        for href in page_.eval_on_selector_all("a[download]", "links => links.map(a => a.href)"):
            assert page_.request.get(href).status == 200, href
        for src in page_.eval_on_selector_all("audio", "players => players.map(a => a.src)"):
            assert page_.request.get(src).status == 200, src
    assert not failed
    context.close()
