"""``python -m loopgen ship``: write a finished demo-long checkpoint as shipped half-precision weights."""

from __future__ import annotations

from loopgen import errors
from loopgen.commands import common as cli
from loopgen.data import dataset
from loopgen.models import AUTOENCODERS
from loopgen.run import profiles
from loopgen.store.paths import MissingInputError, Paths
from loopgen.train.checkpoint import checkpoint_path
from loopgen.train.export import export


def main(argv: list[str]) -> int:
    """``python -m loopgen ship --profile demo-long --model NAME [--seed S]``."""
    parser = cli.parser("ship", "write a finished checkpoint as shipped half-precision weights")
    parser.add_argument("--profile", default="demo-long", choices=sorted(profiles.PROFILES),
                        help="the profile the checkpoint was trained with")
    parser.add_argument("--model", required=True, choices=AUTOENCODERS, help="the model whose weights to ship")
    parser.add_argument("--seed", type=cli.nonnegative_int, default=0, help="the training seed")
    args = parser.parse_args(argv)
    profile = profiles.get(args.profile)
    paths = Paths()
    data_dir = dataset.dataset_dir(paths, profile.corpus.name)
    if not data_dir.exists():
        raise MissingInputError(f"{errors.quoted(data_dir)} is missing: run notebook 01_extract_loops.ipynb first")
    data_key = dataset.load_loops(data_dir).data_key
    path = checkpoint_path(
        args.model, profile.train, data_key=data_key, checkpoint_dir=paths.checkpoints, seed=args.seed
    )
    if not path.exists():
        raise MissingInputError(
            f"no trained {args.model} at {errors.quoted(path)}: run python -m loopgen train --profile {args.profile} "
            f"--model {args.model} first"
        )
    out = export(path, args.profile)
    print(f"{errors.quoted(out)} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0
