"""Build a blind listening-test study folder (paper, "Listening Test").

The paper asked 20 listeners to rate 10 loops from each of five groups (training set, AR LSTM-VAE,
NonAR LSTM-VAE, CNN-VAE, VQ-VAE at temperature 1.2) on a Likert scale (the paper does not give its points; our page uses 1-5) ("how much the sample
sounds like music"), after 3 familiarisation loops. :func:`build_study` writes everything such a study
needs as plain files::

    <study>/
      README.md          how to run the study and collect the ratings
      key.csv            PRIVATE: stimulus id -> group, source index (never served to listeners)
      key.json           PRIVATE: the selection seed that chose and numbered the stimuli
      ratings/           put every listener's downloaded ratings_<listener>.csv here
      site/              the static web page: serve this folder only
        index.html study.js study.css
        stimuli.json     stimulus ids, file paths and the page's own order seed (no group names, no key)
        stimuli.js       the same data for pages opened from file:// (where fetch() is blocked)
        audio/<id>.wav   rendered with FluidSynth (absent when FluidSynth is not installed)
        midi/<id>.mid

Stimulus ids are assigned after a seeded shuffle, so neither ids, file names nor the page reveal a group. By
default the selection seed is a secret random number saved only in ``key.json``; the page gets a second,
unrelated random seed that only orders the stimuli per listener, so the key cannot be recomputed from what is
served. An explicit ``seed`` makes a study reproducible (demos, notebooks) and therefore *not* blind to anyone
who knows the seed. Each listener hears every stimulus once, in an order seeded by the listener id
(:func:`listener_order` computes the same order as the page's JavaScript).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import secrets
import shlex
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loopgen import errors, registry
from loopgen.book import audio
from loopgen.data.dataset import pack_loops
from loopgen.data.midi.write import write_loop_midi
from loopgen.data.validate import check_loops
from loopgen.runtime.seed import seed_everything
from loopgen.store import atomic
from loopgen.store.atomic import write_text
from loopgen.store.paths import below, require

log = logging.getLogger(__name__)

# The paper's five groups, in its order (Figure 6); names as written by loopgen.store.sample_groups.
GROUPS = registry.listening_groups()
QUESTION = "How much does this sound like music?"
SCALE_LABELS = {1: "Not at all", 2: "A little", 3: "Somewhat", 4: "Quite a lot", 5: "Very much"}
KEY_COLUMNS = ("stimulus_id", "role", "group", "source_index")
RATING_COLUMNS = ("listener_id", "stimulus_id", "rating")
STATIC_FILES = ("index.html", "study.js", "study.css")
# How to serve the study page: on this machine only (http.server alone listens on every network interface)
SERVE_COMMAND = "python -m http.server 8000 --bind 127.0.0.1"
SERVE_URL = "http://127.0.0.1:8000/"
STATIC_DIR = Path(__file__).with_name("static")


@dataclass(frozen=True)
class StudyLayout:
    """Where the files of one study folder live (the tree in the module docstring)."""

    root: Path
    site = below("root", "site", doc="The static page: the only folder served to listeners.")
    key = below("root", "key.csv", doc="PRIVATE: stimulus id -> group, source index.")
    private_seed = below("root", "key.json", doc="PRIVATE: the selection seed.")
    ratings = below("root", "ratings", doc="Every listener's downloaded ratings_<listener>.csv.")
    readme = below("root", "README.md")
    stimuli_json = below("site", "stimuli.json")
    stimuli_js = below("site", "stimuli.js")
    index_html = below("site", "index.html")
    audio = below("site", "audio")
    midi = below("site", "midi")


# --- the listener's presentation order (mirrored in static/study.js) ---
def _fnv1a_32(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _xorshift32(state: int):
    x = state & 0xFFFFFFFF or 0x9E3779B9
    while True:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        yield x


def sanitise_listener_id(listener_id: str) -> str:
    """The listener id as the page stores it: letters, digits, '-' and '_' (others -> '_'), at most 40."""
    cleaned = "".join(c if (c.isascii() and (c.isalnum() or c in "-_")) else "_" for c in listener_id.strip())
    return cleaned[:40]


def listener_order(stimulus_ids: Sequence[str], listener_id: str, study_seed: int) -> list[str]:
    """The order in which the page presents ``stimulus_ids`` to ``listener_id`` (seeded Fisher-Yates).

    Seed: FNV-1a of ``"<study_seed>:<sanitised listener id>"``; generator: xorshift32. Same as the page.
    """
    numbers = _xorshift32(_fnv1a_32(f"{study_seed}:{sanitise_listener_id(listener_id)}"))
    order = list(stimulus_ids)
    for i in range(len(order) - 1, 0, -1):
        j = (next(numbers) * (i + 1)) >> 32
        order[i], order[j] = order[j], order[i]
    return order


# --- choosing the stimuli ---
def _pick(rng: np.random.Generator, loops: np.ndarray, n: int, group: str) -> list[int]:
    """``n`` seeded indices, distinct loops first (the training set repeats loops); duplicates only if needed."""
    if n > len(loops):
        raise ValueError(f"group {group!r} has {len(loops)} loops; the study needs {n}")
    flat = pack_loops(loops)
    _, first_index = np.unique(flat, axis=0, return_index=True)
    distinct = rng.permutation(np.sort(first_index))
    if len(distinct) >= n:
        return [int(i) for i in distinct[:n]]
    warnings.warn(
        f"group {group!r} has only {len(distinct)} distinct loops; {n - len(distinct)} stimuli repeat a loop",
        RuntimeWarning,
        stacklevel=3,
    )
    rest = rng.permutation(np.setdiff1d(np.arange(len(loops)), distinct))
    return [int(i) for i in np.concatenate([distinct, rest[: n - len(distinct)]])]


def build_study(
    groups: Mapping[str, np.ndarray],
    out_dir: Path | str,
    *,
    per_group: int = 10,
    familiarisation: int = 3,
    seed: int | None = None,
    tempo: float = 120.0,
    repeats: int = 2,
    familiarisation_source: str = "training_set",
    render_audio: bool = True,
    fs: int = audio.DEFAULT_SAMPLE_RATE,
    force: bool = False,
) -> Path:
    """Write a blind listening-test study for ``groups`` (name -> loops (N, 128, 93)) into ``out_dir``.

    Picks ``per_group`` loops per group and ``familiarisation`` more from ``familiarisation_source``
    (seeded), writes MIDI and (when FluidSynth works and ``render_audio``) WAV for each, the static page
    in ``out_dir/site``, the private ``out_dir/key.csv`` and ``key.json`` and a README. Returns ``out_dir``.

    ``seed=None`` (the default for real studies) draws a secret selection seed, saved only in ``key.json``;
    give a seed only for reproducible demos. ``out_dir`` must be new, empty or a study folder (else
    :class:`loopgen.commands.common.UserError`, unless ``force``); only the study's own ``site/`` is ever replaced.
    """
    if per_group < 1 or familiarisation < 0:
        raise ValueError(
            f"per_group must be >= 1 and familiarisation >= 0; got {per_group}, {familiarisation}"
        )
    if not groups:
        raise ValueError("no groups given")
    if familiarisation and familiarisation_source not in groups:
        raise ValueError(f"familiarisation source {familiarisation_source!r} is not one of {list(groups)}")
    validated = {
        name: check_loops(loops, name=f"group {name!r}", allow_empty=True, binarize_at=0.5)
        for name, loops in groups.items()
    }
    layout = StudyLayout(Path(out_dir))
    atomic.check_output_folder(layout.root, made_by_us=made_by_study, what="study folder", force=force)
    if layout.site.exists() and not made_by_study(layout.root):
        raise errors.UserError(f"{layout.site} exists and was not written by loopgen: move it away first")
    selection_seed = secrets.randbits(63) if seed is None else int(seed)
    site_seed = secrets.randbits(31) if seed is None else _site_seed_for_demo(int(seed))
    rng = seed_everything(selection_seed)

    # (role, group, source index, loop) for every file of the study.
    familiar: list[tuple[str, int, np.ndarray]] = []
    rated: list[tuple[str, int, np.ndarray]] = []
    for name, loops in validated.items():
        extra = familiarisation if name == familiarisation_source else 0
        picked = _pick(rng, loops, per_group + extra, name)
        familiar += [(name, i, loops[i]) for i in picked[:extra]]
        rated += [(name, i, loops[i]) for i in picked[extra:]]
    shuffled = [rated[i] for i in rng.permutation(len(rated))]
    width = len(str(len(shuffled)))
    stimuli = [(f"s{n + 1:0{width}d}", *item) for n, item in enumerate(shuffled)]
    familiar_items = [(f"f{n + 1}", *item) for n, item in enumerate(familiar)]

    layout.root.mkdir(parents=True, exist_ok=True)
    if layout.site.exists():  # a rebuild replaces the page and its media, never the collected ratings
        shutil.rmtree(layout.site)
    layout.audio.mkdir(parents=True)
    layout.midi.mkdir(parents=True)
    layout.ratings.mkdir(exist_ok=True)

    use_audio = render_audio and audio.fluidsynth_available()
    if render_audio and not use_audio:
        log.warning("FluidSynth is not available: the study page will offer MIDI files instead of audio.")

    def media(stimulus_id: str, loop: np.ndarray) -> dict[str, str | None]:
        write_loop_midi(loop, layout.midi / f"{stimulus_id}.mid", bpm=tempo, repeats=repeats)
        wav = None
        if use_audio:
            wav = audio.write_wav(
                loop, layout.audio / f"{stimulus_id}.wav", fs=fs, tempo=tempo, repeats=repeats
            )
        return {
            "id": stimulus_id,
            "audio": f"audio/{stimulus_id}.wav" if wav is not None else None,
            "midi": f"midi/{stimulus_id}.mid",
        }

    familiar_media = [media(sid, loop) for sid, _, _, loop in familiar_items]
    stimulus_media = [media(sid, loop) for sid, _, _, loop in stimuli]
    audio_ok = all(m["audio"] is not None for m in familiar_media + stimulus_media)

    ids = [sid for sid, *_ in stimuli]
    study_id = hashlib.sha1(f"{site_seed}|{'|'.join(ids)}|{per_group}|{len(groups)}".encode()).hexdigest()[:10]
    page_data = {
        "study_id": study_id,
        "seed": int(site_seed),  # orders the stimuli per listener only; unrelated to the selection seed
        "question": QUESTION,
        "scale": {str(k): v for k, v in SCALE_LABELS.items()},
        "tempo": float(tempo),
        "repeats": int(repeats),
        "audio_available": bool(audio_ok),
        "familiarisation": familiar_media,
        "stimuli": stimulus_media,
    }
    text = json.dumps(page_data, indent=1)
    write_text(layout.stimuli_json, text + "\n")
    write_text(layout.stimuli_js, f"window.LOOPGEN_STUDY = {text};\n")
    for name in STATIC_FILES:
        write_text(layout.site / name, (STATIC_DIR / name).read_text(encoding="utf-8"))

    group_rank = {name: n for n, name in enumerate(groups)}
    key_rows = [(sid, "familiarisation", g, i) for sid, g, i, _ in familiar_items]
    key_rows += sorted(
        ((sid, "stimulus", g, i) for sid, g, i, _ in stimuli), key=lambda row: (group_rank[row[2]], row[0])
    )
    write_csv_atomic(layout.key, KEY_COLUMNS, key_rows)
    private = {
        "selection_seed": selection_seed,
        "seed_was_given": seed is not None,
        "site_seed": int(site_seed),
        "study_id": study_id,
        "note": "PRIVATE: with this seed and the public code anyone can recompute key.csv. Never serve it.",
    }
    write_text(layout.private_seed, json.dumps(private, indent=1) + "\n")
    readme = _readme(layout, len(ids), len(groups), per_group, audio_ok, seed_given=seed is not None)
    write_text(layout.readme, readme)
    return layout.root


def _site_seed_for_demo(seed: int) -> int:
    """The page's order seed for a reproducible (explicitly seeded) study: a one-way function of ``seed``."""
    return int.from_bytes(hashlib.sha256(f"loopgen-site|{seed}".encode()).digest()[:4], "big") >> 1


def made_by_study(folder: Path | str) -> bool:
    """True when ``folder`` holds a study this module wrote (its key and its page data)."""
    layout = StudyLayout(Path(folder))
    try:
        header = layout.key.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return False
    return header == ",".join(KEY_COLUMNS) and layout.stimuli_json.is_file()


def _readme(
    layout: StudyLayout, n_stimuli: int, n_groups: int, per_group: int, audio_ok: bool, *, seed_given: bool
) -> str:
    audio_line = (
        "Every loop is a WAV file (FluidSynth, General MIDI sound font) and a MIDI file."
        if audio_ok
        else "**FluidSynth was not available when this study was built: there is no audio, only MIDI files.** "
        "Install libfluidsynth3 and rebuild before running a real study."
    )
    seed_line = (
        "**This study was built with an explicit `--seed`: it is reproducible, and not blind to anyone who "
        "knows that seed. Build real studies without `--seed`.**"
        if seed_given
        else "The selection seed was drawn at random and is saved nowhere else."
    )
    return f"""# Listening study

{n_stimuli} loops ({per_group} from each of {n_groups} groups), rated blind on a 1-5 scale:
"{QUESTION}". {audio_line}

## Run it
1. Serve the page (any static web server; nothing is sent anywhere, ratings stay in the browser):

       cd {shlex.quote(str(layout.site))}
       {SERVE_COMMAND}

   then open <{SERVE_URL}> (or open `site/index.html` directly in a browser). `--bind 127.0.0.1` keeps the
   server to this machine; to let listeners on your network in, leave it out (anyone there can then open it).
   To host it elsewhere, copy **only** the `site/` folder.
2. Each listener types a listener id (initials or a number; no personal data), listens to the
   familiarisation loops, then rates every loop once, in an order of their own.
   Progress is kept in the browser, so a reload resumes where they stopped.
3. At the end the page downloads `ratings_<listener>.csv` (columns `listener_id, stimulus_id, rating`).
   Collect these files into `{layout.ratings}`.
4. Analyse with notebook `07_listening_test.ipynb` (parameter `STUDY_DIR` = this folder), or
   `loopgen.book.listening.load_ratings(study_dir)` and `loopgen.book.listening.analyse(ratings, key)`.

## Keep private
Everything outside `site/` stays private; in particular:

* `key.csv` maps stimulus ids to groups. Never put it in `site/` or show it to listeners.
* `key.json` holds the selection seed: with it and loopgen's public code anyone can recompute `key.csv`.
  {seed_line}

`site/` holds only what the page needs: stimulus ids, media files, and a seed that orders the stimuli per
listener (random, unrelated to the selection seed).
A file named `ratings_PROXY.csv` (the proxy listener's scores) or `ratings_SIMULATED.csv` (simulated ratings)
holds stand-in ratings, so that the analysis runs before anyone has listened: they are not data. Real ratings
replace them as soon as one real ratings file is in `ratings/`.
"""


def read_key(study_dir: Path | str) -> pd.DataFrame:
    """The private key of a study: stimulus_id, role, group, source_index."""
    path = require(StudyLayout(Path(study_dir)).key, made_by="07_listening_test.ipynb (build_study)")
    key = pd.read_csv(path, dtype={"stimulus_id": str, "role": str, "group": str, "source_index": int})
    missing = set(KEY_COLUMNS) - set(key.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    return key


def stimulus_ids(study_dir: Path | str) -> list[str]:
    """The rated stimulus ids of a study, as listed in its page data."""
    data = json.loads(StudyLayout(Path(study_dir)).stimuli_json.read_text(encoding="utf-8"))
    return [s["id"] for s in data["stimuli"]]


def write_csv_atomic(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """A CSV file written atomically (temporary file, then rename)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return path


def has_real_ratings(study_dir: Path | str) -> bool:
    """True when the study folder holds any ratings file other than the simulated one."""
    root = Path(study_dir)
    files = list(root.glob("ratings_*.csv")) + list(StudyLayout(root).ratings.glob("ratings_*.csv"))
    return any(not f.name.upper().startswith("RATINGS_SIMULATED") for f in files)


def ensure_study(groups: Mapping[str, np.ndarray], out_dir: Path | str, **options) -> tuple[Path, bool]:
    """Build the study unless ``out_dir`` already holds one with listeners' ratings; return (folder, built).

    A study that listeners have rated is never rebuilt: new loops would give its stimulus ids new meanings.
    Delete the folder (or use another ``out_dir``) to start a new study.
    """
    layout = StudyLayout(Path(out_dir))
    if layout.key.exists() and has_real_ratings(layout.root):
        log.info("keeping the existing study in %s: it already holds listeners' ratings", layout.root)
        return layout.root, False
    return build_study(groups, layout.root, **options), True


def stimulus_loops(
    groups: Mapping[str, np.ndarray], key: pd.DataFrame, per_group: int = 1
) -> list[tuple[str, str, np.ndarray]]:
    """(group, stimulus id, loop) of the first ``per_group`` rated stimuli of each group, in the key's order."""
    rated = key[key["role"] == "stimulus"]
    chosen = rated.groupby("group", sort=False).head(per_group)
    return [
        (g, sid, np.asarray(groups[g][i]))
        for sid, g, i in chosen[["stimulus_id", "group", "source_index"]].itertuples(index=False)
    ]
