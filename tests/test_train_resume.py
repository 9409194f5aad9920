"""A training stopped any way it can stop resumes and ends as the uninterrupted run would, bit for bit.

One test, one parameter per situation: stopped between epochs (``max_epochs_this_call``; a VQ-VAE, and a VAE
with sampling noise), killed inside an epoch after a ``checkpoint_minutes`` checkpoint (the prior; a fp16 run
with its gradient scaler), Ctrl-C inside an epoch and on an epoch's last step, a recipe that keeps its best epoch,
and a resume on another device (the 'meta' device stands in for a GPU: the checkpoint is read to the CPU and only
what must move moves; the multi-tensor AdamW there takes the fused AdamW's state of the CPU run). Before each
resume the RNGs are scrambled, as a new process would have them; the checkpoint must restore them.
"""

from __future__ import annotations

import dataclasses
import signal
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from loopgen import train
from loopgen.run import profiles
from loopgen.train import calls, checkpoint, loop, resume
from loopgen.train.run import TrainingRun

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMOKE = profiles.get("smoke").train
SMALL_VQ = {"latent_steps": 8, "latent_dim": 4, "num_codes": 16}
SMALL_PRIOR = {"embed_dim": 8, "hidden": 16}


class Killed(Exception):
    """The process dies (a kill, a power cut) right after a checkpoint is written."""


@dataclass(frozen=True)
class Situation:
    """How a run stops, and where its checkpoint must then stand."""

    model: str
    settings: dict  # changes to the smoke settings
    stop: str  # "epochs": max_epochs_this_call=at; "kill": killed after checkpoint no. at; "ctrl_c": during step at
    at: int
    stopped_at: tuple[int, int | None]  # the checkpoint's (epochs done, steps done inside the next epoch)
    resume_on: str = "cpu"  # "meta": resumed on a stand-in for a GPU, checked without training


EVERY_STEP = {"checkpoint_minutes": 1e-9}  # a checkpoint after every step
SITUATIONS = {
    "between_epochs": Situation("vq_vae", {}, "epochs", 1, (1, None)),
    "between_epochs_with_sampling_noise": Situation("cnn_vae", {"epochs": 3}, "epochs", 2, (2, None)),
    "killed_inside_an_epoch": Situation("prior", EVERY_STEP, "kill", 4, (0, 4)),  # 6 steps an epoch
    "killed_inside_an_epoch_fp16_scaler": Situation("cnn_vae", {"precision": "fp16", **EVERY_STEP}, "kill", 4, (1, 1)),
    "ctrl_c_inside_an_epoch": Situation("cnn_vae", {}, "ctrl_c", 2, (0, 2)),
    "ctrl_c_on_the_last_step_of_an_epoch": Situation("cnn_vae", {}, "ctrl_c", 3, (1, None)),
    "keep_best_recipe": Situation("cnn_vae", {"epochs": 4, "keep_best": True, "grad_clip": 1.0, "warmup_steps": 2},
                                  "epochs", 2, (2, None)),
    "resumed_on_another_device": Situation("vq_vae", EVERY_STEP, "epochs", 1, (1, None), resume_on="meta"),
}


def _loops(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 128, 93)) < 0.03).astype(np.uint8)


def _train(situation: Situation, folder, **kw) -> train.TrainResult:
    """The situation's training (24 loops or 48 code sequences, batches of 8), run to its end or stopped."""
    settings = dataclasses.replace(SMOKE, **{"epochs": 2, "prior_epochs": 2, "batch_size": 8, "conv_batch_size": 8,
                                             "max_train_loops": None, **situation.settings})
    common = {"data_key": "d", "checkpoint_dir": folder, "device": "cpu", "progress": False, **kw}
    if situation.model == "prior":
        codes = np.random.default_rng(0).integers(0, 16, size=(48, 8))
        return train.train_prior(codes, settings, vq_key="v", num_codes=16, model_kwargs=SMALL_PRIOR, **common)
    kwargs = SMALL_VQ if situation.model == "vq_vae" else None
    return train.train_model(situation.model, _loops(24, 0), _loops(8, 1), settings, model_kwargs=kwargs, **common)


def _stop(situation: Situation, folder, monkeypatch, capsys) -> None:
    """Train until the situation stops the run."""
    if situation.stop == "epochs":
        first = _train(situation, folder, max_epochs_this_call=situation.at)
        assert not first.finished and first.epochs_this_call == situation.at
        return
    if situation.stop == "kill":
        saves = []

        def save_then_kill(obj, path):
            real_save(obj, path)
            saves.append(path)
            if len(saves) == situation.at:
                raise Killed

        real_save = resume.save_checkpoint
        monkeypatch.setattr(resume, "save_checkpoint", save_then_kill)
        with pytest.raises(Killed):
            _train(situation, folder)
        monkeypatch.setattr(resume, "save_checkpoint", real_save)
        return
    steps = []  # Ctrl-C (SIGINT) arrives during step `at`: the loop finishes it, saves, and stops

    def step_then_ctrl_c(*args, **kwargs):
        out = real_step(*args, **kwargs)
        steps.append(1)
        if len(steps) == situation.at:
            signal.raise_signal(signal.SIGINT)
        return out

    real_step = loop.optimiser_step
    monkeypatch.setattr(loop, "optimiser_step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _train(situation, folder)
    monkeypatch.setattr(loop, "optimiser_step", real_step)
    epochs, step = situation.stopped_at
    where = f"epoch {epochs + 1}, step {step} of 3" if step else f"after epoch {epochs}"
    err = capsys.readouterr().err
    assert f"interrupted; checkpoint {next(folder.glob('*.pt'))} holds the run up to {where}" in err
    assert "the same call again resumes there" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "Ctrl-C's own handler is back"


def _scales(monkeypatch) -> list[float]:
    """The gradient scaler's scale after every step of the trainings that follow."""
    scales = []
    real_step = loop.optimiser_step

    def step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        scales.append(kwargs["scaler"].get_scale())
        return out

    monkeypatch.setattr(loop, "optimiser_step", step)
    return scales


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
@pytest.mark.parametrize("situation", list(SITUATIONS.values()), ids=list(SITUATIONS))
def test_a_stopped_run_resumes_and_ends_as_the_uninterrupted_run(situation, tmp_path, monkeypatch, capsys, request):
    fp16 = situation.settings.get("precision") == "fp16"
    if fp16:
        request.getfixturevalue("fp16_on_cpu")
        scales = _scales(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # none, e.g. no scheduler warning when fp16's scaler skips
        reference = _train(situation, tmp_path / "ref")
    ref_ckpt = train.read_checkpoint(reference.checkpoint)
    if fp16:
        _check_the_fp16_reference(reference, ref_ckpt, scales)

    _stop(situation, tmp_path / "run", monkeypatch, capsys)
    stopped = train.read_checkpoint(next((tmp_path / "run").glob("*.pt")))
    epochs_done, steps_done = situation.stopped_at
    assert not stopped["finished"] and stopped["epoch"] == epochs_done
    assert stopped.get("partial", {}).get("step_in_epoch") == steps_done
    if fp16:
        assert stopped["scaler"]["scale"] == scales[3], "the scaler is saved with the steps it scaled"

    torch.manual_seed(999)  # a new process: other RNG states, which the checkpoint must restore
    np.random.seed(999)  # noqa: NPY002
    if situation.resume_on == "meta":
        _check_a_resume_on_another_device(situation, tmp_path / "run", monkeypatch)
        return
    resumed = _train(situation, tmp_path / "run")
    assert resumed.finished and not resumed.reused and resumed.key == reference.key
    assert resumed.epochs_this_call == len(reference.history) - epochs_done
    assert train.weights_digest(resumed.model) == train.weights_digest(reference.model)
    assert resumed.history.drop(columns="seconds").equals(reference.history.drop(columns="seconds"))
    final = train.read_checkpoint(resumed.checkpoint)
    for name, value in ref_ckpt["optimizer"]["state"].items():
        torch.testing.assert_close(final["optimizer"]["state"][name], value, rtol=0, atol=0)
    assert final["scheduler"] == ref_ckpt["scheduler"] and final.get("scaler") == ref_ckpt.get("scaler")
    assert final["best_epoch"] == ref_ckpt["best_epoch"]
    if situation.settings.get("keep_best"):
        assert final["best_epoch"] is not None and final["best"] is None


def _check_the_fp16_reference(reference, ckpt: dict, scales: list[float]) -> None:
    """The uninterrupted fp16 run grows its scale after clean steps and skips an update that overflowed."""
    assert ckpt["settings"]["precision"] == "fp16" and np.isfinite(reference.history["val_recon"]).all()
    assert len(scales) == 6 and any(b < a for a, b in zip(scales, scales[1:], strict=False)), \
        "the run skips at least one step on an overflow (the scale falls)"
    assert max(scales) > 8.0, "and grows its scale after clean steps"
    assert ckpt["scheduler"]["last_epoch"] < 6, "a skipped update does not advance the learning rate"


def _check_a_resume_on_another_device(situation: Situation, folder, monkeypatch) -> None:
    """On CUDA, mapping the whole checkpoint to the GPU broke every resume (numpy's RNG state from a CUDA tensor)
    and left AdamW's step counters on the GPU. On the 'meta' device whatever is mapped there cannot be read
    back, so the resume must read to the CPU; the fused AdamW of the CPU run does not carry over."""
    runs: list[TrainingRun] = []
    real_fit = calls.fit
    monkeypatch.setattr(calls, "fit", lambda run: runs.append(run) or real_fit(run))
    _train(situation, folder, max_epochs_this_call=0)  # the run as planned on the CPU; trains nothing
    real_read = checkpoint.read_checkpoint

    def read_to(path, device="cpu"):  # the file read as torch.load(map_location=device) would give it
        ckpt = real_read(path, "cpu")
        return ckpt if torch.device(device).type == "cpu" else _to_device(ckpt, torch.device(device))

    monkeypatch.setattr(resume, "read_checkpoint", read_to)
    state = loop.start(dataclasses.replace(runs[0], device=torch.device("meta")))
    assert state.epoch == situation.stopped_at[0] and not state.finished
    assert not state.optimiser.param_groups[0]["fused"], "the checkpoint's fused AdamW (CPU) does not carry over"
    for param_state in state.optimiser.state.values():
        assert param_state["step"].device.type == "cpu", "AdamW keeps its step counters on the CPU"
        assert param_state["exp_avg"].device.type == "meta", "the moments live with the parameters"


def _to_device(obj, device: torch.device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_device(v, device) for v in obj]
    return obj


def test_checkpoint_minutes_default_keeps_the_checkpoint_key():
    settings = dataclasses.replace(SMOKE, prior_epochs=2, batch_size=8, max_train_loops=None)
    a = train.checkpoint_key("prior", settings, data_key="d", vq_key="v")
    b = train.checkpoint_key("prior", dataclasses.replace(settings, checkpoint_minutes=5.0), data_key="d", vq_key="v")
    assert a == b, "how often a run is saved does not change its weights"



def test_under_ddp_only_rank_0_carries_the_saved_running_sums_and_every_rank_restarts_its_clock(tmp_path, monkeypatch,
                                                                                               capsys):
    """A checkpoint inside an epoch holds rank 0's running sums: loaded by every rank they would be counted once per
    rank. Rank 0 carries them on, the others start from zero; and a rank that does not write restarts its
    checkpoint clock, or ``overdue`` would fire (and sync) on every later step."""
    situation = Situation("cnn_vae", EVERY_STEP, "kill", 2, (0, 2))
    _stop(situation, tmp_path, monkeypatch, capsys)
    seen = []
    real_sums = resume.EpochSums

    class RecordingSums(real_sums):
        def __init__(self, device, partial):
            seen.append(dict(partial))
            super().__init__(device, partial)

    monkeypatch.setattr(resume, "EpochSums", RecordingSums)
    monkeypatch.setattr(loop.distributed, "is_main", lambda: False)
    monkeypatch.setattr(resume.distributed, "is_main", lambda: False)
    _train(situation, tmp_path, max_epochs_this_call=1)
    assert seen and seen[0] == {}, "a rank other than 0 starts the resumed epoch from zero"
    state = resume.TrainState(None, None, None, None)
    state.saved_at = 0.0
    run = TrainingRun.__new__(TrainingRun)
    object.__setattr__(run, "recipe", dataclasses.replace(SMOKE, checkpoint_minutes=10))
    assert resume.overdue(run, state)
    resume.save(run, state, 1, False)
    assert not resume.overdue(run, state), "saving (or not, on this rank) restarts the clock"


def test_a_finished_run_says_which_epoch_its_weights_come_from(tmp_path):
    """keep_best: the model holds the best validated epoch's weights, and the result says which epoch that is, when
    trained and when the finished checkpoint is reused (a notebook then reports that epoch's error, not the last's)."""
    situation = SITUATIONS["keep_best_recipe"]
    trained = _train(situation, tmp_path)
    history = trained.history
    best = int(history.loc[history["val_recon"].idxmin(), "epoch"])
    assert trained.finished and trained.kept_epoch == best
    reused = _train(situation, tmp_path)
    assert reused.reused and reused.kept_epoch == best
    plain = _train(SITUATIONS["between_epochs"], tmp_path / "plain")
    assert plain.kept_epoch == 2, "without keep_best the model holds the last epoch's weights"
