"""Two (or more) finished runs side by side: ``python -m loopgen compare-corpora figures figures/<corpus>``.

A run on the demo corpus and a run on a reader's MIDI folder (``./run_all.sh --midi-dir PATH``) write the same
tables into two figure folders. This module reads Tables 0, 1, 3 and 7 and the ``claims_*.csv`` files the
notebooks wrote (:func:`loopgen.book.expectations.write_claims`) and sets them beside the paper's values, so that
a reader sees which of the paper's claims hold on which corpus. Nothing here computes a metric or a verdict: every
number and every "holds" comes from the notebooks' own files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from loopgen.book.tables import format_number

# (file, title, columns set side by side); a column missing from a run's file is left out of that run
TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("table1_reconstruction.csv", "Table 1: reconstruction error", ("reconstruction_error",)),
    ("table3_musical_metrics.csv", "Table 3: musical metrics",
     ("HD", "FNB", "US", "UP", "ND", "Loopability")),
    ("table7_masked_prior.csv", "Table 7 (not in the paper): the masked prior beside the LSTM prior",
     ("HD", "US", "Loopability", "lag-16 agreement")),
)
DATASET_ROWS = ("files scanned", "files with loops", "loops", "loops: train")
CLAIM_NOTEBOOKS = ("04", "05", "06", "08")


@dataclass
class Run:
    """The files of one finished run: its label (e.g. 'demo corpus') and its figures folder."""

    label: str
    folder: Path

    def table(self, filename: str) -> pd.DataFrame | None:
        path = self.folder / filename
        return pd.read_csv(path, index_col=0) if path.is_file() else None

    def claims(self, notebook: str) -> pd.DataFrame | None:
        path = self.folder / f"claims_{notebook}.csv"
        return pd.read_csv(path) if path.is_file() else None


def _runs(runs: Mapping[str, Path | str]) -> list[Run]:
    out = [Run(label, Path(folder)) for label, folder in runs.items()]
    missing = [r for r in out if not (r.folder / "table1_reconstruction.csv").is_file()]
    if missing:
        names = ", ".join(f"{r.label} ({r.folder})" for r in missing)
        raise FileNotFoundError(f"no finished run in {names}: run notebooks 01-09 there first (./run_all.sh)")
    return out


def dataset_side_by_side(runs: Mapping[str, Path | str]) -> pd.DataFrame:
    """Table 0's counts (files, files with loops, loops, training loops) of every run beside the paper's."""
    runs = _runs(runs)
    frame = pd.DataFrame(index=list(DATASET_ROWS))
    for run in runs:
        table = run.table("table0_dataset.csv")
        if table is not None and "paper" in table.columns and "paper" not in frame.columns:
            frame["paper"] = table["paper"].reindex(frame.index)
        frame[run.label] = None if table is None else table["ours"].reindex(frame.index)
    return frame


def table_side_by_side(filename: str, columns: tuple[str, ...], runs: Mapping[str, Path | str]) -> pd.DataFrame:
    """One table's ``columns`` for every row: the paper's value, then each run's (rows in the first run's order)."""
    runs = _runs(runs)
    tables = {run.label: run.table(filename) for run in runs}
    rows: list[str] = []
    for table in tables.values():
        rows += [r for r in ([] if table is None else table.index) if r not in rows]
    frame = pd.DataFrame(index=rows)
    for column in columns:
        paper = next((t[f"{column} (paper)"] for t in tables.values()
                      if t is not None and f"{column} (paper)" in t.columns), None)
        if paper is not None:
            frame[f"{column} (paper)"] = paper.reindex(rows)
        for label, table in tables.items():
            if table is not None and f"{column} (ours)" in table.columns:
                frame[f"{column} ({label})"] = table[f"{column} (ours)"].reindex(rows)
    return frame


def claims_side_by_side(runs: Mapping[str, Path | str]) -> pd.DataFrame:
    """Every claim the notebooks checked (by notebook, in order) and, per run, whether it holds there."""
    runs = _runs(runs)
    records: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:
        for notebook in CLAIM_NOTEBOOKS:
            claims = run.claims(notebook)
            for row in [] if claims is None else claims.itertuples(index=False):
                entry = records.setdefault((notebook, str(row.claim)), {})
                entry[run.label] = "holds" if str(row.holds) == "True" else "does not hold"
    frame = pd.DataFrame(
        [{"notebook": nb, "claim": claim, **{r.label: found.get(r.label, "-") for r in runs}}
         for (nb, claim), found in records.items()]
    )
    return frame


def claims_counts(claims: pd.DataFrame, labels: list[str]) -> dict[str, tuple[int, int]]:
    """Per run: (claims that hold, claims checked)."""
    return {label: (int((claims[label] == "holds").sum()), int((claims[label] != "-").sum())) for label in labels}


def _markdown(frame: pd.DataFrame) -> str:
    shown = frame.map(lambda v: "-" if v is None or (isinstance(v, float) and pd.isna(v)) else format_number(v))
    return shown.to_markdown(disable_numparse=True)


def report(runs: Mapping[str, Path | str]) -> str:
    """Markdown: Table 0's counts, Tables 1, 3 and 7 and the paper's claims, every run beside the paper."""
    labels = list(runs)
    parts = ["### The data", "", _markdown(dataset_side_by_side(runs)), ""]
    for filename, title, columns in TABLES:
        parts += [f"### {title}", "", _markdown(table_side_by_side(filename, columns, runs)), ""]
    claims = claims_side_by_side(runs)
    parts += ["### The paper's claims (computed by notebooks 04, 05, 06 and 08)", ""]
    if len(claims):
        parts += [claims.to_markdown(index=False, disable_numparse=True), ""]
        counts = claims_counts(claims, labels)
        parts.append("; ".join(f"{label}: {held} of {checked} hold" for label, (held, checked) in counts.items())
                     + ".")
    else:
        parts.append("No claims file in these folders: run notebooks 04-08 with this version of the library.")
    return "\n".join(parts) + "\n"
