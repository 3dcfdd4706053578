"""Behaviour cloning from an xembody dataset into a policy with the PPO policies' contract.

`train_bc(cfg)` fits the actor of the task's rsl-rl policy (same MLP, same observation
normalisation, same Gaussian head) to the recorded (obs, action) pairs by mean squared
error, and writes a run folder exactly like `xembody train` does:

    runs/bc-<task>-<body>/<stamp>/
        run.json, body.xml(.json)   the task, its config, the PPO config, the body
        model_0.pt                  an rsl-rl checkpoint (actor trained, critic untouched)
        bc.json                     BC settings, dataset, losses per epoch

so `xembody eval | play | export` and `models.run.load_runner` take it as they are, and a
residual-RL or PPO fine-tuning run can start from it (the head's std is `init_std`).

Requirements on the dataset: features `obs` (the task's policy observation, the layout
in meta["obs_terms"]) and `action` (the task's action), plus meta "task", "task_cfg" and
"body" (what `xembody teleop` writes). `fit_mlp` is the body-agnostic core: any inputs
(e.g. end-effector poses and targets, which do not depend on one body) to any targets.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(kw_only=True)
class BCConfig:
    data: str = ""
    epochs: int = 60
    batch_size: int = 512
    learning_rate: float = 1e-3
    hidden_dims: tuple[int, ...] = (256, 256, 128)
    val_fraction: float = 0.1  # episodes held out for the validation loss
    only_success: bool = True  # train on successful episodes only
    init_std: float = 0.1  # std of the policy's Gaussian head (exploration when fine-tuned)
    seed: int = 0
    torch_threads: int = 1  # small MLP: one thread is fastest on a shared CPU
    log_root: str = "runs"
    run_name: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("give --data (a dataset written by `xembody teleop`)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 1")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction={self.val_fraction}, expected in [0, 1)")
        if not 0 < self.learning_rate < 1 or self.init_std <= 0:
            raise ValueError("learning_rate must be in (0, 1) and init_std > 0")


def load_pairs(ds, only_success: bool, val_fraction: float, seed: int):
    """(x_train, y_train, x_val, y_val) float32 tensors from whole episodes of `ds`."""
    for key in ("obs", "action"):
        if key not in ds.features:
            raise ValueError(
                f"{ds.path}: no feature {key!r} (has {sorted(ds.features)}); BC needs the "
                "task's obs and action, as `xembody teleop` records them"
            )
    keep = [i for i, e in enumerate(ds.episodes) if e.get("success", True) or not only_success]
    if not keep:
        raise ValueError(f"{ds.path}: no episodes to learn from (only_success={only_success})")
    rng = np.random.default_rng(seed)
    rng.shuffle(keep)
    n_val = int(round(val_fraction * len(keep))) if len(keep) > 1 else 0
    obs, act = ds.read("obs"), ds.read("action")

    def gather(ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if not ids:
            return torch.zeros(0, obs.shape[1]), torch.zeros(0, act.shape[1])
        idx = np.concatenate([np.arange(*ds.episode_slice(i).indices(len(obs))) for i in ids])
        return torch.from_numpy(obs[idx]).float(), torch.from_numpy(act[idx]).float()

    return (*gather(keep[n_val:]), *gather(keep[:n_val]))


def fit_mlp(
    mlp: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    normalize: nn.Module | None = None,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    epochs: int = 60,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    seed: int = 0,
    steps: int | None = None,
) -> list[dict[str, float]]:
    """Fit `mlp(normalize(x)) ~ y` by MSE with Adam (cosine-decayed learning rate).
    x (N, in_dim), y (N, out_dim); returns per-epoch {"epoch", "train_mse", "val_mse"}.
    `steps`: train for exactly that many Adam steps (batches), the last epoch cut short,
    instead of `epochs` whole epochs."""
    gen = torch.Generator().manual_seed(seed)
    norm = normalize if normalize is not None else nn.Identity()
    opt = torch.optim.Adam(mlp.parameters(), lr=learning_rate)
    batches = max(1, -(-len(x) // batch_size))
    steps = steps if steps is not None else epochs * batches
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history, done = [], 0
    for epoch in range(-(-steps // batches)):
        mlp.train()
        perm = torch.randperm(len(x), generator=gen)[: (steps - done) * batch_size]
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            loss = (mlp(norm(x[idx])) - y[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        done += -(-len(perm) // batch_size)
        mlp.eval()
        with torch.no_grad():
            val = (
                (mlp(norm(x_val)) - y_val).square().mean().item()
                if x_val is not None and len(x_val)
                else float("nan")
            )
        history.append({"epoch": epoch, "train_mse": total / len(perm), "val_mse": val})
    return history


def train_bc(cfg: BCConfig) -> Path:
    """Train on `cfg.data`; returns the run folder (see the module docstring)."""
    import contextlib
    import io

    from rsl_rl.runners import OnPolicyRunner

    from xembody.models.dataset import Dataset
    from xembody.models.dataset_meta import dataset_body
    from xembody.models.ppo import PPOConfig, rsl_rl_config
    from xembody.models.run import Run, make_env
    from xembody.sim import tasks

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    ds = Dataset.open(cfg.data)
    for key in ("task", "task_cfg", "body"):
        if key not in ds.meta:
            raise ValueError(f"{cfg.data}: dataset meta has no {key!r} (not a teleop dataset)")
    task_name = ds.meta["task"]
    entry = tasks.get(task_name)
    ppo = PPOConfig(
        **{**entry.ppo, "hidden_dims": tuple(cfg.hidden_dims), "init_std": cfg.init_std}
    )
    body = dataset_body(ds.meta)
    task_cfg = tasks.config_from_dict(task_name, ds.meta["task_cfg"])
    run = Run(task_name, task_cfg, ppo, body, {"bc": dataclasses.asdict(cfg)})
    env = make_env(run, 1, randomize=False)
    obs_dim = int(env.get_observations()["policy"].shape[1])
    x, y, xv, yv = load_pairs(ds, cfg.only_success, cfg.val_fraction, cfg.seed)
    if x.shape[1] != obs_dim or y.shape[1] != env.num_actions:
        raise ValueError(
            f"{cfg.data}: obs has {x.shape[1]} entries and action {y.shape[1]}, the task "
            f"{task_name!r} on {body.name} has {obs_dim} and {env.num_actions}"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the model summary
        runner = OnPolicyRunner(env, rsl_rl_config(ppo), log_dir=None, device="cpu")
    actor = runner.alg.actor
    norm = actor.obs_normalizer
    if isinstance(norm, nn.Module) and hasattr(norm, "_mean"):  # rsl-rl EmpiricalNormalization
        norm.train()
        norm.update(x)  # the dataset's statistics, frozen from here on
        norm.eval()
    t0 = time.perf_counter()
    history = fit_mlp(
        actor.mlp, x, y, normalize=norm, x_val=xv, y_val=yv, epochs=cfg.epochs,
        batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, seed=cfg.seed,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    env.close()

    folder = (
        Path(cfg.log_root)
        / f"bc-{task_name}-{body.name}"
        / (cfg.run_name or time.strftime("%Y%m%d-%H%M%S"))
    )
    run.save(folder)
    runner.save(str(folder / "model_0.pt"), infos={"bc": history[-1]})
    report: dict[str, Any] = {
        "dataset": str(Path(cfg.data).resolve()),
        "episodes_used": int(
            sum(1 for e in ds.episodes if e.get("success", True) or not cfg.only_success)
        ),
        "frames_train": len(x),
        "frames_val": len(xv),
        "seconds": seconds,
        "history": history,
        "config": dataclasses.asdict(cfg),
    }
    (folder / "bc.json").write_text(json.dumps(report, indent=2, default=str))
    return folder
