"""What notebooks 02-08 do with a trained run, as library calls: open the dataset, load a trained model, the
reconstruction tables (1 and 2), the generated groups cached by provenance (Table 3), the latent-copy table (4).

:class:`Evaluation` opens one profile's run (its dataset must exist: notebook 01 writes it) and loads what a
notebook asks for, once. Each table function computes our numbers, sets them beside the paper's, writes
``figures/<stem>.csv`` and ``.md`` and returns a :class:`PaperTable`, which a notebook shows as Markdown; Tables 1-3
end with trivial baselines computed from the same loops (:mod:`loopgen.book.baselines`), which have no paper value.
Generated groups are stored with their :class:`loopgen.store.sample_groups.Provenance`: notebook 05 reuses a stored group
only when its provenance matches this run, and notebooks 06 and 07, which only read, get a clear error naming
notebook 05 instead of another run's samples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from loopgen import metrics, paper, registry, sample, train
from loopgen.book import baselines, extraction, tables
from loopgen.data import dataset
from loopgen.musician import generate
from loopgen.musician.trained import TrainedVQ
from loopgen.run import profiles
from loopgen.run.profiles import Profile, TrainSettings
from loopgen.runtime.device import pick_device
from loopgen.runtime.seed import seed_everything
from loopgen.store import sample_groups as generated
from loopgen.store.paths import Paths, require
from loopgen.store.sample_groups import Provenance

TRAINING_SET = registry.TRAINING_SET
GAUSSIAN_SAMPLING = "N(0, I)"


class Evaluation:
    """One profile's run as the notebooks see it: its paths, seed, dataset splits and trained models.

    Opening checks the dataset (missing: :class:`loopgen.store.paths.MissingInputError` naming notebook 01, nothing
    written), then creates the output folders and seeds every generator (:func:`loopgen.runtime.seed.seed_everything`).
    """

    def __init__(self, profile: str | Profile, seed: int = 0, paths: Paths | None = None,
                 midi_dir: str | Path = "") -> None:
        self.profile = profiles.get(profile) if isinstance(profile, str) else profile
        self.seed = seed
        # MIDI_DIR: another folder's loops (notebook 01 extracted them), outputs in figures/<corpus>/, build/<corpus>/
        source, self.paths = extraction.run_paths(self.profile, paths or Paths(), midi_dir)
        self.corpus_name = source.corpus_name if source else self.profile.corpus.name
        self.data_dir = dataset.dataset_dir(self.paths, self.corpus_name)
        # the manifest is written last: a folder without one is an extraction that never finished
        self.manifest = json.loads(require(self.data_dir / "manifest.json", made_by=dataset.MADE_BY).read_text())
        if source is not None:
            extraction.require_enough_loops(int(self.manifest["counts"]["train"]), self.profile, self.corpus_name)
        self.paths.ensure()  # only once the run's dataset is there: a failed start writes nothing
        seed_everything(seed)
        self._splits: dict[str, dataset.LoopSet] = {}
        self._models: dict[str, nn.Module] = {}
        self._weights: dict[str, str] = {}

    # --- the dataset ---
    @property
    def data_key(self) -> str:
        """The dataset's content hash: every checkpoint and generated group is keyed by it."""
        return self.manifest["data_key"]

    def split(self, name: str) -> dataset.LoopSet:
        """The loops of one split ("train", "val", "test"), read once."""
        if name not in self._splits:
            self._splits[name] = dataset.load_loops(self.data_dir, split=name)
        return self._splits[name]

    @property
    def train(self) -> dataset.LoopSet:
        return self.split("train")

    @property
    def val(self) -> dataset.LoopSet:
        return self.split("val")

    @property
    def n_samples(self) -> int:
        """Generated loops per group: the profile's ``n_samples``, else as many as the training set (the paper)."""
        return self.profile.sample.n_samples or int(self.manifest["counts"].get("train", 0))

    # --- trained models ---
    @cached_property
    def device(self):
        """The device the models are trained on (CUDA, then MPS, then CPU): they encode, reconstruct and sample
        there too. A GPU profile (paper, colab) about to run on a CPU is warned about."""
        from loopgen.runtime.device import warn_if_gpu_profile_on_cpu

        device = pick_device()
        warn_if_gpu_profile_on_cpu(self.profile.name, device)
        return device

    def load(self, name: str, settings: TrainSettings | None = None, model_kwargs: dict | None = None) -> nn.Module:
        """The finished model ``name`` of this run (``settings`` default: the profile's) on :attr:`device`; raises
        MissingInputError naming the notebook that trains it."""
        model, _ = train.load_trained(
            name, settings or self.profile.train, data_key=self.data_key, model_kwargs=model_kwargs,
            checkpoint_dir=self.paths.checkpoints, seed=self.seed, device=self.device,
        )
        return model

    def model(self, name: str) -> nn.Module:
        """:meth:`load` with the profile's settings and default arguments, loaded once."""
        if name not in self._models:
            self._models[name] = self.load(name)
        return self._models[name]

    def trained_vq(self, prior_name: str = "prior", prior: nn.Module | None = None) -> TrainedVQ:
        """This run's VQ-VAE with a prior ("prior", the paper's LSTM, or "masked_prior": pass ``prior`` for a model
        not trained by :meth:`model`), as ``vary`` takes it: the run's own dataset, seed and checkpoints, so
        that a run on a MIDI folder (MIDI_DIR) or with another SEED varies its own loops with its own models."""
        prior = self.model(prior_name) if prior is None else prior
        keys = generate.checkpoint_keys("vq_vae", self.profile.train, data_key=self.data_key, seed=self.seed,
                                        prior_name=prior_name)
        return TrainedVQ(self.model("vq_vae"), prior, self.sampler("vq_vae").first_codes, self.train.loops,
                         keys["checkpoint_key"], keys["prior_key"], f"profile {self.profile.name}", prior_name)

    @cached_property
    def train_codes(self) -> np.ndarray:
        """The training loops' code sequences under the default VQ-VAE (N, t)."""
        return sample.encode_codes(self.model("vq_vae"), self.train.loops)

    def checkpoint_key(self, name: str) -> str:
        """The key of model ``name``'s checkpoint in this run (what ``train_prior`` takes as ``vq_key``)."""
        return train.checkpoint_key(name, self.profile.train, data_key=self.data_key, seed=self.seed)

    def weights(self, model_name: str) -> str:
        """What sampling ``model_name`` loads: each checkpoint's key, a digest of the weights actually loaded (a model
        retrained under the same key gets another) and, when not trained here, where the weights came from."""
        names = (model_name, "prior") if model_name == "vq_vae" else (model_name,)
        return ", ".join(self._checkpoint_identity(name) for name in names)

    def _checkpoint_identity(self, name: str) -> str:
        if name not in self._weights:
            settings = self.profile.train
            keys = generate.checkpoint_keys("vq_vae" if name == "prior" else name, settings,
                                            data_key=self.data_key, seed=self.seed)
            key = keys["prior_key" if name == "prior" else "checkpoint_key"]
            source = train.weights_source(
                name, settings, data_key=self.data_key, checkpoint_dir=self.paths.checkpoints, seed=self.seed
            )
            shipped = "" if source == "trained here" else f" ({source})"
            self._weights[name] = f"{name} {key} weights {train.weights_digest(self.model(name))}{shipped}"
        return self._weights[name]

    def sampler(self, model_name: str) -> generate.Sampler:
        """The trained model ready to generate (the VQ-VAE with its prior and first-code distribution)."""
        if model_name == "vq_vae":
            return generate.Sampler.for_vq(self.model("vq_vae"), self.model("prior"), self.train_codes)
        return generate.Sampler(self.model(model_name))

    # --- generated groups ---
    def group_plan(self) -> dict[str, tuple[str, float | None]]:
        """Every generated group of this profile, in Table 3's order: group -> (model, prior temperature)."""
        plan: dict[str, tuple[str, float | None]] = {name: (name, None) for name in registry.continuous()}
        sampling = self.profile.sample
        for temperature in (None, *sampling.temperatures, sampling.listening_temperature):
            plan[registry.temperature_group(temperature)] = ("vq_vae", temperature)
        return plan

    def provenance(self, group: str) -> Provenance:
        """What this run's ``group`` is made of: model, checkpoints, data key, seed, n and sampling."""
        if group == TRAINING_SET:
            n = int(self.manifest["counts"].get("train", 0))
            # the training set's codes depend on the VQ-VAE only
            vq = self._checkpoint_identity("vq_vae")
            return Provenance(TRAINING_SET, vq, self.data_key, self.seed, n, "all training loops")
        plan = self.group_plan()
        if group not in plan:
            raise ValueError(f"profile {self.profile.name} makes no group {group!r}; its groups: {list(plan)}")
        model, temperature = plan[group]
        if model != "vq_vae":
            how = GAUSSIAN_SAMPLING
        else:
            how = "argmax" if temperature is None else f"temperature {temperature:g}"
        return Provenance(model, self.weights(model), self.data_key, self.seed, self.n_samples, how)

    def stored_group(self, group: str) -> Group:
        """A group notebook 05 stored for this run; MissingInputError naming notebook 05 when it is missing or
        was made by other weights, data, seed, n or sampling. Never samples."""
        expected = self.provenance(group)
        loops, codes = generated.load_generated(self.paths, self.profile.name, group, expected)
        return Group(loops, codes, expected, reused=True)

    def stored_groups(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """The loops of several stored groups (:meth:`stored_group`), by group name."""
        return {name: self.stored_group(name).loops for name in names}


@dataclass(frozen=True)
class Group:
    """One group of loops: the loops (N, 128, 93), their codes (VQ-VAE and training set) and what made them."""

    loops: np.ndarray
    codes: np.ndarray | None
    provenance: Provenance
    reused: bool  # read back from build/samples (same provenance) rather than made in this call


def generate_groups(ev: Evaluation) -> dict[str, Group]:
    """The training set and every generated group of Table 3, stored in ``build/samples/<profile>/``.

    A group already stored with this run's provenance is read back; any other is sampled (seeded by the run's
    seed) and stored, so a second run samples nothing and a retrained model's groups are made anew."""
    groups = {TRAINING_SET: _group(ev, TRAINING_SET, lambda: (ev.train.loops, ev.train_codes))}
    for name, (model, temperature) in ev.group_plan().items():
        groups[name] = _group(ev, name, lambda m=model, t=temperature: ev.sampler(m).draw(ev.n_samples, seed=ev.seed, temperature=t))
    return groups


def _group(ev: Evaluation, name: str, make) -> Group:
    provenance = ev.provenance(name)
    if generated.stored_provenance(ev.paths, ev.profile.name, name) == provenance:
        loops, codes = generated.load_generated(ev.paths, ev.profile.name, name)
        return Group(loops, codes, provenance, reused=True)
    loops, codes = make()
    generated.save_generated(ev.paths, ev.profile.name, name, loops, codes, provenance=provenance)
    return Group(loops, codes, provenance, reused=False)


# --- tables ---
@dataclass(repr=False)
class PaperTable:
    """A table of our numbers (``ours``: the models' rows) beside the paper's (``table``, which ends with the rows
    of ``baselines``: trivial baselines computed from the same loops, no paper value), the notes written under
    it, and loops worth showing with it (``examples``). Shown in a notebook as Markdown."""

    stem: str
    title: str
    ours: pd.DataFrame
    table: pd.DataFrame
    notes: list[str]
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    baselines: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, ev: Evaluation) -> tuple[Path, Path]:
        """``figures/<stem>.csv`` and ``.md`` (:func:`loopgen.book.tables.write_table`)."""
        return tables.write_table(
            self.table, self.stem, paths=ev.paths, notes=self.notes, title=self.title, profile=ev.profile.name
        )

    def __repr__(self) -> str:
        return f"PaperTable({self.stem!r}: {self.title})"

    def _repr_markdown_(self) -> str:
        return tables.to_markdown(self.table, self.notes)


def _reconstructions(ev: Evaluation, models: Iterator[tuple[str, nn.Module]]) -> tuple[pd.DataFrame, dict]:
    """Each model's reconstruction error on the validation loops, and its reconstruction of the first one."""
    val = ev.val.loops
    if not len(val):
        raise ValueError(f"the dataset {ev.data_dir.name} has no validation loops: a reconstruction table needs some")
    errors, first = {}, {}
    for label, model in models:
        x_hat = sample.reconstruct(model, val, ev.profile.train.batch_size)
        errors[label] = {"reconstruction_error": metrics.reconstruction_error(val, x_hat)}
        first[label] = x_hat[0]
    return pd.DataFrame.from_dict(errors, orient="index"), first


def _reconstruction_notes(ev: Evaluation) -> list[str]:
    return [
        f"Profile: {ev.profile.name}. Validation loops: {len(ev.val):,} (paper: {paper.DATASET.validation:,}).",
        "Reconstruction error = Hamming(input, reconstruction at sigmoid >= 0.5) / (128 x 93), averaged over loops.",
        baselines.NOTES[baselines.SILENCE],
        baselines.NOTES[baselines.COPY_BAR_1],
    ]


def reconstruction_table(ev: Evaluation) -> PaperTable:
    """Table 1: every autoencoder's validation reconstruction error; ``examples`` holds each model's
    reconstruction of the first validation loop."""
    autoencoders = registry.autoencoders()
    ours, first = _reconstructions(ev, ((paper.MODEL_LABELS[name], ev.load(name)) for name in autoencoders))
    notes = _reconstruction_notes(ev) + train.training_notes(
        autoencoders, ev.profile.train, data_key=ev.data_key, checkpoint_dir=ev.paths.checkpoints, seed=ev.seed
    )
    trivial = baselines.reconstruction_baselines(ev.val.loops)
    table = PaperTable("table1_reconstruction", "Table 1: reconstruction error", ours,
                       tables.with_baselines(tables.side_by_side(ours, paper.TABLE1), trivial), notes, first, trivial)
    table.write(ev)
    return table


def latent_size_table(ev: Evaluation) -> PaperTable:
    """Table 2: the VQ-VAE's validation reconstruction error for each (t, L, K), trained with the profile's
    Table 2 recipe."""
    settings = ev.profile.table2_train
    models = (
        (f"t={t}, L={L}, K={K}", ev.load("vq_vae", settings, train.vq_kwargs_from(t, L, K)))
        for t, L, K in registry.TABLE2_SETTINGS  # noqa: N806 - the paper's symbols
    )
    ours, _ = _reconstructions(ev, models)
    recipe = settings.recipe("vq_vae")
    retrained = " (a shorter recipe than the main VQ-VAE's: the default setting is trained again for this table)."
    notes = _reconstruction_notes(ev) + [
        "t = latent time steps, L = latent dimension, K = dictionary size; the default model is t=32, L=16, K=512.",
        f"All six trained alike: {recipe.epochs} epochs, batch {recipe.batch_size}"
        + (retrained if ev.profile.table2_retrains_default else "."),
    ]
    trivial = baselines.reconstruction_baselines(ev.val.loops)
    side = tables.side_by_side(ours, paper.TABLE2[["reconstruction_error"]])
    table = PaperTable("table2_latent_size", "Table 2: VQ-VAE latent size", ours,
                       tables.with_baselines(side, trivial), notes, baselines=trivial)
    table.write(ev)
    return table


def musical_metrics_table(ev: Evaluation, groups: dict[str, Group]) -> PaperTable:
    """Table 3: one metric row per group (OS against the training codes), plus loopability; then the baseline
    of the training loops with shuffled bars (shuffled with the run's seed)."""
    rows = {
        paper.GROUP_LABELS[name]: metrics.metric_row(g.loops, g.codes, ev.train_codes if g.codes is not None else None)
        | {"Loopability": float(metrics.loopability(g.loops).mean())}
        for name, g in groups.items()
    }
    ours = metrics.metric_table(rows)
    listening = ev.profile.sample.listening_temperature
    notes = tables.standard_notes(
        ev.profile.name,
        ev.n_samples,
        extra=[
            f"Training-set row: all {len(ev.train):,} training loops (paper: {paper.DATASET.train:,}); every "
            f"generated row: {ev.n_samples:,} loops.",
            f"VQ-VAE (temp {listening:g}) is the listening-test group (notebook 07), not a row of the paper's table.",
            metrics.LOOPABILITY_NOTE,
            baselines.NOTES[baselines.SHUFFLED_BARS],
            *train.training_notes([*registry.autoencoders(), "prior"], ev.profile.train, data_key=ev.data_key,
                                  checkpoint_dir=ev.paths.checkpoints, seed=ev.seed),
        ],
    )
    trivial = metrics.metric_table({baselines.SHUFFLED_BARS: baselines.shuffled_bars_row(ev.train.loops, ev.seed)})
    table = PaperTable("table3_musical_metrics", "Table 3: musical metrics", ours,
                       tables.with_baselines(tables.side_by_side(ours, paper.TABLE3), trivial), notes,
                       baselines=trivial)
    table.write(ev)
    return table


def extras_table(groups: dict[str, Group]) -> pd.DataFrame:
    """Measures beyond the paper per group (:func:`loopgen.metrics.extras_row`) and the share of unique loops."""
    return metrics.metric_table(
        {
            paper.GROUP_LABELS[name]: metrics.extras_row(g.loops) | {"unique loops": metrics.unique_loops(g.loops)}
            for name, g in groups.items()
        }
    )


def latent_copy_table(ev: Evaluation) -> tuple[PaperTable, pd.DataFrame]:
    """Table 4: the stored argmax and temperature groups after copying latent steps 0-1 onto 16-17, and the
    same metrics before the edit (our numbers only). ``examples`` holds each group's edited loops."""
    before, after, edited = {}, {}, {}
    vq = ev.model("vq_vae")
    for temperature in (None, *ev.profile.sample.temperatures):
        name = registry.temperature_group(temperature)
        group = ev.stored_group(name)
        copied = sample.copy_code_span(group.codes, src=paper.COPY_SOURCE_STEPS, dst=paper.COPY_TARGET_STEPS)
        edited[name] = sample.decode_codes(vq, copied)
        before[paper.GROUP_LABELS[name]] = metrics.metric_row(group.loops, group.codes, ev.train_codes)
        after[paper.GROUP_LABELS[name]] = metrics.metric_row(edited[name], copied, ev.train_codes)
    ours = metrics.metric_table(after)
    notes = tables.standard_notes(
        ev.profile.name,
        len(group.loops),
        extra=["Codes at latent steps 0, 1 copied onto 16, 17 before decoding (t = 32: first half of bar 1 onto bar 5)."],
    )
    table = PaperTable("table4_latent_manipulation", "Table 4: after copying latent codes", ours,
                       tables.side_by_side(ours, paper.TABLE4), notes, edited)
    table.write(ev)
    return table, metrics.metric_table(before)
