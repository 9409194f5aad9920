"""Training under torchrun with DistributedDataParallel (2 CPU processes, gloo) against one process."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from loopgen import train
from loopgen.run import profiles
from loopgen.runtime import distributed

LIB = Path(__file__).resolve().parents[1] / "lib"
PRIOR_KWARGS = {"embed_dim": 8, "hidden": 16}
VQ_KWARGS = {"latent_steps": 32, "latent_dim": 4, "num_codes": 16, "channels": 8}

SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    from pathlib import Path
    import numpy as np, torch
    torch.set_num_threads(1)
    from loopgen import train
    from loopgen.run import profiles
    from loopgen.runtime import distributed

    out = Path(sys.argv[1])
    assert distributed.init_from_env("cpu") == torch.device("cpu") and distributed.world_size() == 2
    settings = dataclasses.replace(
        profiles.get("smoke").train, prior_epochs=2, epochs=2, batch_size=16, max_train_loops=None
    )
    codes = np.random.default_rng(0).integers(0, 16, size=(64, 8))
    common = dict(checkpoint_dir=out / "prior", device="cpu", progress=False)
    args = (codes, settings)
    kw = dict(data_key="d", vq_key="v", num_codes=16, val_codes=codes[:32], model_kwargs=%(prior)r, **common)
    first = train.train_prior(*args, max_epochs_this_call=1, **kw)  # stop after one epoch ...
    result = train.train_prior(*args, **kw)  # ... and resume
    assert not first.finished and result.finished and result.epochs_this_call == 1
    if distributed.is_main():
        torch.save({"model": result.model.state_dict(), "history": result.history.to_dict("list")}, out / "prior.pt")

    loops = (np.random.default_rng(1).random((32, 128, 93)) < 0.05).astype(np.uint8)
    vq = train.train_model("vq_vae", loops, loops[:8], settings, data_key="d", model_kwargs=%(vq)r,
                           checkpoint_dir=out / "vq", device="cpu", progress=False)
    q = vq.model.quantiser
    torch.save({"codebook": q.codebook, "cluster_size": q.cluster_size, "loss": vq.history["loss"].tolist()},
               out / f"vq-rank{distributed.rank()}.pt")
    """
) % {"prior": PRIOR_KWARGS, "vq": VQ_KWARGS}


def _settings() -> train.TrainSettings:
    return dataclasses.replace(profiles.get("smoke").train, prior_epochs=2, epochs=2, batch_size=16, max_train_loops=None)


@pytest.mark.slow
def test_two_gloo_processes_train_as_one_process_on_the_same_global_batch(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(LIB), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
           str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    # one process, same global batch of 16, uninterrupted
    torch.set_num_threads(1)
    codes = np.random.default_rng(0).integers(0, 16, size=(64, 8))
    single = train.train_prior(
        codes, _settings(), data_key="d", vq_key="v", num_codes=16, val_codes=codes[:32],
        model_kwargs=PRIOR_KWARGS, checkpoint_dir=tmp_path / "single", device="cpu", progress=False,
    )
    ddp = torch.load(tmp_path / "prior.pt", weights_only=True)
    worst = max(float((ddp["model"][k] - v).abs().max()) for k, v in single.model.state_dict().items())
    print(f"prior after 8 steps: max |weight difference| DDP vs one process = {worst:.2e}; "
          f"val_loss {ddp['history']['val_loss'][-1]:.6f} (DDP) vs {single.history['val_loss'].iloc[-1]:.6f}")
    assert worst < 1e-4, "summation order differs; nothing else may"
    assert ddp["history"]["val_loss"] == pytest.approx(single.history["val_loss"].tolist(), rel=1e-5)
    assert len(list((tmp_path / "prior").glob("*.pt"))) == 1 and not list((tmp_path / "prior").glob(".*tmp"))

    # the VQ-VAE trains under DDP and its EMA codebooks stay identical on both ranks
    ranks = [torch.load(tmp_path / f"vq-rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert torch.equal(ranks[0]["codebook"], ranks[1]["codebook"])
    assert torch.equal(ranks[0]["cluster_size"], ranks[1]["cluster_size"])
    assert all(np.isfinite(ranks[0]["loss"]))


def test_without_torchrun_everything_is_a_single_process():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    batch = torch.arange(10)
    assert torch.equal(distributed.local_slice(batch), batch)
    t = torch.ones(3)
    assert torch.equal(distributed.all_reduce_sum_(t), torch.ones(3))
