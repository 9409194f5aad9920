"""Every choice the paper leaves open (or states ambiguously), and the page that lists them (docs/choices.md).

:data:`OPEN_CHOICES` gives, per setting, the paper's words, our value per profile (read from the profiles and the
model defaults, never retyped) and why. :func:`open_choices_markdown` renders it for docs/choices.md (a test keeps the
two equal; regenerate with ``python -c "from loopgen.run import choices; choices.write_readme_open_choices('docs/choices.md')"``)
and :func:`open_choices_note` as one line for the notes of the tables the paper profile writes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopgen.run.profiles import PROFILES, Profile


def _model_default(name: str, parameter: str):
    from loopgen.models import MODELS

    return inspect.signature(MODELS[name].__init__).parameters[parameter].default


def _sci(x: float) -> str:
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _paper_words_epochs() -> str:
    from loopgen.paper import DATASET, TRAINING

    return (
        f'"{TRAINING["epochs"]:,} epochs and batch size of {TRAINING["batch_size"]:,}"; '
        f"{DATASET.train:,} training loops"
    )


def _steps_per_paper_epoch() -> int:
    from loopgen.paper import DATASET, TRAINING

    return -(-DATASET.train // TRAINING["batch_size"])


def _vq_loss(p: Profile) -> str:
    beta = _model_default("vq_vae", "beta")
    if p.train.vq_loss_reduction == "mean":
        return f"mean BCE over cells + {beta:g} x mean squared error over latent values"
    return f"BCE summed over 128 x 93 cells + {beta:g} x squared error summed over t x L values, per loop"


def _precision(p: Profile) -> str:
    return {
        "auto": "bf16 autocast where the GPU (compute capability >= 8.0) or CPU (oneDNN bf16) has bf16 units, "
        "fp16 autocast with a gradient scaler on a GPU of compute capability 7.x (T4, V100), else float32",
        "bf16": "bf16 autocast on every device",
        "fp16": "fp16 autocast with a gradient scaler (CUDA GPUs)",
        "tf32": "float32; TF32 matmuls and convolutions on CUDA",
        "fp32": "float32 everywhere",
    }[p.train.precision]


def _kl(p: Profile) -> str:
    top = f"{p.train.kl_beta_max:g}"
    return f"linear 0 -> {top} over the first {p.train.kl_anneal_fraction:.0%} of the optimiser steps, then {top}"


def _epochs(p: Profile) -> str:
    t = p.train
    loops = f"{t.max_train_loops:,} loops" if t.max_train_loops else "all training loops"
    parts = []
    for name, label in (("vq_vae", "VQ"), ("cnn_vae", "CNN"), ("ar_lstm_vae", "AR"), ("nonar_lstm_vae", "NonAR"), ("prior", "prior")):
        r = t.recipe(name)
        parts.append(f"{label} {r.epochs:,} x batch {r.batch_size:,}" + (f" (or {r.shipped_from} weights)" if r.shipped_from else ""))
    return "; ".join(parts) + f"; {loops}"


def _short_run(p: Profile) -> str:
    t = p.train
    tricks = []
    if t.warmup_steps:
        tricks.append(f"{t.warmup_steps} warm-up steps")
    if t.grad_clip:
        tricks.append(f"gradient norm clipped at {t.grad_clip:g}")
    if t.keep_best:
        tricks.append("weights of the best validation epoch")
    dropout = t.model_kwargs("prior").get("dropout")
    if dropout:
        tricks.append(f"prior dropout {dropout:g}")
    return ", ".join(tricks) if tricks else "none"


def _corpus(p: Profile) -> str:
    c = p.corpus
    if c.source == "demo":
        return f"the procedural demo corpus: {c.n_songs:,} songs (seed {c.seed})"
    if c.sample_files is None:
        return "all of LMD-full"
    return f"a seeded random sample of {c.sample_files:,} LMD-full files (seed {c.sample_seed})"


def _lmd_sample_why() -> str:
    p = PROFILES["lmd-sample"]
    from loopgen.run.profiles import LMD_SAMPLE_TRAIN_LOOPS

    return (
        f"paper profile: all of it, as in the paper. `lmd-sample` profile: {_corpus(p)}, the files whose SHA-256 of "
        f"'<seed>\\n<relative path>' is smallest (the same files on every machine, whatever order a folder lists them "
        f"in); our estimate of its yield is the paper's, ~{LMD_SAMPLE_TRAIN_LOOPS:,} training loops, sized for about "
        f"half an hour on two CPU cores (fewer than {p.extract.min_train_loops:,} are refused). demo and smoke: no "
        "download needed."
    )


def _augmentation(p: Profile) -> str:
    parts = []
    for name in ("vq_vae", "cnn_vae", "ar_lstm_vae", "nonar_lstm_vae", "prior", "masked_prior"):
        r = p.train.recipe(name)
        what = ([f"bar rotations by {r.augment_rotate_bars}"] if r.augment_rotate_bars else []) + (
            [f"bass transposed by up to {r.augment_transpose} semitones"] if r.augment_transpose else [])
        if what:
            parts.append(f"{name}: {' and '.join(what)}")
    return "; ".join(parts) if parts else "none"


@dataclass(frozen=True)
class OpenChoice:
    """A setting the paper leaves open or states ambiguously: its words, our value per profile, why."""

    setting: str
    paper_says: str  # the paper's words, or "not stated"
    ours: Callable[[Profile], str]  # our value under a profile, read from the code
    why: str


OPEN_CHOICES: tuple[OpenChoice, ...] = (
    OpenChoice(
        "training songs",
        '"For 176,581 MIDI files in LMD-full, 150,750 loops are extracted"',
        _corpus,
        _lmd_sample_why(),
    ),
    OpenChoice(
        "epochs, batch size, training loops",
        _paper_words_epochs(),
        _epochs,
        "paper profile as stated (the prior too: the sentence covers 'them', every model); demo and smoke are "
        "small CPU runs.",
    ),
    OpenChoice(
        "Bi-LSTM encoder width",
        'Appendix A (a), (b): "h shape: (1, 256)"',
        lambda p: f"{p.train.lstm_encoder_hidden} per direction (concatenated h: {2 * p.train.lstm_encoder_hidden})",
        "h is what Linear reads for mu and sigma, i.e. the concatenated forward and backward states, so 128 per "
        "direction; the other reading (256 per direction, h of 512) is the constructor default (smoke) and stays selectable.",
    ),
    OpenChoice(
        "sigma head",
        '"sigma = Linear(h)"',
        lambda p: "read as the log-variance",
        "a linear layer can be negative; log-variance is the usual parameterisation of a Gaussian head.",
    ),
    OpenChoice(
        "KL weight beta schedule",
        '"beta annealing from 0 to 1 during training" (all three continuous VAEs)',
        _kl,
        "shape and length are not given; a linear ramp that reaches 1 halfway leaves half the run at the "
        "paper's final beta = 1.",
    ),
    OpenChoice(
        "scheduled sampling clock (AR LSTM-VAE)",
        '"scheduled sampling (Bengio et al. 2015) with inverse sigmoid rate 20"',
        lambda p: (
            f"p = k / (k + exp(e / k)), k = {_model_default('ar_lstm_vae', 'ss_rate'):g}, e = epoch on a "
            f"{_model_default('ar_lstm_vae', 'ss_paper_epochs'):,}-epoch axis; one draw per loop and step"
        ),
        "the unit of the rate is not given; counted in optimiser steps "
        f"({_steps_per_paper_epoch()} per epoch on the paper's data) teacher forcing would be gone (p < 1 %) "
        f"after {-(-200 // _steps_per_paper_epoch())} epochs.",
    ),
    OpenChoice(
        "AdamW weight decay and betas",
        '"AdamW optimizer" (no values)',
        lambda p: f"weight decay {p.train.weight_decay:g}, betas (0.9, 0.999), eps 1e-8",
        "PyTorch's AdamW defaults, what naming the optimiser without values most plausibly means.",
    ),
    OpenChoice(
        "learning-rate schedule",
        '"cosine annealing from 1e-3 to 5e-6"',
        lambda p: f"cosine {_sci(p.train.lr_max)} -> {_sci(p.train.lr_min)} over all optimiser steps, stepped per batch",
        "no warm-up or restarts are mentioned; per-batch stepping is the smooth version of per-epoch.",
    ),
    OpenChoice(
        "He initialisation",
        '"All models are initialized with He initializer"',
        lambda p: (
            "kaiming normal, fan-in; LeakyReLU(0.2) gain for convolutions, ReLU gain for linear and LSTM "
            "matrices; zero biases; norm layers (1, 0); embeddings and codebook N(0, 1)"
        ),
        "the variant (normal or uniform, gain, what happens to biases and LSTMs) is not given.",
    ),
    OpenChoice(
        "AR LSTM-VAE output bias at start",
        "not stated (He initialisation: zero biases)",
        lambda p: {"zero": "zero (He)", "data_rate": "log-odds of the training cells' density"}[p.train.ar_output_bias],
        "paper profile follows He; short runs start at the data's density so that the first epochs are not "
        "spent learning that cells are mostly off.",
    ),
    OpenChoice(
        "numeric precision",
        "not stated (PyTorch 1.9 on an RTX 3090)",
        _precision,
        "PyTorch 1.9 ran float32 with TF32 on by default on Ampere GPUs; bf16 autocast is faster where the "
        "hardware has bf16 units, fp16 with loss scaling on the tensor cores of a T4 or V100 ('auto' checks at run "
        "time); both are keyed in the checkpoint; float32 is not keyed.",
    ),
    OpenChoice(
        "VQ codebook update",
        '"updated in the sense of centroids of K-means", "from the average of near neighbors"; randomly '
        "initialised",
        lambda p: (
            f"EMA of counts and sums, decay {_model_default('vq_vae', 'decay'):g}, Laplace eps "
            f"{_sci(_model_default('vq_vae', 'eps'))}; codebook N(0, 1)"
        ),
        "the EMA K-means update of Oord et al. (2017), with their decay.",
    ),
    OpenChoice(
        "VQ dead-code restart",
        "not stated",
        lambda p: (
            f"codes with EMA count < {p.train.vq_dead_code_restart:g} restart at a random encoder output"
            if p.train.vq_dead_code_restart > 0
            else "off"
        ),
        "a trick the paper does not mention: off for the paper profile; on for short runs, where random initial "
        "codes would otherwise stay unused.",
    ),
    OpenChoice(
        "VQ-VAE loss reduction",
        'eq. 2, 3: BCE(sigmoid(logits), targets) + "beta ||q(z|x) - sg[e]||", "beta = 0.25"',
        _vq_loss,
        "the usual reading (Oord et al.'s implementation) averages both terms; the sum (kept for the demo's "
        "short runs) weighs the commitment 128 x 93 / (t x L) = 23x less against the reconstruction.",
    ),
    OpenChoice(
        "continuous VAE loss reduction",
        "eq. 1: E[log p(x|z)] - beta KL(q(z|x) || p(z))",
        lambda p: "BCE summed over cells + beta x KL summed over latent dimensions, per loop; mean over the batch",
        "the ELBO is a sum over cells and dimensions.",
    ),
    OpenChoice(
        "LSTM prior size",
        '"new 2-layers LSTM"',
        lambda p: (
            f"embedding {_model_default('prior', 'embed_dim')}, hidden {_model_default('prior', 'hidden')}, "
            f"{_model_default('prior', 'layers')} layers"
        ),
        "sizes are not given; a small LM for 32 steps of 512 codes.",
    ),
    OpenChoice(
        "last partial batch",
        "not stated",
        lambda p: "kept, unless it holds a single loop (BatchNorm needs two)",
        "every training loop is seen each epoch.",
    ),
    OpenChoice(
        "validation during training",
        "not stated",
        lambda p: (
            f"reconstruction error on {p.train.max_val_loops:,} seeded validation loops per epoch"
            if p.train.max_val_loops
            else "reconstruction error on every validation loop per epoch"
        ),
        "monitoring only: it changes no weight; Table 1 uses the whole validation set.",
    ),
    OpenChoice(
        "BatchNorm with several GPUs",
        "not stated (one GPU)",
        lambda p: (
            "SyncBatchNorm on CUDA (global-batch statistics); per-process statistics on CPU (gloo)"
            if p.train.sync_batchnorm
            else "per-process statistics"
        ),
        "SyncBatchNorm makes N GPUs compute what one GPU computes on the global batch.",
    ),
    OpenChoice(
        "short-run recipe",
        "not stated (2,000 epochs on a GPU)",
        _short_run,
        "a few CPU minutes per model need what a careful practitioner adds to a short run; the paper profile "
        "adds none of it.",
    ),
    OpenChoice(
        "seed",
        '"results do not depend on random initialization so much"',
        lambda p: f"seed {p.seed}",
        "one seed per run; notebook 08 is where the seed spread is measured.",
    ),
    OpenChoice(
        "data augmentation",
        "not stated",
        _augmentation,
        "the paper trains on its 120,600 loops as they are, and so do these profiles; the `songs` profile (`fit`'s "
        "default, for a folder of a user's songs, far fewer loops) transposes the bass (docs/commands.md).",
    ),
)

OPEN_CHOICES_BEGIN = "<!-- open-choices:begin (generated by loopgen.run.choices.open_choices_markdown) -->"
OPEN_CHOICES_END = "<!-- open-choices:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def open_choices_markdown(profile_names: tuple[str, ...] = ("paper", "demo", "smoke")) -> str:
    """The open-choices table as Markdown: setting, the paper's words, our value per profile, why."""
    header = ["setting", "the paper says"] + [f"`{n}` profile" for n in profile_names] + ["why"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for choice in OPEN_CHOICES:
        cells = [choice.setting, choice.paper_says]
        cells += [choice.ours(PROFILES[n]) for n in profile_names]
        cells.append(choice.why)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def open_choices_note(profile_name: str) -> str | None:
    """One line for the notes of a table written under ``profile_name`` (None except for ``paper``)."""
    if profile_name != "paper":
        return None
    profile = PROFILES[profile_name]
    parts = [f"{c.setting}: {c.ours(profile)}" for c in OPEN_CHOICES]
    return "Choices the paper leaves open (paper profile; docs/choices.md): " + "; ".join(parts) + "."


def readme_with_open_choices(readme: str) -> str:
    """``readme`` with the text between the open-choices markers replaced by the generated table."""
    begin, end = readme.find(OPEN_CHOICES_BEGIN), readme.find(OPEN_CHOICES_END)
    if begin < 0 or end < begin:
        raise ValueError("the page has no open-choices markers")
    return readme[: begin + len(OPEN_CHOICES_BEGIN)] + "\n" + open_choices_markdown() + readme[end:]


def write_readme_open_choices(readme_path: Path | str) -> None:
    """Regenerate the open-choices section of a page (docs/choices.md) in place."""
    path = Path(readme_path)
    path.write_text(readme_with_open_choices(path.read_text()))
