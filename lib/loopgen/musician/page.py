"""An output folder of loops a musician can browse and take: files, ``loops.json`` and ``index.html``.

Every command (``generate``, ``vary``, ``fit``) adds its loops with :func:`add_loops`:

* files are numbered on from what the folder already holds (``<prefix>_NNN``): a second run never
  overwrites the first;
* each loop gets ``.mid`` (DAW-ready, :func:`write_loop_midi`), ``.npz`` (a pypianoroll Multitrack,
  :func:`loopfile.write_loop_npz`), ``.png`` (pianoroll), ``.wav`` and,
  with ``stems``, ``_bass.wav`` / ``_drums.wav`` (when FluidSynth is installed);
* ``loops.json`` lists every loop of the folder with what remakes it exactly (model, checkpoint keys,
  temperature, seed, the draw's batch size and index, ...);
* ``index.html`` shows every loop: pianoroll, audio player, loopability, download links. Static, relative
  links only: it works from ``file://`` and from ``python -m http.server``.

One writer at a time: :func:`add_loops` holds the folder's lock (:func:`loopgen.store.atomic.folder_lock`; a
second run waits) while it numbers files and rewrites the index, so two runs into one folder keep every loop
and every entry. ``loops.json`` and ``index.html`` are rewritten as loops are written (every
:data:`FLUSH_SECONDS`, and when a run stops on an error or Ctrl-C), so an interrupted run leaves a page of the
loops it finished.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np

from loopgen import metrics
from loopgen.book import plots
from loopgen.data.midi.write import write_loop_midi
from loopgen.errors import shown_name
from loopgen.musician import loopfile
from loopgen.store.atomic import folder_lock, make_output_folder, write_text

LOOPS_JSON = "loops.json"
INDEX_HTML = "index.html"
FORMAT = 1
FLUSH_SECONDS = 2.0  # the index lags the files written by at most this long (a run killed with -9)


def read_loops_json(out_dir: Path | str) -> dict:
    """The folder's ``loops.json`` (``{"format", "runs", "loops"}``), empty lists when there is none."""
    path = Path(out_dir) / LOOPS_JSON
    if path.exists():
        return json.loads(path.read_text())
    return {"format": FORMAT, "runs": [], "loops": []}


def next_number(out_dir: Path, prefix: str) -> int:
    """The first free ``<prefix>_NNN`` number: past every file of that prefix and every recorded loop."""
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+)")
    taken = [int(m.group(1)) for p in out_dir.glob(f"{prefix}_*") if (m := pattern.match(p.name))]
    taken += [entry["number"] for entry in read_loops_json(out_dir)["loops"] if entry.get("prefix") == prefix]
    return max(taken, default=-1) + 1


def _pianoroll_png(loop: np.ndarray, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    plots.pianoroll(loop, ax=ax, title=title)
    return plots.save_fig(fig, path.name, folder=path.parent)


def add_loops(
    out_dir: Path | str,
    loops: np.ndarray,
    records: Sequence[dict],
    *,
    prefix: str,
    run: dict,
    bpm: float = 120.0,
    repeats: int = 1,
    wav: bool = True,
    with_stems: bool = False,
    title: str = "loopgen loops",
) -> list[dict]:
    """Write ``loops`` (N, 128, 93) with one record each (what remakes it) into ``out_dir``; return the entries.

    Files are named ``<prefix>_NNN`` (a record's own ``"prefix"`` wins), numbered on from the folder's files.

    ``run`` describes the command (its arguments, seed); it is stored once in ``loops.json["runs"]``. The
    folder's lock is held throughout (another writer waits), and the index is kept current as loops are written.
    """
    if len(loops) != len(records):
        raise ValueError(f"{len(loops)} loops but {len(records)} records")
    out = make_output_folder(out_dir, what="output folder")
    scores = metrics.loopability(loops) if len(loops) else np.zeros(0)
    with folder_lock(out, what="output folder"):
        index = read_loops_json(out)
        run_id = len(index["runs"])
        index["runs"].append(
            {"run": run_id, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **run}
        )
        entries: list[dict] = []
        written = time.monotonic()
        try:
            for entry in _write_loops(out, loops, records, scores, prefix=prefix, run_id=run_id, bpm=bpm,
                                      repeats=repeats, wav=wav, with_stems=with_stems):
                entries.append(entry)
                index["loops"].append(entry)
                if time.monotonic() - written >= FLUSH_SECONDS:
                    _write_index(out, index, title)
                    written = time.monotonic()
        except BaseException:
            try:  # stopped (an error, Ctrl-C): the page lists what was finished; the first error is the one shown
                _write_index(out, index, title)
            except OSError:
                pass
            raise
        _write_index(out, index, title)
    return entries


def _write_index(out: Path, index: dict, title: str) -> None:
    """Rewrite ``loops.json`` and ``index.html`` from ``index`` (atomically, each)."""
    write_text(out / LOOPS_JSON, json.dumps(index, indent=1, default=_jsonable) + "\n")
    write_index_html(out, title=title)


def _write_loops(
    out: Path, loops: np.ndarray, records: Sequence[dict], scores: np.ndarray, *, prefix: str, run_id: int,
    bpm: float, repeats: int, wav: bool, with_stems: bool,
) -> Iterator[dict]:
    """Write each loop's files, numbered on from the folder's (the caller holds the folder's lock); yield each
    loop's entry once its files are written."""
    numbers: dict[str, int] = {}
    for loop, record, score in zip(loops, records, scores, strict=True):
        name = record.get("prefix", prefix)
        number = numbers[name] = numbers[name] + 1 if name in numbers else next_number(out, name)
        stem = out / f"{name}_{number:03d}"
        write_loop_midi(loop, stem.with_suffix(".mid"), bpm=bpm, repeats=repeats)
        loopfile.write_loop_npz(loop, stem.with_suffix(".npz"), bpm=bpm, repeats=repeats)
        _pianoroll_png(loop, stem.with_suffix(".png"), f"{stem.name}  loopability {score:.2f}")
        wavs = loopfile.write_wavs(loop, stem, bpm=bpm, repeats=repeats, with_stems=with_stems) if wav else {}
        entry = {
            "file": stem.name + ".mid",
            "number": number,
            "run": run_id,
            "png": stem.name + ".png",
            "npz": stem.name + ".npz",
            "wav": {part: p.name for part, p in wavs.items()},
            "loopability": round(float(score), 4),
            "bpm": bpm,
            "repeats": repeats,
            **record,
            "prefix": name,
        }
        yield entry


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _href(name: str) -> str:
    return html.escape(quote(name), quote=True)


def _card(entry: dict) -> str:
    name = html.escape(entry["file"])
    wav = entry.get("wav", {})
    player = (
        f'<audio controls preload="none" src="{_href(wav["mix"])}"></audio>'
        if "mix" in wav
        else '<p class="no-audio">no audio (FluidSynth not installed): download the MIDI</p>'
    )
    links = [f'<a class="mid" href="{_href(entry["file"])}" download>MIDI</a>']
    if "npz" in entry:
        links.append(f'<a class="npz" href="{_href(entry["npz"])}" download>pianoroll (.npz)</a>')
    for part in ("mix", "bass", "drums"):
        if part in wav:
            label = "WAV" if part == "mix" else f"{part} WAV"
            links.append(f'<a class="wav-{part}" href="{_href(wav[part])}" download>{label}</a>')
    extra = html.escape(shown_name(entry.get("caption", "")))
    return (
        f'<figure class="loop" id="{html.escape(Path(entry["file"]).stem)}">\n'
        f'  <img src="{_href(entry["png"])}" alt="pianoroll of {name}" width="720">\n'
        f"  <figcaption><b>{name}</b> · loopability <span class=\"loopability\">{entry['loopability']:.2f}</span>"
        f"{' · ' + extra if extra else ''}</figcaption>\n"
        f"  {player}\n  <p class=\"links\">{' '.join(links)}</p>\n</figure>"
    )


def write_index_html(out_dir: Path | str, title: str = "loopgen loops") -> Path:
    """``index.html`` of every loop in ``out_dir/loops.json`` (newest run first)."""
    out = Path(out_dir)
    loops = read_loops_json(out)["loops"]
    cards = "\n".join(_card(e) for e in sorted(loops, key=lambda e: (-e["run"], e["prefix"], e["number"])))
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(shown_name(title))}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 780px; }}
figure.loop {{ border: 1px solid #ddd; padding: .6em; margin: 0 0 1.2em 0; }}
figure.loop img {{ max-width: 100%; height: auto; }}
audio {{ width: 100%; }}
.links a {{ margin-right: 1em; }}
</style>
</head>
<body>
<h1>{html.escape(shown_name(title))}</h1>
<p>{len(loops)} loops. Loopability (0-1): how well bar 5 repeats bar 1 and bar 8 leads back into bar 1.
Each MIDI file has "Bass" and "Drums" tracks, tempo and 4/4, and ends exactly on the loop's last bar.
The <code>.npz</code> files are pypianoroll Multitracks (<code>pypianoroll.load(path)</code>). <code>loops.json</code> says how to make each loop again.</p>
{cards}
</body>
</html>
"""
    return write_text(out / INDEX_HTML, page)
