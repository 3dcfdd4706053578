"""`xembody train-bc`: behaviour cloning from a teleop dataset into a policy that `xembody
eval | play | export` take as they are, and residual RL can use as its base policy.

    xembody train-bc --data demos.zarr
    xembody eval --checkpoint runs/bc-reach-arm_s0/<stamp>
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from xembody.config import add_arguments, field, from_args


@dataclass(kw_only=True)
class TrainBCArgs:
    data: str = field("", "dataset written by `xembody teleop` (features obs and action)")
    epochs: int = field(60, "passes over the training frames")
    batch_size: int = field(512, "frames per gradient step")
    learning_rate: float = field(1e-3, "Adam learning rate (cosine-decayed to 0)")
    hidden_dims: tuple[int, ...] = field((256, 256, 128), "MLP hidden layer sizes")
    val_fraction: float = field(0.1, "fraction of episodes held out for the validation loss")
    only_success: bool = field(True, "learn from successful episodes only")
    init_std: float = field(0.1, "std of the policy's Gaussian head, for later fine-tuning")
    seed: int = field(0, "seed of the split, the initialisation and the batches")
    torch_threads: int = field(1, "torch threads (a small MLP: 1 is fastest)")
    log_root: str = field("runs", "folder for run folders")
    run_name: str = field("", "run folder name (default: a time stamp)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-bc", help="behaviour cloning from a teleop dataset")
    add_arguments(p, TrainBCArgs)
    p.set_defaults(run=lambda args: _run(from_args(TrainBCArgs, args)))


def _run(args: TrainBCArgs) -> int:
    import dataclasses

    from xembody.models.bc import BCConfig, train_bc

    folder = train_bc(BCConfig(**dataclasses.asdict(args)))
    report = json.loads((folder / "bc.json").read_text())
    last = report["history"][-1]
    print(
        f"BC on {report['frames_train']} frames ({report['episodes_used']} episodes) in "
        f"{report['seconds']:.0f} s: train mse {last['train_mse']:.4g}, val mse "
        f"{last['val_mse']:.4g} -> {folder}"
    )
    print(f"evaluate: xembody eval --checkpoint {folder}")
    return 0
