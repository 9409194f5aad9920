"""The paper's remaining claims, checked on short runs (what notebook 08 calls).

Each function trains what it needs with :func:`loopgen.train.train_model` / ``train_prior`` (checkpointed and
reused like every other training), returns a :class:`Finding`: a small table and a verdict computed from its
numbers ("holds on this run" / "does not hold on this run"). The thresholds are arguments, stated in the verdict.

* :func:`kl_weight` — "VAE has produced many noisy samples even after achieving the minimal reconstruction error
  when beta ~ 0": a continuous VAE trained with beta ~ 0 and with beta = 1.
* :func:`commitment_weight` — "beta in VQ-VAE objectives did not affect much to reconstruction task": the
  VQ-VAE with commitment beta in {0.1, 0.25, 1}.
* :func:`prior_compression` — "the high compression ratio ... makes modeling prior easier": the prior trained on
  the codes of two Table 2 variants (t = 32 and t = 64).
* :func:`seed_spread` — "Our experiment results do not depend on random initialization so much": the default
  VQ-VAE (and its prior) with three seeds, Table 1 and Table 3 values.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loopgen import metrics, registry, sample, train
from loopgen.registry import VQ_DEFAULT
from loopgen.run.profiles import TrainSettings
from loopgen.train.evaluate import evaluate_prior

NOISE_METRICS = ("HD", "DB", "UP", "ND")  # Table 3 columns where noise moves samples away from the data


@dataclass
class Finding:
    """A claim, the numbers of this run, and whether the claim holds on them."""

    claim: str
    table: pd.DataFrame
    holds: bool
    verdict: str
    key: str = ""  # which of the paper's claims (``loopgen.paper.CLAIMS``)


def _finding(key: str, claim: str, table: pd.DataFrame, holds: bool, reason: str) -> Finding:
    """The Finding of claim ``key``, its verdict worded from ``holds`` and ``reason``."""
    verdict = f"{'Holds' if holds else 'Does not hold'} on this run: {claim} ({reason})."
    return Finding(claim, table, holds, verdict, key=key)


def distance_to_data(row: dict[str, float], reference: dict[str, float], keys=NOISE_METRICS) -> float:
    """Mean relative distance of a metric row to the training set's, over ``keys`` (0 = indistinguishable)."""
    parts = [abs(row[k] - reference[k]) / max(abs(reference[k]), 1e-3) for k in keys]
    return float(np.mean(parts))


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Runs:
    """What every check trains on: the loops, the (short) settings, the dataset's key, the checkpoint folder and
    the device. Every training is checkpointed and reused like any other (:mod:`loopgen.train`)."""

    train_loops: np.ndarray
    val_loops: np.ndarray
    settings: TrainSettings
    data_key: str
    checkpoint_dir: Path | str
    device: object = None

    def model(
        self, name: str, *, seed: int, settings: TrainSettings | None = None, model_kwargs: dict | None = None
    ) -> train.TrainResult:
        """Train (or reuse) autoencoder ``name``."""
        return train.train_model(
            name, self.train_loops, self.val_loops, settings or self.settings, data_key=self.data_key,
            model_kwargs=model_kwargs, checkpoint_dir=self.checkpoint_dir, device=self.device, seed=seed,
            progress=False,
        )

    def prior(self, vq: train.TrainResult, codes: np.ndarray, *, seed: int, val_codes=None) -> train.TrainResult:
        """Train (or reuse) the prior over ``codes``, the training loops' codes under ``vq``."""
        return train.train_prior(
            codes, self.settings, data_key=self.data_key, vq_key=vq.key, num_codes=vq.model.num_codes,
            val_codes=val_codes, checkpoint_dir=self.checkpoint_dir, device=self.device, seed=seed, progress=False,
        )


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt}


def _contrast(table: pd.DataFrame, first: str, second: str, expected: dict[str, str]) -> tuple[bool, dict[str, str]]:
    """Row ``first`` against row ``second``: whether ``first <op> second`` holds on every ``column: op`` of
    ``expected``, and each column's ``"<first> vs <second>"`` (3 significant digits) for the verdict."""
    a, b = table.loc[first], table.loc[second]
    holds = all(_COMPARE[op](a[column], b[column]) for column, op in expected.items())
    return bool(holds), {column: f"{a[column]:.3g} vs {b[column]:.3g}" for column in expected}


def kl_weight(
    runs: Runs,
    *,
    model: str = "cnn_vae",
    small_beta: float = 1e-3,
    n_samples: int = 256,
    seed: int = 0,
) -> Finding:
    """Continuous VAE ``model`` with the KL weight annealed to ``small_beta`` and to 1.

    Holds when beta ~ 0 reconstructs at least as well and its samples from N(0, I) are farther from the
    training set's metric row (HD, DB, UP, ND) than beta = 1's.
    """
    train_loops, val_loops = runs.train_loops, runs.val_loops
    reference = metrics.metric_row(train_loops)
    rows = {}
    for beta in (small_beta, 1.0):
        result = runs.model(model, seed=seed, settings=dataclasses.replace(runs.settings, kl_beta_max=beta))
        samples = sample.sample_vae(result.model, n_samples, seed=seed)
        row = metrics.metric_row(samples)
        rows[f"beta = {beta:g}"] = {
            "reconstruction error": metrics.reconstruction_error(val_loops, sample.reconstruct(result.model, val_loops)),
            **{k: row[k] for k in NOISE_METRICS},
            "distance to data": distance_to_data(row, reference),
        }
    rows["training set"] = {**{k: reference[k] for k in NOISE_METRICS}, "distance to data": 0.0}
    table = pd.DataFrame.from_dict(rows, orient="index")
    holds, vs = _contrast(table, table.index[0], table.index[1], {"reconstruction error": "<=", "distance to data": ">"})
    reason = (
        f"reconstruction error {vs['reconstruction error']}; samples' distance to the data {vs['distance to data']} "
        "(beta ~ 0 vs 1)"
    )
    return _finding("kl_weight", "beta ~ 0 reconstructs well but samples noisily", table, holds, reason)


def commitment_weight(
    runs: Runs,
    *,
    betas: tuple[float, ...] = (0.1, 0.25, 1.0),
    tolerance: float = 0.25,
    model_kwargs: dict | None = None,
    seed: int = 0,
) -> Finding:
    """The VQ-VAE with commitment weight ``betas``; holds when the validation reconstruction errors' spread
    (max - min) / mean is at most ``tolerance``."""
    rows = {}
    for beta in betas:
        kwargs = {**(model_kwargs or {}), "beta": beta}
        result = runs.model("vq_vae", seed=seed, model_kwargs=kwargs)
        x_hat = sample.reconstruct(result.model, runs.val_loops)
        rows[f"beta = {beta:g}"] = {
            "reconstruction error": metrics.reconstruction_error(runs.val_loops, x_hat),
            "perplexity (last epoch)": float(result.history["perplexity"].iloc[-1]),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    errors = table["reconstruction error"]
    spread = float((errors.max() - errors.min()) / max(errors.mean(), 1e-12))
    holds = spread <= tolerance
    reason = f"spread of the reconstruction error (max - min) / mean = {spread:.0%}, threshold {tolerance:.0%}"
    return _finding("commitment_weight", "the commitment weight does not change reconstruction much", table, holds, reason)


def prior_compression(
    runs: Runs,
    *,
    variants: tuple[tuple[int, int, int], ...] = (VQ_DEFAULT, (64, 16, 512)),
    seed: int = 0,
) -> Finding:
    """The prior trained on the codes of two VQ-VAE variants (t, L, K); holds when the more compressed one
    (fewer latent steps t) has the higher validation next-code accuracy and the lower cross-entropy."""
    rows = {}
    for t, L, K in variants:  # noqa: N806 - the paper's symbols
        kwargs = train.vq_kwargs_from(t, L, K)
        vq = runs.model("vq_vae", seed=seed, model_kwargs=kwargs)
        codes = sample.encode_codes(vq.model, runs.train_loops)
        val_codes = sample.encode_codes(vq.model, runs.val_loops)
        prior = runs.prior(vq, codes, seed=seed, val_codes=val_codes)
        last = prior.history.iloc[-1]
        if pd.isna(last.get("val_accuracy")):  # reused from seed_spread, which trains without validation codes
            last = evaluate_prior(prior.model, torch.from_numpy(val_codes), next(prior.model.parameters()).device)
        rows[f"t={t}, L={L}, K={K}"] = {
            "compression (cells per latent value)": 128 * 93 / (t * L),
            "prior val accuracy": float(last["val_accuracy"]),
            "prior val cross-entropy": float(last["val_loss"]),
            "codes used": int(np.unique(codes).size),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    ordered = table.sort_values("compression (cells per latent value)", ascending=False)
    high, low = ordered.index[0], ordered.index[-1]
    holds, vs = _contrast(ordered, high, low, {"prior val accuracy": ">", "prior val cross-entropy": "<"})
    accuracy = ordered["prior val accuracy"]
    reason = (
        f"next-code accuracy {accuracy[high]:.3g} ({high}) vs {accuracy[low]:.3g} ({low}); "
        f"cross-entropy {vs['prior val cross-entropy']}"
    )
    return _finding("prior_compression", "a higher compression ratio makes the prior easier to model", table, holds, reason)


def seed_spread(
    runs: Runs,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    tolerance: float = 0.25,
    n_samples: int = 256,
    temperature: float = 1.0,
) -> Finding:
    """The default VQ-VAE and its prior with several seeds: Table 1's reconstruction error and Table 3's row
    (samples at ``temperature``). Holds when every column's spread (max - min) / |mean| is at most ``tolerance``
    (columns whose mean is below 1e-3 are compared on an absolute 1e-3 scale)."""
    rows = {}
    for seed in seeds:
        vq = runs.model("vq_vae", seed=seed)
        codes = sample.encode_codes(vq.model, runs.train_loops)
        prior = runs.prior(vq, codes, seed=seed)
        first = sample.first_code_distribution(codes, num_codes=vq.model.num_codes)
        gen_codes = sample.sample_codes(prior.model, n_samples, first, temperature=temperature, seed=seed)
        row = metrics.metric_row(sample.decode_codes(vq.model, gen_codes), gen_codes, codes)
        rows[f"seed {seed}"] = {
            "reconstruction error": metrics.reconstruction_error(
                runs.val_loops, sample.reconstruct(vq.model, runs.val_loops)
            ),
            **{k: row[k] for k in ("HD", "FND", "FNB", "DB", "OS", "US", "UP", "ND")},
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    spreads = (table.max() - table.min()) / np.maximum(table.mean().abs(), 1e-3)
    worst = spreads.idxmax()
    holds = bool(spreads.max() <= tolerance)
    table.loc["spread (max - min) / mean"] = spreads
    reason = f"largest spread {spreads[worst]:.0%} ({worst}) over {len(seeds)} seeds, threshold {tolerance:.0%}"
    return _finding("seed_spread", "results do not depend much on the seed", table, holds, reason)


# ------------------------------------------------------------------------------------- notebook 08 helpers
SHORT_FACTOR = 0.2  # notebook 08 trains every model with a fifth of its profile's epochs


def short_settings(settings: TrainSettings, factor: float = SHORT_FACTOR) -> TrainSettings:
    """``settings`` with every model's epochs scaled by ``factor`` (at least 1) and shipped weights ignored."""
    names = registry.names()
    per_model = {}
    for name in names:
        recipe = settings.recipe(name)
        per_model[name] = {
            **settings.per_model.get(name, {}),
            "epochs": max(1, round(recipe.epochs * factor)),
            "shipped_from": None,
        }
    return dataclasses.replace(settings, per_model=per_model)


def recipe_summary(settings: TrainSettings) -> pd.DataFrame:
    """Epochs and batch size per model under ``settings`` (what notebook 08 trains with)."""
    names = ("cnn_vae", "vq_vae", "prior")
    return pd.DataFrame(
        {name: {"epochs": settings.recipe(name).epochs, "batch size": settings.recipe(name).batch_size} for name in names}
    ).T


def verdict_table(findings: list[Finding]) -> pd.DataFrame:
    """One row per claim: the paper's words ("paper") beside this run's verdict ("ours")."""
    from loopgen.paper import CLAIMS

    rows = {}
    for finding in findings:
        rows[finding.claim] = {"paper": CLAIMS.get(finding.key, "-"), "ours": finding.verdict, "holds": finding.holds}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "claim"
    return out
