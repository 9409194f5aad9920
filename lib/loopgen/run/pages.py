"""The executed notebooks as web pages, with an index: a run you can look at without running it.

After each notebook the runner (:mod:`loopgen.run.runner`) calls :func:`export_page`, which writes
``build/executed/<profile>/html/<name>.html`` with nbconvert (the lab template, figures embedded, audio players
as the notebook shows them, and no script fetched from the internet: the pages work offline), and copies the
notebook's figures and sounds into ``html/figures/`` and ``html/audio/`` for the index. :func:`write_index`
writes ``html/index.html``: every notebook of the plan in order, with its status (ok, FAILED, interrupted,
running, not run), its time, its parameters, its figures as thumbnails and its audio players.

Every name and message on a page is HTML-escaped and every link is percent-encoded, so notebook names and
folders with spaces or non-ASCII letters (or ``<``, ``&``) show as they are and link where they should.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from loopgen.store import atomic

INDEX = "index.html"
STATUSES = ("ok", "failed", "interrupted", "running", "not run")
STATUS_LABELS = {"ok": "ok", "failed": "FAILED", "interrupted": "interrupted", "running": "running", "not run": "not run"}

# The lab template without what it would fetch from a CDN (require.js, MathJax, Mermaid, the widget renderer):
# an executed notebook holds static outputs, and the page must open offline.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_AUDIO_SOURCE = re.compile(r"""<audio\b[^>]*>.*?src=["']data:(audio/[\w.+-]+);base64,([A-Za-z0-9+/=\s]+)["']""", re.S)
_AUDIO_SUFFIX = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/mpeg": ".mp3", "audio/ogg": ".ogg"}


@dataclass
class PageRecord:
    """One notebook run as the index shows it."""

    output_name: str
    notebook: str
    parameters: dict = field(default_factory=dict)
    status: str = "not run"
    seconds: float | None = None
    error: str | None = None
    page: str | None = None  # the HTML file's name inside html/, None when there is none
    figures: list[str] = field(default_factory=list)  # paths relative to html/
    audio: list[str] = field(default_factory=list)  # paths relative to html/
    finished: str | None = None  # ISO time (UTC)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; one of {STATUSES}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> PageRecord:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)


def page_name(output_name: str) -> str:
    """``02_train_autoencoders-vq_vae.ipynb`` -> ``02_train_autoencoders-vq_vae.html`` (a slash becomes ``_``)."""
    stem = output_name[: -len(".ipynb")] if output_name.endswith(".ipynb") else output_name
    return re.sub(r"[/\\]", "_", stem) + ".html"


@functools.lru_cache(maxsize=1)
def _exporter():
    """nbconvert's HTML exporter with the offline template (made once: loading the templates takes a while)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        template_file="loopgen_offline.html.j2",
        extra_loaders=[DictLoader({"loopgen_offline.html.j2": _OFFLINE_TEMPLATE})],
        embed_images=True,
    )


def _media(nb) -> tuple[list[bytes], list[tuple[str, bytes]]]:
    """The notebook's PNG figures and its audio (mime type, bytes), in the order they appear."""
    figures, sounds = [], []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                png = data["image/png"]
                figures.append(base64.b64decode("".join(png) if isinstance(png, list) else png))
            markup = data.get("text/html")
            if markup:
                text = "".join(markup) if isinstance(markup, list) else markup
                for mime, payload in _AUDIO_SOURCE.findall(text):
                    sounds.append((mime, base64.b64decode(re.sub(r"\s+", "", payload))))
    return figures, sounds


_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>", re.IGNORECASE)
_ALT = re.compile(r"\balt=\"([^\"]*)\"", re.IGNORECASE)


def offline_images(html: str) -> str:
    """``html`` with every image fetched from the network (e.g. the notebooks' "Open in Colab" badge) replaced by
    its alt text, so a page opens offline without a request leaving the machine; its link, if any, stays."""

    def alt_text(match: re.Match) -> str:
        alt = _ALT.search(match.group(0))
        return alt.group(1) if alt and alt.group(1) else "image"

    return _REMOTE_IMG.sub(alt_text, html)


def export_page(executed: Path, html_dir: Path, record: PageRecord) -> PageRecord:
    """Write the web page of the executed notebook ``executed`` and its media for the index; fill ``record``."""
    import nbformat

    html_dir = Path(html_dir)
    nb = nbformat.read(executed, as_version=4)
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": record.output_name}})
    body = offline_images(body)
    name = page_name(record.output_name)
    atomic.write_text(html_dir / name, body)
    stem = name[: -len(".html")]
    figures, sounds = _media(nb)
    record.page, record.figures, record.audio = name, [], []
    for kind, items in (("figures", [("image/png", f) for f in figures]), ("audio", sounds)):
        folder = html_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{glob_escape(stem)}-*"):
            old.unlink()
        for n, (mime, payload) in enumerate(items, 1):
            suffix = ".png" if kind == "figures" else _AUDIO_SUFFIX.get(mime, ".bin")
            path = folder / f"{stem}-{n}{suffix}"
            atomic.write_bytes(path, payload)
            getattr(record, kind).append(f"{kind}/{path.name}")
    return record


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _href(relative: str) -> str:
    return html.escape(quote(relative, safe="/"), quote=True)


def _parameters(values: Mapping) -> str:
    return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in values.items())


def _row(number: int, record: PageRecord) -> str:
    e = html.escape
    title = record.output_name[: -len(".ipynb")] if record.output_name.endswith(".ipynb") else record.output_name
    name = f'<a href="{_href(record.page)}">{e(title)}</a>' if record.page else e(title)
    status = e(STATUS_LABELS[record.status])
    if record.error:
        status += f'<div class="error">{e(record.error)}</div>'
    seconds = "" if record.seconds is None else f"{record.seconds:.1f} s"
    figures = "".join(
        f'<a href="{_href(record.page or "")}"><img src="{_href(f)}" alt="{e(title)}: figure {n}"></a>'
        for n, f in enumerate(record.figures, 1)
    )
    audio = "".join(
        f'<audio controls preload="none" src="{_href(a)}" title="{e(title)}: sound {n}"></audio>'
        for n, a in enumerate(record.audio, 1)
    )
    return (
        f'<tr class="{e(record.status.replace(" ", "-"))}" data-status="{e(record.status)}">'
        f"<td>{number}</td><td class=\"name\">{name}</td><td><code>{e(_parameters(record.parameters))}</code></td>"
        f'<td class="status">{status}</td><td class="time">{seconds}</td>'
        f'<td class="figures">{figures}</td><td class="audio">{audio}</td></tr>'
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .4em .5em; text-align: left; vertical-align: top; }
tr.failed td.status, tr.interrupted td.status { color: #b00020; font-weight: bold; }
tr.ok td.status { color: #1b5e20; }
tr.not-run, tr.running { color: #777; }
td.time { white-space: nowrap; text-align: right; }
td.figures img { height: 90px; margin: 0 .3em .3em 0; border: 1px solid #ccc; background: white; }
td.audio audio { display: block; width: 220px; margin-bottom: .3em; }
div.error { font-weight: normal; font-family: monospace; font-size: 85%; max-width: 40em; }
"""


def write_index(html_dir: Path, records: Sequence[PageRecord], *, profile: str, note: str = "") -> Path:
    """Write ``html_dir/index.html`` for ``records`` (in plan order); return its path."""
    e = html.escape
    done = [r for r in records if r.seconds is not None]
    counts = {s: sum(r.status == s for r in records) for s in STATUSES}
    summary = ", ".join(f"{n} {STATUS_LABELS[s]}" for s, n in counts.items() if n)
    total = sum(r.seconds for r in done)
    updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = "\n".join(_row(n, r) for n, r in enumerate(records, 1))
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>loopgen: executed notebooks ({e(profile)} profile)</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Executed notebooks: the <code>{e(profile)}</code> profile</h1>
<p id="summary">{len(records)} notebook runs: {e(summary)}; {total:.1f} s in all. Updated {e(updated)}.
Click a notebook for the whole executed notebook (code, output, figures, sound); the tables and figures
themselves are in <code>figures/</code>.</p>
{f'<p id="note">{e(note)}</p>' if note else ''}
<table id="runs">
<thead><tr><th>#</th><th>notebook</th><th>parameters</th><th>status</th><th>time</th><th>figures</th><th>audio</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
    path = Path(html_dir) / INDEX
    atomic.write_text(path, page)
    return path
