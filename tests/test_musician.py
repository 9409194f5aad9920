"""Issue 12 (and issue 15 item 3): vary, loopability, DAW-ready export, fit, index.html, reruns of generate.

One session-scoped tmp root holds a tiny demo corpus and smoke-profile models, made by ``fit`` (so the same
models serve ``generate --from``, ``vary --from`` and the profile's own ``generate``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import mido
import numpy as np
import pretty_midi
import pypianoroll
import pytest

from loopgen import __main__ as entry
from loopgen import metrics
from loopgen.data.corpus import write_demo_corpus
from loopgen.data.dataset import dataset_dir, load_loops
from loopgen.data.extract import extract_file
from loopgen.data.midi import read_notes
from loopgen.data.midi.write import DRUM_PITCHES, write_loop_midi
from loopgen.loops import find_loops, song_roll
from loopgen.musician import draws, fit, generate, loopfile, page, trained, variation
from loopgen.run import profiles
from loopgen.store.paths import Paths
from midi_build import write_song

NAME = "tiny"


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    """A tmp project root: a 24-song demo corpus, fitted as NAME at the smoke profile, and the same models
    under the smoke profile's own dataset name (for ``generate`` without ``--from``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("musician_root")
    paths = Paths(root)
    profile = profiles.get("smoke")
    corpus = write_demo_corpus(paths.corpus_dir(profile.corpus.name), n_songs=24, seed=0, progress=False)
    fit.fit(corpus, NAME, profile=profile, paths=paths, progress=False)
    # the profile's own dataset = the same loops, so generate --profile smoke finds trained models too
    profile_dir = dataset_dir(paths, profile.corpus.name)
    profile_dir.parent.mkdir(parents=True, exist_ok=True)
    profile_dir.symlink_to(paths.user_loops_dir(NAME), target_is_directory=True)
    torch.set_num_threads(threads)
    return root


@pytest.fixture
def project(root, monkeypatch) -> Paths:
    monkeypatch.setenv("LOOPGEN_ROOT", str(root))
    return Paths(root)


@pytest.fixture(scope="session")
def song_loop(root) -> loopfile.UserLoop:
    """A real training loop of the tiny corpus, as the extractor reads it."""
    data = load_loops(Paths(root).user_loops_dir(NAME))
    i = int(np.argmax(metrics.loopability(data.loops)))
    return loopfile.UserLoop(data.loops[i], 0, 8, "training loop")


def _roll_of(path: Path) -> np.ndarray:
    return song_roll(read_notes(path))


def _same_file_content(loop: np.ndarray, path: Path, tmp_path: Path) -> None:
    """``loop`` written as MIDI reads back as the file at ``path`` does (a smoke model's loops may have
    chords in the bass, which the extractor reduces to the lowest note, so compare what the files hold)."""
    again = write_loop_midi(loop, tmp_path / "again.mid")
    np.testing.assert_array_equal(_roll_of(again)[:128], _roll_of(path)[:128])
    assert mido.MidiFile(again).tracks[1:] == mido.MidiFile(path).tracks[1:]


# ------------------------------------------------------------------------------------------ loopability
def test_loopability_is_one_for_a_four_bar_repeat_and_lower_when_bar_8_breaks_it():
    rng = np.random.default_rng(0)
    half = (rng.random((64, 93)) < 0.05).astype(np.uint8)
    perfect = np.concatenate([half, half])
    broken = perfect.copy()
    broken[120:128] = 0  # bar 8 stops half-way: the wrap into bar 1 breaks
    changed = perfect.copy()
    changed[64:80] = 1 - changed[64:80]  # bar 5 is the negative of bar 1
    scores = metrics.loopability(np.stack([perfect, broken, changed, np.zeros_like(perfect)]))
    assert scores[0] == 1.0
    assert 0.5 < scores[1] < 1.0 and scores[2] == 0.5
    assert scores[3] == 0.0  # silence does not loop
    single = [metrics.loopability(x)[0] for x in (perfect, broken, changed)]
    np.testing.assert_allclose(single, scores[:3])


def test_training_loops_loop_better_than_noise(song_loop, root):
    data = load_loops(Paths(root).user_loops_dir(NAME))
    noise = (np.random.default_rng(1).random((32, 128, 93)) < 0.03).astype(np.uint8)
    assert metrics.loopability(data.loops).mean() > 0.8 > 0.2 > metrics.loopability(noise).mean()


# ------------------------------------------------------------------------------------------- DAW export
def test_daw_midi_has_named_tracks_tempo_meter_exact_length_and_reads_back(dev_midi_dir, tmp_path):
    song = next(p for p in sorted(dev_midi_dir.rglob("*.mid")) if len(extract_file(p).start_bars))
    loop = extract_file(song).loops[0]
    path = write_loop_midi(loop, tmp_path / "loop.mid", bpm=96.0, repeats=2)

    midi = mido.MidiFile(path)
    assert midi.type == 1 and midi.ticks_per_beat == 480
    names = [next(m.name for m in track if m.type == "track_name") for track in midi.tracks]
    assert names == ["loopgen loop", "Bass", "Drums"]
    metas = [m for track in midi.tracks for m in track if m.is_meta]
    assert [round(mido.tempo2bpm(m.tempo), 6) for m in metas if m.type == "set_tempo"] == [96.0]
    assert [(m.numerator, m.denominator) for m in metas if m.type == "time_signature"] == [(4, 4)]
    for track in midi.tracks:  # every track ends exactly at bar 16 (8 bars x 2 repeats)
        assert sum(m.time for m in track) == 2 * 128 * 120 and track[-1].type == "end_of_track"
    assert midi.length == pytest.approx(16 * 4 * 60 / 96)

    pm = pretty_midi.PrettyMIDI(str(path))
    bass, drums = pm.instruments
    assert (bass.name, bass.program, bass.is_drum) == ("Bass", 33, False) and (drums.name, drums.is_drum) == ("Drums", True)
    assert pm.get_tempo_changes()[1].tolist() == pytest.approx([96.0])
    assert max(n.end for i in pm.instruments for n in i.notes) <= 16 * 4 * 60 / 96 + 1e-9

    roll = _roll_of(path)  # extraction gets the same loop back, twice
    np.testing.assert_array_equal(roll[:128], loop)
    np.testing.assert_array_equal(roll[128:256], loop)
    assert 0 in find_loops(roll)
    again = extract_file(path)
    np.testing.assert_array_equal(again.loops[0], loop)


def test_npz_is_a_pypianoroll_multitrack_holding_the_loop(song_loop, tmp_path):
    path = loopfile.write_loop_npz(song_loop.loop, tmp_path / "loop.npz", bpm=96.0, repeats=2)
    multitrack = pypianoroll.load(path)
    assert multitrack.resolution == 4 and [t.name for t in multitrack.tracks] == ["Bass", "Drums"]
    assert [t.is_drum for t in multitrack.tracks] == [False, True] and multitrack.get_length() == 256
    np.testing.assert_array_equal(multitrack.tempo, 96.0)
    assert np.flatnonzero(multitrack.downbeat).tolist() == list(range(0, 256, 16))
    bass, drums = (t.pianoroll[:128] for t in multitrack.tracks)
    back = np.concatenate([drums[:, list(DRUM_PITCHES)], bass[:, 24:108]], axis=1).astype(np.uint8)
    np.testing.assert_array_equal(back, song_loop.loop)
    assert not bass[:, :24].any() and not bass[:, 108:].any()


def test_our_unique_pitches_agree_with_pypianoroll():
    """UP (distinct active columns) counted independently by pypianoroll on the exported Multitrack."""
    rng = np.random.default_rng(3)
    loops = (rng.random((6, 128, 93)) < rng.uniform(0.002, 0.05, (6, 1, 1))).astype(np.uint8)
    theirs = [
        sum(pypianoroll.n_pitches_used(t.pianoroll) for t in loopfile.loop_multitrack(loop).tracks) for loop in loops
    ]
    assert metrics.unique_pitch(loops) == pytest.approx(np.mean(theirs), abs=1e-12)


def test_stems_split_bass_and_drums(song_loop, tmp_path):
    parts = loopfile.stems(song_loop.loop)
    assert not parts["bass"][:, :9].any() and not parts["drums"][:, 9:].any()
    np.testing.assert_array_equal(parts["bass"] | parts["drums"], song_loop.loop)
    written = loopfile.write_wavs(song_loop.loop, tmp_path / "x", bpm=120, repeats=1, with_stems=True)
    from loopgen.book.audio import fluidsynth_available

    assert sorted(written) == (["bass", "drums", "mix"] if fluidsynth_available() else [])
    for p in written.values():
        assert p.stat().st_size > 10_000


# -------------------------------------------------------------------------------------------- reading
def _bar_notes(n_bars: int, bass: bool = True, drums: bool = True, meter=(4, 4)):
    bar = 480 * meter[0] * 4 // meter[1]
    song = {"time_signatures": ((0, *meter),)}
    if bass:
        song["bass"] = [(k * bar, k * bar + 240, 40) for k in range(n_bars)]
    if drums:
        song["drums"] = [(k * bar + q * 480, p) for k in range(n_bars) for q in range(meter[0]) for p in (36, 42)]
    return song


@pytest.mark.parametrize(
    ("song", "message"),
    [
        (_bar_notes(8, bass=False), "no usable bass"),
        (_bar_notes(8, drums=False), "no usable drums"),
        (_bar_notes(8, meter=(3, 4)), "not in 4/4"),
        (_bar_notes(5), "shorter than 8 bars"),
    ],
    ids=["no_bass", "no_drums", "meter", "short"],
)
def test_read_loop_refuses_with_one_line(tmp_path, song, message, capsys):
    path = write_song(tmp_path / "mine.mid", **song)
    with pytest.raises(loopfile.UserError, match=message):
        loopfile.read_loop(path)
    assert entry.main(["vary", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_read_loop_takes_an_8_bar_file_or_a_song_at_start_bar(tmp_path):
    path = write_song(tmp_path / "song.mid", **_bar_notes(12))
    assert loopfile.read_loop(path, start_bar=3).start_bar == 2
    with pytest.raises(loopfile.UserError, match="starts at bar 1..5"):
        loopfile.read_loop(path, start_bar=6)
    eight = write_song(tmp_path / "eight.mid", **_bar_notes(8))
    assert loopfile.read_loop(eight).loop.shape == (128, 93)


@pytest.mark.parametrize(
    "args", [["--regenerate-bars", "0-3"], ["--regenerate-bars", "6-2"], ["--keep-bars", "8"], ["--n", "0"],
             ["--keep-bars", "2", "--regenerate-bars", "3-8"], ["--min-loopability", "1.5"]]
)
def test_vary_refuses_bad_arguments_with_exit_2(tmp_path, args, capsys):
    path = write_song(tmp_path / "eight.mid", **_bar_notes(8))
    assert entry.main(["vary", str(path), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


# -------------------------------------------------------------------------------------------- vary
def test_vary_continuation_keeps_the_first_bars_bit_for_bit(root, song_loop):
    model = trained.load_vq(Paths(root), profiles.get("smoke"), NAME)
    result = variation.vary(song_loop.loop, model, 6, bars=(5, 8), temperature=1.5, seed=3)
    assert result.loops.shape == (6, 128, 93) and result.codes.shape == (6, 32)
    np.testing.assert_array_equal(result.loops[:, :64], np.broadcast_to(song_loop.loop[:64], (6, 64, 93)))
    assert (result.codes[:, :16] == result.original_codes[:16]).all()
    again = variation.vary(song_loop.loop, model, 6, bars=(5, 8), temperature=1.5, seed=3)
    np.testing.assert_array_equal(again.loops, result.loops)


def test_vary_a_middle_span_keeps_both_sides_and_its_tail_codes(root, song_loop):
    model = trained.load_vq(Paths(root), profiles.get("smoke"), NAME)
    result = variation.vary(song_loop.loop, model, 3, bars=(3, 4), temperature=2.0, seed=1, candidates=8)
    keep = variation.kept_steps((3, 4))
    assert keep.sum() == 96 and not keep[32:64].any()
    np.testing.assert_array_equal(result.loops[:, keep], np.broadcast_to(song_loop.loop[keep], (3, 96, 93)))
    assert (result.codes[:, 16:] == result.original_codes[16:]).all()  # the tail codes are the original's
    assert (result.codes[:, :8] == result.original_codes[:8]).all()
    assert result.tail_match.shape == (3,) and (np.diff(result.tail_match) <= 0).all()  # best matches first


def test_vary_cli_writes_original_variations_json_and_page(project, song_loop, tmp_path, capsys):
    song = tmp_path / "my_loop.mid"
    write_loop_midi(song_loop.loop, song)
    out = tmp_path / "vary"
    args = ["vary", str(song), "--from", NAME, "--n", "3", "--keep-bars", "4", "--seed", "5", "--out", str(out),
            "--no-wav"]
    assert entry.main(args) == 0
    printed = capsys.readouterr().out
    assert "seed 5" in printed
    index = json.loads((out / "loops.json").read_text())
    files = [e["file"] for e in index["loops"]]
    assert files == ["original_000.mid", "variation_000.mid", "variation_001.mid", "variation_002.mid"]
    for e in index["loops"][1:]:
        assert e["regenerate_bars"] == [5, 8] and e["seed"] == 5 and e["checkpoint_key"] and e["prior_key"]
        written = _roll_of(out / e["file"])[:128]
        np.testing.assert_array_equal(written[:64], song_loop.loop[:64])  # the user's bars, read back from MIDI
    np.testing.assert_array_equal(_roll_of(out / "original_000.mid")[:128], song_loop.loop)
    # remade exactly from what loops.json records
    e = index["loops"][2]
    model = trained.load_vq(project, profiles.get("smoke"), NAME)
    remade = variation.vary(song_loop.loop, model, e["batch"], bars=tuple(e["regenerate_bars"]),
                            temperature=e["temperature"], seed=e["seed"], candidates=e["candidates"])
    _same_file_content(remade.loops[e["index"]], out / e["file"], tmp_path)
    _check_page(out, n_loops=4)


def test_vary_on_a_file_whose_name_is_not_utf8(project, song_loop, tmp_path, capsys):
    """Issue 22: MIDI, NPZ, PNG and loops.json were written, then UnicodeEncodeError on index.html (exit 1)."""
    import os

    song = write_loop_midi(song_loop.loop, tmp_path / "plain.mid")
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9 loop.mid")  # Latin-1, as an old Windows collection has it
    os.rename(os.fsencode(song), odd)
    out = tmp_path / "odd"
    assert entry.main(["vary", os.fsdecode(odd), "--from", NAME, "--n", "2", "--seed", "3", "--out", str(out),
                       "--no-wav"]) == 0
    printed = capsys.readouterr().out
    assert "caf\\xe9 loop.mid" in printed
    page_text = (out / "index.html").read_bytes().decode("utf-8")  # strict UTF-8
    assert "Variations of caf\\xe9 loop.mid" in page_text
    index = json.loads((out / "loops.json").read_bytes().decode("utf-8"))
    assert index["loops"][0]["input"].endswith("caf\\xe9 loop.mid")
    assert all("\udce9" not in arg for arg in index["runs"][-1]["argv"])
    _check_page(out, n_loops=3)


def test_min_loopability_keeps_only_loops_above_it_or_says_why(project, song_loop, tmp_path, capsys):
    song = write_loop_midi(song_loop.loop, tmp_path / "mine.mid")
    out = tmp_path / "strict"
    assert entry.main(["vary", str(song), "--from", NAME, "--n", "2", "--min-loopability", "0.01", "--seed", "2",
                       "--out", str(out), "--no-wav"]) == 0
    scores = [e["loopability"] for e in json.loads((out / "loops.json").read_text())["loops"][1:]]
    assert len(scores) == 2 and min(scores) >= 0.01  # smoke models: 2 epochs, dense loops
    capsys.readouterr()
    assert entry.main(["generate", "--from", NAME, "--n", "2", "--min-loopability", "1", "--max-draws", "4",
                       "--seed", "0", "--out", str(tmp_path / "never"), "--no-wav"]) == 1  # no smoke loop repeats exactly
    err = capsys.readouterr().err
    assert err.startswith("error: only 0 of 2 loops reached loopability >= 1 in 4 draws")


def test_draw_until_draws_rounds_and_records_how_to_remake_each_loop():
    perfect = np.zeros((128, 93), dtype=np.uint8)
    perfect[::16, 0] = 1

    def draw(seed, n):  # every other draw loops perfectly, the others are silent
        return np.stack([perfect if (seed + i) % 2 == 0 else np.zeros_like(perfect) for i in range(n)])

    kept = draws.draw_until(draw, 5, seed=0, min_loopability=0.9)
    assert len(kept.loops) == 5 and kept.rounds >= 1
    for record in kept.records:
        np.testing.assert_array_equal(draw(record["seed"], record["batch"])[record["index"]], perfect)
    capped = draws.draw_until(lambda s, n: np.zeros((n, 128, 93), np.uint8), 3, seed=0, min_loopability=0.5,
                              max_draws=10)
    assert len(capped.loops) == 0 and capped.drawn == 10
    assert "only 0 of 3" in draws.shortfall_message(capped, 3, 0.5)


# ----------------------------------------------------------------------------------- generate (issue 15.3)
def test_two_generate_runs_keep_both_with_fresh_seeds_and_remakeable_loops(project, tmp_path, capsys):
    out = tmp_path / "g"
    for _ in range(2):
        assert entry.main(["generate", "--profile", "smoke", "--n", "3", "--out", str(out), "--no-wav"]) == 0
    printed = capsys.readouterr().out
    seeds = [int(s) for s in re.findall(r"seed (\d+)", printed)][::2]
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    index = json.loads((out / "loops.json").read_text())
    assert [r["seed"] for r in index["runs"]] == seeds
    files = [e["file"] for e in index["loops"]]
    assert files == [f"vq_vae_{i:03d}.mid" for i in range(6)] and sorted(p.name for p in out.glob("*.mid")) == files
    e = index["loops"][4]
    assert (e["run"], e["seed"], e["model"], e["temperature"]) == (1, seeds[1], "vq_vae", 1.2)
    assert e["checkpoint_key"] and e["prior_key"]
    loops = generate.generate_loops("vq_vae", e["batch"], profile=profiles.get("smoke"), paths=project,
                                    temperature=e["temperature"], seed=e["seed"])
    _same_file_content(loops[e["index"]], out / e["file"], tmp_path)
    assert entry.main(["generate", "--profile", "smoke", "--n", "2", "--seed", "7", "--out", str(out),
                       "--no-wav", "--model", "vq_vae"]) == 0
    assert "seed 7" in capsys.readouterr().out
    assert len(json.loads((out / "loops.json").read_text())["loops"]) == 8
    _check_page(out, n_loops=8)


# ----------------------------------------------------------------------------------------------- fit
def test_fit_registered_the_model_and_generate_from_uses_it(project, tmp_path, capsys):
    entry_ = trained.read_registry(project)[NAME]
    assert entry_["profile"] == "smoke" and entry_["extraction"]["files_scanned"] == 24
    assert fit.report_summary(entry_["extraction"]).startswith("24 files: ")
    out = tmp_path / "from"
    assert entry.main(["generate", "--from", NAME, "--n", "2", "--seed", "1", "--out", str(out), "--no-wav"]) == 0
    e = json.loads((out / "loops.json").read_text())["loops"][0]
    assert e["source"] == f"fit {NAME}" and e["checkpoint_key"] == trained.load_vq(project, profiles.get("smoke"), NAME).vq_key
    assert entry.main(["generate", "--from", "nobody", "--n", "1", "--out", str(out)]) == 1
    assert "no model called 'nobody'" in capsys.readouterr().err


def test_fit_cli_prints_the_extraction_summary_and_writes_a_page(project, dev_midi_dir, tmp_path, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    for p in sorted(dev_midi_dir.rglob("*.mid"))[:20]:  # real songs, linked in place (never copied)
        (songs / p.name).symlink_to(p)
    write_song(songs / "waltz.mid", **_bar_notes(16, meter=(3, 4)))
    out = tmp_path / "fit_page"
    code = entry.main(["fit", str(songs), "--name", "real", "--profile", "smoke", "--quiet", "--no-wav",
                       "--seed", "0", "--out", str(out)])
    captured = capsys.readouterr()
    assert "21 files: " in captured.out and "time_signature" in captured.out
    assert code == 0, captured.err  # eight of the first twenty real songs give 35 loops (fit needs 8 different)
    assert "real" in trained.read_registry(project) and "registered 'real'" in captured.out
    _check_page(out, n_loops=fit.PREVIEW_LOOPS)


def test_fit_without_any_loop_says_why_in_one_line(project, tmp_path, capsys):
    songs = tmp_path / "waltzes"
    songs.mkdir()
    write_song(songs / "waltz.mid", **_bar_notes(16, meter=(3, 4)))
    assert entry.main(["fit", str(songs), "--name", "none", "--profile", "smoke", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no loops" in err and "time_signature 1" in err and len(err.strip().splitlines()) == 1
    assert "none" not in trained.read_registry(project)


def _one_loop_song(folder: Path) -> Path:
    """``folder`` holding one 8-bar song that is exactly one loop (kick and crash on beat one, bass, hats)."""
    song = _bar_notes(8)
    song["drums"] = song["drums"] + [(k * 1920, 49) for k in range(8)]
    song["bass"] = [(k * 1920 + q * 480, k * 1920 + q * 480 + 240, 40 + q) for k in range(8) for q in range(4)]
    folder.mkdir(parents=True, exist_ok=True)
    path = write_song(folder / "one.mid", **song)
    assert len(extract_file(path).start_bars) == 1
    return folder


def test_fit_below_the_minimum_says_how_many_loops_are_needed(project, tmp_path, capsys):
    """Issue 22: one song giving 1 loop trained and registered a model without validation, without a word;
    and the summary said "1 gave 1 loops"."""
    songs = _one_loop_song(tmp_path / "one song")
    assert entry.main(["fit", str(songs), "--name", "single", "--profile", "smoke", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "1 file: 1 gave 1 loop; 0 without" in captured.out
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and f"needs at least {fit.MIN_LOOPS} different loops" in err
    assert "gives 1 different loop;" in err and f"'{songs}'" in err  # the path quoted (it holds a space)
    assert "single" not in trained.read_registry(project)
    assert not project.user_loops_dir("single").exists()  # nothing left behind


def test_copies_across_splits_are_counted_and_kept_out_of_validation(project, tmp_path, capsys):
    corpus = project.corpus_dir(profiles.get("smoke").corpus.name)
    songs = tmp_path / "copies"
    for copy in ("copy1", "copy2", "copy3"):  # three copies of one folder of our own demo songs
        (songs / copy).mkdir(parents=True)
        for song in sorted(corpus.glob("*.mid")):
            (songs / copy / song.name).write_bytes(song.read_bytes())
    assert entry.main(["fit", str(songs), "--name", "copies", "--profile", "smoke", "--quiet"]) == 1
    captured = capsys.readouterr()
    copies = re.search(r"(\d+) validation loops are copies of training loops .*kept out of validation", captured.out)
    assert copies and int(copies.group(1)) > 0, captured.out
    assert f"all {copies.group(1)} validation loops are copies of training loops" in captured.err
    assert not project.user_loops_dir("copies").exists()


def test_validation_loops_equal_to_training_loops_are_dropped():
    loops = np.zeros((6, 128, 93), dtype=np.uint8)
    for i in range(6):
        loops[i, i, 0] = 1
    loops[4] = loops[1]  # a validation loop that copies a training loop
    split = np.array(["train", "train", "train", "train", "val", "val"])
    train, val, copies, distinct = fit.split_without_copies(loops, split)
    assert len(train) == 4 and copies == 1 and distinct == 5
    np.testing.assert_array_equal(val, loops[5:6])


def test_a_failed_fit_leaves_nothing_that_blocks_the_next(project, tmp_path, capsys):
    """Issue 22: a fit giving 0 loops left data/loops/user-zero behind, and the next fit of another folder as
    'zero' was refused as "fitted on other MIDI files" though no model 'zero' was registered."""
    waltzes = tmp_path / "waltzes"
    waltzes.mkdir()
    write_song(waltzes / "waltz.mid", **_bar_notes(16, meter=(3, 4)))
    assert entry.main(["fit", str(waltzes), "--name", "zero", "--profile", "smoke", "--quiet"]) == 1
    assert not project.user_loops_dir("zero").exists()
    # a dataset a killed fit left (no registry entry names it) does not block either
    from loopgen.data.extract import extract

    extract(waltzes, project.user_loops_dir("zero"), workers=1, progress=False)
    capsys.readouterr()
    songs = _one_loop_song(tmp_path / "other")
    assert entry.main(["fit", str(songs), "--name", "zero", "--profile", "smoke", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "fitted on other MIDI files" not in err and "needs at least" in err
    assert not project.user_loops_dir("zero").with_name("user-zero.new").exists()


def test_fit_of_a_registered_name_on_other_files_needs_force_and_keeps_the_old_model_if_it_fails(
    project, tmp_path, capsys
):
    songs = _one_loop_song(tmp_path / "other")
    assert entry.main(["fit", str(songs), "--name", NAME, "--profile", "smoke", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "fitted on other MIDI files" in err and "--force" in err
    assert entry.main(["fit", str(songs), "--name", NAME, "--profile", "smoke", "--quiet", "--force"]) == 1
    assert "needs at least" in capsys.readouterr().err  # --force got past the name; these songs are too few
    assert trained.load_vq(project, profiles.get("smoke"), NAME).vq is not None  # the old model still works
    assert not project.user_loops_dir(NAME).with_name(f"user-{NAME}.new").exists()


def test_an_unready_fitted_model_points_at_fit_not_at_a_notebook(project, capsys):
    """Issue 22: the hint for a model without a finished checkpoint named notebook 02 even to a CLI user."""
    entry_ = trained.read_registry(project)[NAME]
    trained.register(project, "elsewhere", dataset=Path(entry_["dataset"]), profile="demo",
                     report_totals=entry_["extraction"], out_dir=project.user_model_dir("elsewhere"))
    try:
        with pytest.raises(FileNotFoundError) as info:
            trained.load_vq(project, profiles.get("smoke"), "elsewhere")  # demo settings: never trained
        message = str(info.value)
        assert "python -m loopgen fit " in message and "--name elsewhere --profile demo" in message
        assert "notebook" not in message
    finally:
        trained.unregister(project, "elsewhere")


def test_an_unfinished_profile_model_names_the_command_too(project, monkeypatch):
    """A CLI user of ``generate``/``vary`` gets the command that finishes the training, beside the notebook."""
    from loopgen.store.paths import MissingInputError

    def unfinished(name, *args, **kwargs):
        raise MissingInputError(f"data/checkpoints/{name}-abc.pt is unfinished (1/2 epochs): run notebook "
                                "02_train_autoencoders.ipynb with -p PROFILE smoke -p MODEL vq_vae to finish it.")

    monkeypatch.setattr(trained, "load_trained", unfinished)
    with pytest.raises(MissingInputError) as info:
        trained.load_vq(project, profiles.get("smoke"))
    message = str(info.value)
    assert "02_train_autoencoders.ipynb" in message
    assert "python -m loopgen train --model vq_vae --profile smoke" in message


def test_fit_refuses_a_bad_name_with_exit_2(project, tmp_path, capsys):
    assert entry.main(["fit", str(tmp_path), "--name", "../x"]) == 2
    assert "not a valid model name" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the page
def _check_page(out: Path, n_loops: int) -> None:
    text = (out / "index.html").read_text()
    assert text.count('<figure class="loop"') == n_loops
    links = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert links and all("://" not in link and not link.startswith("/") for link in links)  # relative only
    for link in links:
        assert (out / unquote(link)).is_file(), link
    assert sum(link.endswith(".npz") for link in links) == n_loops  # every loop also as a pypianoroll Multitrack


def test_page_links_every_file_with_loopability_and_audio(tmp_path, song_loop):
    loops = np.stack([song_loop.loop, np.zeros_like(song_loop.loop)])
    entries = page.add_loops(tmp_path, loops, [{"seed": 1}, {"seed": 1}], prefix="a b", run={}, with_stems=True)
    text = (tmp_path / "index.html").read_text()
    assert "a%20b_000.mid" in text and f"{entries[0]['loopability']:.2f}" in text
    _check_page(tmp_path, n_loops=2)
    assert page.next_number(tmp_path, "a b") == 2
