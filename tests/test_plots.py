"""Plots draw headless, label what they should, and save_fig writes a PNG and closes the figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from loopgen import CRASH, DRUM_NAMES, KICK  # noqa: E402
from loopgen.book import plots
from loopgen.store.paths import Paths  # noqa: E402


def _loop() -> np.ndarray:
    loop = np.zeros((128, 93), dtype=np.uint8)
    loop[0, [KICK, CRASH]] = 1
    loop[::4, 2] = 1
    loop[0:8, 9 + 36 - 24] = 1  # C2 (MIDI 36)
    loop[64:72, 9 + 43 - 24] = 1  # G2
    return loop


def test_pitch_name():
    assert plots.pitch_name(60) == "C4"
    assert plots.pitch_name(24) == "C1"
    assert plots.pitch_name(43) == "G2"


def test_pianoroll_labels_drums_and_bass_and_draws_bar_lines():
    ax = plots.pianoroll(_loop(), title="demo")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[: len(DRUM_NAMES)] == list(DRUM_NAMES)
    assert "C2" in labels  # the bass window fits C2..G2 with a margin
    image = ax.images[0].get_array()
    # 9 drum rows + 1 lane + bass rows 33..46 (36 - 3 .. 43 + 3) = 24 rows, 128 steps
    assert image.shape == (24, 128)
    assert image[0, 0] == 1 and image[6, 0] == 1  # kick and crash at step 0 (drum colour)
    assert image[10 + 36 - 33, 0] == 2  # C2 at step 0 (bass colour)
    bar_lines = [line for line in ax.get_lines() if line.get_linewidth() == pytest.approx(0.9)]
    assert len(bar_lines) == 9  # 8 bars -> 9 boundaries
    assert ax.get_title() == "demo"
    plt.close("all")


def test_pianoroll_of_an_empty_loop_and_a_fixed_range():
    ax = plots.pianoroll(np.zeros((128, 93)), pitch_range=(24, 47))
    assert ax.images[0].get_array().shape == (9 + 1 + 24, 128)
    plt.close("all")


def test_pianoroll_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        plots.pianoroll(np.zeros((64, 93)))


def test_contact_sheet_grid_and_titles():
    loops = np.stack([_loop()] * 5)
    fig = plots.contact_sheet(loops, titles=[f"t{i}" for i in range(5)], ncols=3)
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last one switched off
    assert [ax.get_title() for ax in fig.axes[:5]] == [f"t{i}" for i in range(5)]
    assert not fig.axes[5].axison
    plt.close(fig)
    with pytest.raises(ValueError, match="titles"):
        plots.contact_sheet(loops, titles=["only one"])


def test_code_map_plots_one_line_per_loop():
    codes = np.arange(3 * 32).reshape(3, 32) % 512
    ax = plots.code_map(codes)
    data_lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(data_lines) == 3
    assert data_lines[1].get_ydata().tolist() == codes[1].tolist()
    plt.close("all")


def test_save_fig_writes_png_and_closes(tmp_path):
    paths = Paths(tmp_path)
    fig, ax = plt.subplots()
    plots.pianoroll(_loop(), ax=ax)
    out = plots.save_fig(fig, "fig1_pianoroll.png", paths=paths)
    assert out == tmp_path / "figures" / "fig1_pianoroll.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["fig1_pianoroll.png"]
