"""The study page in a real headless Chromium: a listener rates every loop and downloads the CSV.

Needs Debian's /usr/bin/chromium and the playwright Python package (no `playwright install`).
The page logic does not depend on FluidSynth: the study is built without audio (MIDI links only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import browser_harness
from loopgen.book import listening

pytestmark = pytest.mark.browser

browser_harness.require()


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    groups = {g: rng.random((6, 128, 93)) < 0.02 for g in listening.GROUPS}
    return listening.build_study(
        groups,
        tmp_path_factory.mktemp("browser") / "study",
        per_group=2,
        familiarisation=2,
        seed=11,
        render_audio=False,
    )


@pytest.fixture(scope="module")
def server(study_dir):
    with browser_harness.serve(listening.StudyLayout(study_dir).site) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with browser_harness.chromium() as b:
        yield b


def rating_for(stimulus_id: str) -> int:
    """A deterministic rating per stimulus, so the CSV can be checked against what was clicked."""
    return int(stimulus_id[1:]) % 5 + 1


def _start(page, url: str, listener: str) -> None:
    page.goto(url)
    page.fill("#listener-id", listener)
    page.click("#start")


def test_a_listener_rates_every_stimulus_and_downloads_the_csv(browser, server, study_dir, tmp_path) -> None:
    ids = listening.stimulus_ids(study_dir)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    _start(page, server, "Tester 1")

    assert page.is_visible("#familiarise") and page.is_visible("#no-audio")
    assert page.locator("#familiar-list li").count() == 2
    page.click("#fam-continue")

    shown: list[str] = []
    for n in range(len(ids)):
        assert page.inner_text("#progress") == f"Loop {n + 1} of {len(ids)}"
        stimulus = page.get_attribute("#rate", "data-stimulus")
        assert page.is_disabled("#next")
        if n == 3:  # rate, go back, change the previous answer, come forward again
            page.click("#back")
            previous = page.get_attribute("#rate", "data-stimulus")
            assert previous == shown[-1] and page.is_checked(f"#rating-{rating_for(previous)}")
            page.click("#rating-1")
            page.click("#rating-" + str(rating_for(previous)))
            page.click("#next")
        shown.append(stimulus)
        page.click(f"#rating-{rating_for(stimulus)}")
        page.click("#next")

    assert page.is_visible("#done")
    assert page.inner_text("#download-name") == "ratings_Tester_1.csv"
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "ratings_Tester_1.csv"
    saved = listening.StudyLayout(study_dir).ratings / download.suggested_filename
    download.save_as(saved)
    context.close()

    assert not errors
    page_seed = json.loads(listening.StudyLayout(study_dir).stimuli_json.read_text())["seed"]
    assert shown == listening.listener_order(ids, "Tester 1", page_seed)  # the page and Python agree
    csv = pd.read_csv(saved, dtype={"stimulus_id": str, "listener_id": str})
    assert list(csv.columns) == ["listener_id", "stimulus_id", "rating"]
    assert sorted(csv["stimulus_id"]) == sorted(ids) and csv["stimulus_id"].is_unique
    assert (csv["listener_id"] == "Tester_1").all()
    assert csv.set_index("stimulus_id")["rating"].to_dict() == {sid: rating_for(sid) for sid in ids}

    ratings = listening.load_ratings(study_dir)  # the downloaded file goes straight into the analysis
    assert len(ratings) == len(ids) and not ratings["simulated"].any() and not len(ratings.attrs["rejected"])
    saved.unlink()


def test_progress_survives_a_reload(browser, server, study_dir) -> None:
    context = browser.new_context()
    page = context.new_page()
    _start(page, server, "resumer")
    page.click("#fam-continue")
    first = page.get_attribute("#rate", "data-stimulus")
    page.click("#rating-4")
    page.click("#next")
    second = page.get_attribute("#rate", "data-stimulus")
    page.reload()
    _start(page, server, "resumer")
    assert page.inner_text("#progress").startswith("Loop 2 of")
    assert page.get_attribute("#rate", "data-stimulus") == second
    page.click("#back")
    assert page.get_attribute("#rate", "data-stimulus") == first and page.is_checked("#rating-4")
    context.close()


def test_empty_listener_id_is_refused_and_js_order_matches_python(browser, server, study_dir) -> None:
    context = browser.new_context()
    page = context.new_page()
    _start(page, server, "  ")
    assert page.is_visible("#id-error") and page.is_visible("#intro")
    ids = listening.stimulus_ids(study_dir)
    for listener, seed in (("alice", 0), ("Bob-2", 7), ("émile", 3), ("x" * 60, 11)):
        js = page.evaluate(
            "([ids, l, s]) => window.loopgenStudy.listenerOrder(ids, l, s)", [ids, listener, seed]
        )
        assert js == listening.listener_order(ids, listener, seed)
    context.close()


def test_page_works_from_file_url(browser, study_dir) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(listening.StudyLayout(study_dir).index_html.as_uri())
    assert not page.is_visible("#load-error")
    page.fill("#listener-id", "offline")
    page.click("#start")
    assert page.is_visible("#familiarise")
    data = json.loads(listening.StudyLayout(study_dir).stimuli_json.read_text())
    page.click("#fam-continue")
    assert page.inner_text("#progress") == f"Loop 1 of {len(data['stimuli'])}"
    context.close()
