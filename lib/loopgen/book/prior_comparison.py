"""Notebook 09 (not in the paper): the masked code prior beside the paper's LSTM prior, as library calls.

:func:`prior_groups` samples both priors (and the references: the training set, the VQ-VAE's reconstructions of
the training loops, the LSTM samples with their seams repaired by the masked prior); :func:`comparison_table` is
``figures/table7_masked_prior.*`` (the Table 3 columns, loopability, lag-16 agreement, held-out cross-entropies
and training time, the paper's values beside ours where the paper has the row); :func:`goals_table` checks the
issue's goals and says by how much each is missed; :func:`vary_table` runs ``vary`` with both priors on the same
loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from loopgen import metrics, paper, sample
from loopgen import sample_masked as masked
from loopgen.book import tables
from loopgen.book.evaluation import Evaluation, PaperTable
from loopgen.musician import variation
from loopgen.musician.trained import TrainedVQ

STEM = "table7_masked_prior"
TITLE = "Table 7 (not in the paper): a masked code prior beside the paper's LSTM prior"
TRAINING = "Training set"
RECONSTRUCTED = "VQ-VAE reconstructions of the training loops"
LSTM_ARGMAX = paper.GROUP_LABELS["vq_vae_argmax"]  # the paper's rows: the VQ-VAE with its LSTM prior
LSTM_TEMP1 = paper.GROUP_LABELS["vq_vae_temp1"]
MASKED_TEMP1 = "VQ-VAE + masked prior (temp 1)"
SEAMS_REPAIRED = "VQ-VAE (temp 1), seams repaired by the masked prior"
LAG = "lag-16 agreement"
CE_MASKED = "held-out masked-code CE"
CE_CONTINUATION = "held-out CE, bars 5-8 given 1-4"
SECONDS = "training seconds"


@dataclass
class Group:
    """A set of loops and their code sequences."""

    loops: np.ndarray
    codes: np.ndarray


def training_seconds(history: pd.DataFrame) -> float:
    """Total seconds of the epochs a training history records (NaN when it records none)."""
    return float(history["seconds"].sum()) if "seconds" in history else float("nan")


def trained_vq(ev: Evaluation, prior: nn.Module, prior_name: str) -> TrainedVQ:
    """The run's VQ-VAE with ``prior`` ("prior", the LSTM, or "masked_prior"), as ``vary`` takes it."""
    return ev.trained_vq(prior_name, prior)


def prior_groups(
    ev: Evaluation, lstm: nn.Module, masked_prior: nn.Module, n: int, *, steps: int, temperature: float = 1.0
) -> dict[str, Group]:
    """Every row's loops and codes: the training set, its reconstructions, ``n`` samples of each prior (the
    LSTM at argmax and ``temperature``, the masked prior at ``temperature`` in ``steps`` rounds), and the LSTM's
    samples at ``temperature`` with their seams repaired by the masked prior. Seeded by the run's seed."""
    vq, codes = ev.model("vq_vae"), ev.train_codes
    sampler = ev.sampler("vq_vae")
    first = sampler.first_codes
    lstm_argmax = sample.sample_codes(lstm, n, first, temperature=None, seed=ev.seed)
    lstm_temp = sample.sample_codes(lstm, n, first, temperature=temperature, seed=ev.seed)
    masked_temp = masked.sample_masked(masked_prior, n, steps=steps, temperature=temperature, seed=ev.seed)
    repaired = masked.repair_seams(masked_prior, lstm_temp, temperature=temperature, seed=ev.seed)
    out = {TRAINING: Group(ev.train.loops, codes), RECONSTRUCTED: Group(sample.decode_codes(vq, codes), codes)}
    for label, c in ((LSTM_ARGMAX, lstm_argmax), (LSTM_TEMP1, lstm_temp), (MASKED_TEMP1, masked_temp),
                     (SEAMS_REPAIRED, repaired)):
        out[label] = Group(sample.decode_codes(vq, c), c)
    return out


def comparison_table(
    ev: Evaluation,
    groups: dict[str, Group],
    *,
    lstm: nn.Module,
    masked_prior: nn.Module,
    val_codes: np.ndarray,
    seconds: dict[str, float],
    steps: int,
) -> PaperTable:
    """Table 7: one row per group (Table 3's columns, loopability, lag-16 agreement; OS against the training
    codes), the held-out cross-entropies on the prior rows, the training seconds; written to figures/."""
    rows = {}
    for label, g in groups.items():
        row = metrics.metric_row(g.loops, g.codes, ev.train_codes)
        row |= {"Loopability": float(metrics.loopability(g.loops).mean()), LAG: masked.lag_agreement(g.codes)}
        rows[label] = row
    ce_cont = {LSTM_TEMP1: masked.continuation_cross_entropy(lstm, val_codes, start=val_codes.shape[1] // 2),
               MASKED_TEMP1: masked.continuation_cross_entropy(masked_prior, val_codes, start=val_codes.shape[1] // 2)}
    for label in rows:
        rows[label][CE_MASKED] = masked.masked_cross_entropy(masked_prior, val_codes, seed=ev.seed) if label == MASKED_TEMP1 else np.nan
        rows[label][CE_CONTINUATION] = ce_cont.get(label, np.nan)
        rows[label][SECONDS] = seconds.get(label, np.nan)
    ours = metrics.metric_table(rows)
    papers = paper.TABLE3.loc[[TRAINING, LSTM_ARGMAX, LSTM_TEMP1]]
    n = len(groups[MASKED_TEMP1].loops)
    notes = tables.standard_notes(ev.profile.name, extra=[
        "Not in the paper: the masked code prior, the rows without a paper value and every measure after ND "
        "(our column only) are this project's (notebook 09).",
        f"Training-set and reconstruction rows: all {len(ev.train):,} training loops; every sampled row: {n:,} "
        f"loops. {LSTM_ARGMAX} and {LSTM_TEMP1} are the paper's rows: the VQ-VAE with its LSTM prior.",
        f"Masked prior: {steps} rounds of parallel decoding (MaskGIT's cosine schedule). Seams repaired: the "
        "codes at latent positions 31, 0 (bar 8 -> 1) and 15, 16 (bar 4 -> 5) of the LSTM's samples redrawn "
        "by the masked prior from all the other codes (4 rounds).",
        metrics.LOOPABILITY_NOTE,
        f"{LAG}: share of latent positions whose code equals the code 16 steps later (around the circle).",
        f"{CE_MASKED} (nats per code): validation codes, cosine-schedule masks (4 per sequence, seeded), each "
        f"masked code predicted from the visible ones. {CE_CONTINUATION} (nats per code): -log p(codes of bars "
        "5-8 | codes of bars 1-4) / 16 on the validation codes, exactly, by the chain rule for both priors (the "
        "masked prior read left to right); lower is better. Validation codes: "
        f"{len(val_codes):,}.",
        f"{SECONDS}: the wall time of each prior's training epochs as its checkpoint recorded them.",
    ])
    merged = tables.side_by_side(ours, papers)
    ours_only = [(c, tables.PAPER) for c in ours.columns if c not in papers.columns]  # measures the paper lacks
    table = PaperTable(STEM, TITLE, ours, merged.drop(columns=ours_only), notes)
    table.write(ev)
    return table


@dataclass(frozen=True)
class Goal:
    """One goal of the masked prior: what is measured, the bound, and which side of it passes."""

    goal: str
    value: float
    bound: float
    at_least: bool  # True: value >= bound passes; False: value <= bound (or < for a strict bound)
    strict: bool = False

    @property
    def met(self) -> bool:
        if self.at_least:
            return self.value > self.bound if self.strict else self.value >= self.bound
        return self.value < self.bound if self.strict else self.value <= self.bound

    @property
    def missed_by(self) -> float:
        """How far the value is on the wrong side of the bound (0 when met)."""
        return 0.0 if self.met else abs(self.value - self.bound)


def goals_table(ours: pd.DataFrame, vary: pd.DataFrame) -> pd.DataFrame:
    """The issue's goals for the masked prior at temperature 1, each with our value, its bound, whether it is
    met and by how much it is missed (computed)."""
    m, train = ours.loc[MASKED_TEMP1], ours.loc[TRAINING]
    paper_hd = float(paper.TABLE3.loc[LSTM_TEMP1, "HD"])
    masked_vary = vary.loc["masked prior, bars 5-8"]
    goals = [
        Goal("loopability >= 95 % of the VQ-VAE's reconstructions'", m["Loopability"],
             0.95 * ours.loc[RECONSTRUCTED, "Loopability"], True),
        Goal("lag-16 agreement >= 0.8", m[LAG], 0.8, True),
        Goal(f"HD below the paper's {paper_hd:.2e}", m["HD"], paper_hd, False, strict=True),
        Goal("FNB >= 0.9", m["FNB"], 0.9, True),
        Goal("UP >= 0.5 x the training set's", m["UP"], 0.5 * train["UP"], True),
        Goal("UP <= 2 x the training set's", m["UP"], 2 * train["UP"], False),
        Goal("ND >= 0.5 x the training set's", m["ND"], 0.5 * train["ND"], True),
        Goal("ND <= 2 x the training set's", m["ND"], 2 * train["ND"], False),
        Goal("OS no higher than the LSTM prior's argmax", m["OS"], ours.loc[LSTM_ARGMAX, "OS"], False),
        Goal("vary (bars 5-8): mean loopability >= 0.75", masked_vary["mean loopability"], 0.75, True),
        Goal("vary (bars 5-8): bars 1-4 bit-identical (share of variations)", masked_vary["bars kept bit-identical"],
             1.0, True),
    ]
    return pd.DataFrame(
        [{"goal": g.goal, "ours": g.value, "bound": g.bound, "met": g.met, "missed by": g.missed_by} for g in goals]
    ).set_index("goal")


def vary_table(
    loops: np.ndarray, lstm_model: TrainedVQ, masked_model: TrainedVQ, n: int, *, seed: int, steps: int
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``vary`` with both priors on the same ``loops``: bars 5-8 and bars 3-4 regenerated, ``n`` variations of
    each loop at temperature 1, the masked prior without and with copy-through (``vary``'s default for it: a
    regenerated code equal to the code four bars away in a kept bar takes that bar's own notes). Per case: mean and lowest loopability, the share of variations whose kept bars
    are the original's bit for bit, the share whose codes outside the span are the original's. Also returns
    the variations of the first loop per case (for listening)."""
    rows, first = {}, {}
    for span, name in (((5, 8), "bars 5-8"), ((3, 4), "bars 3-4")):
        keep = variation.kept_steps(span)
        outside = ~masked.bar_positions(span, lstm_model.vq.latent_steps)
        for label, model, copy in (("LSTM prior", lstm_model, "off"), ("masked prior", masked_model, "off"),
                                   ("masked prior + copy-through", masked_model, "code")):
            scores, kept, codes_kept = [], [], []
            for i, loop in enumerate(loops):
                v = variation.vary(loop, model, n, bars=span, temperature=1.0, seed=seed + i, steps=steps,
                                   copy_through=copy)
                scores.append(metrics.loopability(v.loops))
                kept.append((v.loops[:, keep] == loop[keep]).all(axis=(1, 2)))
                codes_kept.append((v.codes[:, outside] == v.original_codes[outside]).all(axis=1))
                if i == 0:
                    first[f"{label}, {name}"] = v.loops
            scores = np.concatenate(scores)
            rows[f"{label}, {name}"] = {
                "loops": len(loops), "variations": len(scores), "mean loopability": float(scores.mean()),
                "lowest loopability": float(scores.min()),
                "bars kept bit-identical": float(np.concatenate(kept).mean()),
                "codes outside the span kept": float(np.concatenate(codes_kept).mean()),
            }
    return pd.DataFrame.from_dict(rows, orient="index"), first
