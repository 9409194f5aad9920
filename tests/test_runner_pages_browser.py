"""The executed notebooks' web pages in a real headless Chromium, served on localhost.

One test builds pages from a stand-in executed notebook (no kernel: seconds) in a folder and under names with
spaces, non-ASCII letters and HTML's special characters; the other opens the smoke run's own pages (the
session's ``smoke_run``, made once for the notebook tests too).
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

import browser_harness
from loopgen.run import pages as notebook_pages
from loopgen.run import runner
from loopgen.run.pages import PageRecord

pytestmark = pytest.mark.browser

browser_harness.require()


@pytest.fixture(scope="module")
def browser():
    with browser_harness.chromium() as b:
        yield b


def _open(browser, url: str):
    """A page on ``url`` that records page errors and every request that leaves localhost."""
    page = browser.new_page()
    page.problems = []
    page.on("pageerror", lambda err: page.problems.append(f"page error: {err}"))

    def check(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            page.problems.append(f"request outside localhost: {route.request.url}")
            route.abort()

    page.route("**/*", check)
    page.goto(url)
    page.wait_for_load_state("load")
    return page


def _images_loaded(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.complete ? e.naturalWidth : 0)")


def _audio_durations(page, selector: str) -> list[float]:
    """Load every player's sound and return its duration in seconds (0 where it did not load)."""
    return page.eval_on_selector_all(
        selector,
        """els => Promise.all(els.map(a => new Promise(done => {
            if (a.readyState >= 1) { done(a.duration); return; }
            a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
            a.addEventListener('error', () => done(0), {once: true});
            a.preload = 'metadata'; a.load();
            setTimeout(() => done(a.readyState >= 1 ? a.duration : 0), 10000);
        })))""",
    )


def test_stand_in_pages_with_awkward_names(browser, tmp_path):
    from test_runner_pages import _executed_notebook

    html_dir = tmp_path / "pages ü & co" / "html"
    ok = PageRecord("01 Größe & <b>bold.ipynb", "01_extract_loops.ipynb", {"PROFILE": "smoke"}, "ok", 3.5)
    notebook_pages.export_page(_executed_notebook(tmp_path / "nb.ipynb"), html_dir, ok)
    failed = PageRecord("02 ünfinished.ipynb", "02_x.ipynb", {}, "failed", 1.0, error="RuntimeError: <no> & more")
    never = PageRecord("03 later.ipynb", "03_x.ipynb")
    notebook_pages.write_index(html_dir, [ok, failed, never], profile="smoke")

    with browser_harness.serve(html_dir) as url:
        page = _open(browser, url + "index.html")
        rows = page.locator("#runs tbody tr")
        assert rows.count() == 3
        assert page.inner_text("#runs tbody tr:nth-child(1) td.name") == "01 Größe & <b>bold"
        assert page.locator("#runs b").count() == 0, "a name's markup must show as text, not as markup"
        assert [page.get_attribute(f"#runs tbody tr:nth-child({n})", "data-status") for n in (1, 2, 3)] == [
            "ok", "failed", "not run"
        ]
        assert "RuntimeError: <no> & more" in page.inner_text("#runs tbody tr:nth-child(2) td.status")
        assert page.inner_text("#runs tbody tr:nth-child(1) td.time") == "3.5 s"
        assert all(w > 0 for w in _images_loaded(page, "td.figures img")) and page.locator("td.figures img").count() == 1
        assert all(d > 0.9 for d in _audio_durations(page, "td.audio audio")), "the 1-second sound must load"

        page.click("#runs tbody tr:nth-child(1) td.name a")
        page.wait_for_load_state("load")
        assert "01%20Gr%C3%B6%C3%9Fe%20%26%20%3Cb%3Ebold.html" in page.url, page.url
        assert "A stand-in notebook: Größe & friends" in page.inner_text("h1")
        assert page.locator("img").count() == 1 and all(w > 0 for w in _images_loaded(page, "img"))
        assert page.locator("audio").count() == 1 and all(d > 0.9 for d in _audio_durations(page, "audio"))
        assert not page.problems, page.problems


@pytest.mark.notebooks
def test_the_smoke_runs_pages(browser, smoke_run):
    """Every notebook of the smoke run has a page with its figures loaded; the index says ok and the time."""
    assert smoke_run.returncode == 0, f"the smoke run failed:\n{smoke_run.log_tail}"
    html_dir = smoke_run.root / "build" / "executed" / "smoke" / runner.HTML_DIR
    plan = runner.plan("smoke")
    with browser_harness.serve(html_dir) as url:
        index = _open(browser, url + "index.html")
        rows = index.locator("#runs tbody tr")
        assert rows.count() == len(plan)
        statuses = index.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.status)")
        assert statuses == ["ok"] * len(plan), statuses
        times = index.eval_on_selector_all("td.time", "cells => cells.map(c => c.textContent)")
        assert all(t.endswith(" s") and float(t[:-2]) > 0 for t in times), times
        thumbnails = _images_loaded(index, "td.figures img")
        assert thumbnails and all(w > 0 for w in thumbnails), thumbnails
        players = index.locator("td.audio audio").count()
        assert all(d > 0 for d in _audio_durations(index, "td.audio audio")), "every sound on the index must load"
        links = index.eval_on_selector_all("td.name a", "links => links.map(a => a.getAttribute('href'))")
        assert len(links) == len(plan)
        assert not index.problems, index.problems
        index.close()
        figures_seen = 0
        for link in links:
            page = _open(browser, url + link)
            widths = _images_loaded(page, ".jp-OutputArea-output img")
            assert all(w > 0 for w in widths), (link, widths)
            figures_seen += len(widths)
            assert page.locator(".jp-Cell").count() > 3, link
            assert not page.problems, (link, page.problems)
            page.close()
        assert figures_seen == len(thumbnails), "the index shows every figure of every page"
    print(f"smoke pages: {len(links)} notebooks, {figures_seen} figures, {players} audio players on the index")
