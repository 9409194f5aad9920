"""Side-by-side tables (our run beside the paper) written as ``figures/<stem>.csv`` and ``.md``.

Numbers are formatted like the paper: values below 0.1 in scientific form with two decimals
(``4.43e-4``), others with two decimals (``10.50``), integers as integers, missing values as ``-``.
The CSV keeps full precision; the Markdown file is for reading, with the notes below the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from loopgen import metrics, paper, registry
from loopgen.book.baselines import PREFIX, is_baseline
from loopgen.run.choices import open_choices_note
from loopgen.store.atomic import write_text
from loopgen.store.paths import Paths

OURS, PAPER = "ours", "paper"
MISSING = "-"


def format_number(value: object) -> str:
    """Format one cell like the paper: 4.43e-4, 0.28, 10.50, 120600, '-' for missing."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return MISSING
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v != 0 and abs(v) < 0.1:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if v.is_integer() and abs(v) >= 100:
        return str(int(v))
    return f"{v:.2f}"


def _merged_columns(ours: Sequence[str], paper: Sequence[str]) -> list[str]:
    """Paper's column order; a column only we have goes right after its predecessor in our order."""
    result = list(paper)
    previous: str | None = None
    for col in ours:
        if col not in result:
            position = result.index(previous) + 1 if previous is not None else len(result)
            result.insert(position, col)
        previous = col
    return result


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Our numbers beside the paper's: columns (metric, 'ours'|'paper'), rows by label.

    Rows follow our order, then rows only the paper has (ours '-'); columns follow the paper's order,
    with columns only we report (e.g. UP/bar) placed after their neighbour in our table.
    """
    rows = list(ours.index) + [r for r in paper.index if r not in set(ours.index)]
    columns = _merged_columns([str(c) for c in ours.columns], [str(c) for c in paper.columns])
    data = {}
    for col in columns:
        for source, frame in ((OURS, ours), (PAPER, paper)):
            if col in frame.columns:
                data[(col, source)] = frame[col].reindex(rows)
            else:
                data[(col, source)] = pd.Series(np.nan, index=rows, dtype=float)
    result = pd.DataFrame(data, index=pd.Index(rows, name=ours.index.name or paper.index.name))
    result.columns = pd.MultiIndex.from_tuples(result.columns, names=["metric", "source"])
    return result


def with_baselines(table: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """A :func:`side_by_side` table with ``baselines`` appended as rows of ours alone: a baseline has no paper
    value ('-'). Every baseline's name must begin with 'baseline:' (:mod:`loopgen.book.baselines`)."""
    if baselines.empty:
        return table
    named = [str(name) for name in baselines.index if not is_baseline(name)]
    if named:
        raise ValueError(f"a baseline row's name begins with {PREFIX!r}; got {named}")
    rows = pd.DataFrame(np.nan, index=baselines.index, columns=table.columns)
    for metric, source in table.columns:
        if source == OURS and metric in baselines.columns:
            rows[(metric, source)] = baselines[metric].astype(float)
    out = pd.concat([table, rows])
    out.index.name = table.index.name
    return out


def flat_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Two-level (metric, source) columns -> one level: 'HD (ours)', 'HD (paper)'."""
    if not isinstance(df.columns, pd.MultiIndex):
        return df.copy()
    out = df.copy()
    out.columns = [f"{metric} ({source})" for metric, source in df.columns]
    return out


def to_markdown(df: pd.DataFrame, notes: Iterable[str] = (), title: str | None = None) -> str:
    """The table as Markdown (paper-style numbers), notes as a list below it."""
    flat = flat_columns(df)
    shown = flat.map(format_number) if hasattr(flat, "map") else flat.applymap(format_number)
    shown.index = [str(i) for i in shown.index]
    shown.index.name = flat.index.name or ""
    text = shown.to_markdown(stralign="right", disable_numparse=True)
    parts = [f"# {title}\n" if title else "", text, ""]
    notes = list(notes)
    if notes:
        parts += ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(p for p in parts if p is not None).lstrip("\n") + "\n"


def write_table(
    df: pd.DataFrame,
    stem: str,
    *,
    paths: Paths,
    notes: list[str],
    title: str | None = None,
    profile: str | None = None,
) -> tuple[Path, Path]:
    """Write ``figures/<stem>.csv`` (full precision) and ``figures/<stem>.md`` (paper style + notes).

    Under the ``paper`` profile the notes end with the choices the paper leaves open
    (:func:`loopgen.run.choices.open_choices_note`)."""
    if not stem or "/" in stem or stem.endswith((".csv", ".md")):
        raise ValueError(
            f"stem must be a bare file name without extension, e.g. 'table3_musical_metrics'; got {stem!r}"
        )
    csv_path = paths.figure(f"{stem}.csv")
    md_path = paths.figure(f"{stem}.md")
    write_text(csv_path, flat_columns(df).to_csv())
    choices = open_choices_note(profile) if profile else None
    notes = list(notes) + ([choices] if choices and choices not in notes else [])
    if paths.corpus:  # a run on another MIDI folder says so under every table
        notes.append(f"Corpus: {paths.corpus}, a MIDI folder given as MIDI_DIR (--midi-dir): neither the paper's "
                     "LMD-full nor the procedural demo corpus; every number above comes from its loops.")
    write_text(md_path, to_markdown(df, notes, title=title))
    return csv_path, md_path


def standard_notes(profile: str, n_loops: int | None = None, *, extra: Iterable[str] = ()) -> list[str]:
    """The definitions every metric table states (docs/rules.md §6), plus the run's profile and size."""
    notes = [f"Profile: {profile}." + (f" Loops per row: {n_loops:,}." if n_loops is not None else "")]
    notes += [metrics.HD_NOTE, metrics.UP_NOTE, metrics.ND_NOTE, metrics.OS_US_NOTE]
    notes += ["'paper' columns: the paper's published values; '-' = not reported / not applicable."]
    notes += list(extra)
    return notes


class Claim(str):
    """A sentence of a computed discussion that knows whether it holds: prints as the sentence, ``.holds`` says."""

    holds: bool

    def __new__(cls, sentence: str, holds: bool) -> Claim:
        made = super().__new__(cls, sentence)
        made.holds = bool(holds)
        return made

    def __getnewargs__(self) -> tuple[str, bool]:  # copies and pickles keep the verdict
        return str(self), self.holds


def claim(statement: str, holds: bool) -> Claim:
    """A sentence of a computed discussion: '<statement>: holds on this run.' or '... does not hold ...'."""
    return Claim(f"{statement}: {'holds' if holds else 'does not hold'} on this run.", holds)


# ------------------------------------------------------------------ computed discussions
CONTINUOUS_LABELS = tuple(paper.MODEL_LABELS[name] for name in registry.continuous())  # the continuous VAEs
VQ_LABELS = tuple(paper.GROUP_LABELS[registry.temperature_group(t)] for t in (None, *registry.VQ_TEMPERATURES))
VQ_SAMPLED_LABELS = VQ_LABELS[1:]


def _present(frame: pd.DataFrame, labels: Iterable[str], column: str) -> pd.Series:
    rows = [label for label in labels if label in frame.index]
    if column not in frame.columns:
        return pd.Series(dtype=float)
    return frame.loc[rows, column].astype(float).dropna()


def _span(values: pd.Series) -> str:
    lo, hi = values.min(), values.max()
    return format_number(lo) if lo == hi else f"{format_number(lo)}-{format_number(hi)}"


def _increasing(values: pd.Series) -> bool:
    return bool(len(values) >= 2 and (np.diff(values.to_numpy()) > 0).all())


def _paper_span(table: pd.DataFrame, labels: Iterable[str], column: str) -> str:
    """The paper's span of ``column`` over those of the rows ``labels`` it has, formatted like ours."""
    return _span(_present(table, labels, column))


def _listed(values: Iterable[float]) -> str:
    return ", ".join(format_number(v) for v in values)


# Table 3's claims that set the continuous VAEs against VQ-VAE on one column: (column, statement, holds).
# ``{cont}`` and ``{vq}`` become "our span; paper span".
_CONTRASTS: tuple[tuple[str, str, Callable[[pd.Series, pd.Series], bool]], ...] = (
    ("FNB", "VQ-VAE keeps FNB near 1 ({vq}) while the continuous VAEs lose it ({cont})",
     lambda cont, vq: vq.min() > cont.max()),
    ("DB", "The continuous VAEs duplicate bass notes more often (DB {cont}) than VQ-VAE (DB {vq})",
     lambda cont, vq: cont.min() > vq.max()),
    ("ND", "The continuous VAEs play fewer notes (ND {cont}) than VQ-VAE (ND {vq})",
     lambda cont, vq: cont.max() < vq.min()),
)


def discussion_table3(ours: pd.DataFrame) -> list[str]:
    """The paper's claims about Table 3, each stated with this run's numbers beside the paper's
    (:data:`loopgen.paper.TABLE3`) and 'holds' / 'does not hold'.

    ``ours`` is indexed by the paper's row labels with the metric columns (HD FND FNB DB OS US UP ND).
    A claim whose rows are missing from ``ours`` is left out.
    """
    theirs = paper.TABLE3
    cont = {c: _present(ours, CONTINUOUS_LABELS, c) for c in ("HD", "FND", "FNB", "DB", "ND")}
    vq = {c: _present(ours, VQ_LABELS, c) for c in ("HD", "FND", "FNB", "DB", "OS", "US", "UP", "ND")}
    contrasts = {}
    for column, statement, holds in _CONTRASTS:
        if len(cont[column]) and len(vq[column]):
            spans = {
                "cont": f"{_span(cont[column])}; paper {_paper_span(theirs, CONTINUOUS_LABELS, column)}",
                "vq": f"{_span(vq[column])}; paper {_paper_span(theirs, VQ_LABELS, column)}",
            }
            contrasts[column] = claim(statement.format(**spans), holds(cont[column], vq[column]))
    out = [contrasts.pop("FNB")] if "FNB" in contrasts else []  # FNB, the drum start, then DB and ND
    generated = pd.concat([cont["FND"], vq["FND"]])
    if len(generated):
        every = (*CONTINUOUS_LABELS, *VQ_LABELS)
        out.append(
            claim(
                f"Every model keeps the drum start: FND {_span(generated)} (paper {_paper_span(theirs, every, 'FND')}), "
                "at least 0.9",
                generated.min() >= 0.9,
            )
        )
    out += contrasts.values()
    hd_all = pd.concat([cont["HD"], vq["HD"]])
    if "NonAR LSTM-VAE" in hd_all.index and "VQ-VAE (argmax)" in hd_all.index:
        others = hd_all.drop(["VQ-VAE (argmax)"])
        out.append(
            claim(
                f"NonAR LSTM-VAE has the lowest HD ({format_number(hd_all['NonAR LSTM-VAE'])}) of all generated sets "
                f"except VQ-VAE (argmax) ({format_number(hd_all['VQ-VAE (argmax)'])})",
                others.idxmin() == "NonAR LSTM-VAE" and hd_all["VQ-VAE (argmax)"] < hd_all["NonAR LSTM-VAE"],
            )
        )
    paper_vq = theirs.loc[list(VQ_LABELS)]
    if len(vq["US"]) == len(VQ_LABELS):
        out.append(
            claim(
                f"Raising the temperature makes VQ-VAE samples more unique: US {_listed(vq['US'])} "
                f"for argmax, {', '.join(f'{t:g}' for t in registry.VQ_TEMPERATURES)} (paper {_listed(paper_vq['US'])})",
                _increasing(vq["US"]),
            )
        )
        out.append(
            claim(
                f"Argmax sampling mostly repeats itself: US {format_number(vq['US'].iloc[0])} "
                f"(paper {format_number(paper_vq['US'].iloc[0])}), below 0.1",
                vq["US"].iloc[0] < 0.1,
            )
        )
    if len(vq["OS"]) == len(VQ_LABELS):
        out.append(
            claim(
                f"...and copies the training set less: OS {_listed(vq['OS'])} "
                f"(paper {_listed(paper_vq['OS'])}), falling with temperature",
                _increasing(-vq["OS"]),
            )
        )
    if len(vq["HD"]) == len(VQ_LABELS) and len(vq["UP"]) == len(VQ_LABELS):
        hd, up = paper_vq["HD"], paper_vq["UP"]
        out.append(
            claim(
                f"...at the price of loop structure and simplicity: HD {_listed(vq['HD'])} "
                f"and UP {_listed(vq['UP'])} rise with temperature "
                f"(paper HD {format_number(hd.iloc[0])} to {format_number(hd.iloc[-1])}, "
                f"UP {format_number(up.iloc[0])} to {format_number(up.iloc[-1])})",
                _increasing(vq["HD"]) and _increasing(vq["UP"]),
            )
        )
    return out


def discussion_table4(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """The paper's claim about Table 4: copying latent steps 0, 1 onto 16, 17 lowers HD for the sampled
    (temperature) sets without costing the other loop metrics much."""
    out: list[str] = []
    rows = [label for label in VQ_SAMPLED_LABELS if label in before.index and label in after.index]
    if rows:
        hd_before = before.loc[rows, "HD"].astype(float)
        hd_after = after.loc[rows, "HD"].astype(float)
        pairs = ", ".join(f"{r}: {format_number(hd_before[r])} -> {format_number(hd_after[r])}" for r in rows)
        out.append(
            claim(
                f"Copying the codes lowers HD for every temperature ({pairs})",
                bool((hd_after < hd_before).all()),
            )
        )
        shifts = {
            c: float((after.loc[rows, c].astype(float) - before.loc[rows, c].astype(float)).abs().max())
            for c in ("FND", "FNB", "ND")
            if c in before.columns and c in after.columns
        }
        if shifts:
            text = ", ".join(f"{c} by at most {v:.3f}" for c, v in shifts.items())
            out.append(
                claim(
                    f"...without sacrificing the other metrics ({text}; within 0.05)",
                    max(shifts.values()) <= 0.05,
                )
            )
    if "VQ-VAE (argmax)" in before.index and "VQ-VAE (argmax)" in after.index:
        b, a = float(before.loc["VQ-VAE (argmax)", "HD"]), float(after.loc["VQ-VAE (argmax)", "HD"])
        out.append(
            claim(
                f"For argmax sampling the copy does not help (HD {format_number(b)} -> {format_number(a)}; paper "
                f"{format_number(paper.TABLE3.loc['VQ-VAE (argmax)', 'HD'])} -> "
                f"{format_number(paper.TABLE4.loc['VQ-VAE (argmax)', 'HD'])})",
                a >= b,
            )
        )
    return out


def discussion_table1(ours: pd.DataFrame, column: str = "reconstruction_error") -> list[str]:
    """The paper's claim about Table 1: VQ-VAE reconstructs a little worse than the continuous VAEs."""
    errors = ours[column].astype(float).dropna() if column in ours.columns else pd.Series(dtype=float)
    cont = errors.reindex([c for c in CONTINUOUS_LABELS if c in errors.index])
    if "VQ-VAE" not in errors.index or cont.empty:
        return []
    return [
        claim(
            f"Because its codes are finite, VQ-VAE reconstructs worse ({format_number(errors['VQ-VAE'])}; paper "
            f"{format_number(paper.TABLE1.loc['VQ-VAE', 'reconstruction_error'])}) than every continuous VAE "
            f"({_span(cont)}; paper {_paper_span(paper.TABLE1, CONTINUOUS_LABELS, 'reconstruction_error')})",
            bool(errors["VQ-VAE"] > cont.max()),
        )
    ]


def discussion_table2(ours: pd.DataFrame, column: str = "reconstruction_error") -> list[str]:
    """The paper's claims about Table 2: more latent time steps (t) and more codes (K) reconstruct better."""
    err = ours[column].astype(float) if column in ours.columns else pd.Series(dtype=float)

    def e(t: int, L: int, K: int) -> float | None:  # noqa: N803 - the paper's letters
        label = f"t={t}, L={L}, K={K}"
        return float(err[label]) if label in err.index and not np.isnan(err[label]) else None

    out: list[str] = []
    t_pairs = [(e(32, L, K), e(64, L, K), f"L={L}, K={K}") for L, K in ((16, 256), (16, 512), (32, 512))]
    k_pairs = [(e(t, 16, 256), e(t, 16, 512), f"t={t}") for t in (32, 64)]
    for statement, pairs in (
        ("Doubling the latent time steps t from 32 to 64 lowers the error", t_pairs),
        ("Doubling the codebook K from 256 to 512 lowers the error", k_pairs),
    ):
        pairs = [p for p in pairs if p[0] is not None and p[1] is not None]
        if pairs:
            text = "; ".join(f"{name}: {format_number(a)} -> {format_number(b)}" for a, b, name in pairs)
            out.append(claim(f"{statement} ({text})", all(b < a for a, b, _ in pairs)))
    same_size = (e(32, 32, 512), e(64, 16, 512))
    if None not in same_size:
        out.append(
            claim(
                "At the same latent size t x L = 1024, fewer time steps reconstruct worse "
                f"(t=32, L=32: {format_number(same_size[0])} vs t=64, L=16: {format_number(same_size[1])})",
                same_size[0] > same_size[1],
            )
        )
    return out
