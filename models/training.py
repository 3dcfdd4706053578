"""PPO (rsl-rl) on one task and body: `TrainConfig` and the training loop `train`.

`train` writes <log_root>/<task>-<body>/<run_name>/ with run.json (resolved configs), the
body, TensorBoard logs and checkpoints every `save_interval` iterations; `resume` continues
a run (weights, optimizer state and iteration) in a new folder. `nproc > 1` spawns that many
processes (`models.distributed`). The command line over it is `xembody train`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from xembody.models.cfg import help_field


@dataclass(kw_only=True)
class TrainConfig:
    task: str = help_field("reach", "task name (xembody train --list-tasks)")
    body: str = help_field("", "body class or MJCF/URDF file (default: the task's body class)")
    body_seed: int = help_field(0, "seed of the sampled body")
    card: str = help_field(
        "", "body card (YAML) of a --body file (default: <robot>.yaml beside it)"
    )
    body_class: str = help_field(
        "", "class of a --body file: arm|quadruped|humanoid|wheeled (card: class)"
    )
    base: str = help_field("", "base of a --body file: fixed|floating (card: base)")
    ee: str = help_field("", "end-effector link or site of a --body file (card: ee)")
    feet: tuple[str, ...] = help_field((), "foot links or sites of a --body file (card: feet)")
    package_path: tuple[str, ...] = help_field((), "folders holding the ROS packages of its meshes")
    num_envs: int = help_field(256, "parallel envs")
    iterations: int = help_field(300, "PPO iterations")
    seed: int = help_field(0, "seed of the env and the policy")
    device: str = help_field("auto", "torch device for the policy (auto: the physics' device)")
    threads: int = help_field(0, "physics threads (0: every core)")
    log_root: str = help_field("runs", "folder for run folders")
    run_name: str = help_field("", "run folder name (default: a time stamp)")
    resume: str = help_field("", "checkpoint (or run folder) to continue from")
    learning_rate: float = help_field(0.0, "Adam learning rate (0: the task's default)")
    steps_per_env: int = help_field(24, "rollout length per env and iteration")
    save_interval: int = help_field(50, "checkpoint every N iterations")
    randomize: bool = help_field(True, "per-episode domain randomisation")
    action_latency: str = help_field(
        "",
        "LO,HI: actions act LO..HI control periods late, drawn per episode (default: the task's)",
    )
    task_option: tuple[str, ...] = help_field(
        (), "KEY=VALUE edits of the task config: vx=-1,1 randomization.push_interval_s=4"
    )
    reward: tuple[str, ...] = help_field(
        (), "NAME=WEIGHT reward weights (0 drops a term; run.json lists them all)"
    )
    ppo: tuple[str, ...] = help_field(
        (), "KEY=VALUE PPO settings over the task's: init_std=0.5 hidden_dims=256,128"
    )
    max_minutes: float = help_field(0.0, "stop after this much wall time (0: no limit)")
    torch_threads: int = help_field(1, "torch threads for the policy (small MLPs: 1 is fastest)")
    nproc: int = help_field(
        1, "processes (torch.distributed; --num-envs and threads are per process)"
    )
    backend: str = help_field("cpu", "physics: cpu (MuJoCo threads), gpu (MuJoCo Warp on CUDA)")
    base_policy: str = help_field(
        "", "residual RL: export folder of a frozen base policy to correct"
    )
    residual_scale: float = help_field(0.2, "residual RL: bound of the correction (action units)")

    @property
    def latency_range(self) -> tuple[int, int]:
        try:
            lo, hi = (int(v) for v in self.action_latency.split(","))
        except ValueError:
            lo, hi = -1, -1
        if not 0 <= lo <= hi:
            raise ValueError(
                f"action_latency={self.action_latency!r}, expected LO,HI control periods with "
                "0 <= LO <= HI (for example 1,3)"
            )
        return lo, hi

    def __post_init__(self) -> None:
        for name in ("num_envs", "iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 1")
        if self.nproc < 1:
            raise ValueError(f"nproc={self.nproc}, expected >= 1")
        if self.backend not in ("cpu", "gpu") and not self.backend.startswith("warp:"):
            raise ValueError(f"backend={self.backend!r}, expected 'cpu', 'gpu' or 'warp:<device>'")
        if self.action_latency:
            _ = self.latency_range  # raises on a bad value
        if self.device == "auto":
            return
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r}: torch finds no CUDA device on this machine "
                "(CPU-only torch build, or no NVIDIA driver/GPU); use --device cpu"
            )
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device={self.device!r}, expected 'auto', 'cpu' or 'cuda[:<index>]'")

    @property
    def policy_device(self) -> str:
        """The policy's torch device: `device`, or for "auto" the one the env's tensors live
        on (CUDA for backend "gpu" and "warp:cuda...", else the CPU)."""
        if self.device != "auto":
            return self.device
        on_cuda = self.backend == "gpu" or self.backend.startswith("warp:cuda")
        return "cuda" if on_cuda else "cpu"


def train(cfg: TrainConfig, task_overrides: dict | None = None) -> Path:
    """Train; returns the run folder. `task_overrides` edit the task config (tests)."""
    from xembody.models import distributed
    from xembody.models.ppo import ppo_config, rsl_rl_config
    from xembody.models.run import Run, latest_checkpoint, make_env
    from xembody.sim import tasks
    from xembody.sim.bodies.for_training import check_for_task, load_for_training

    if cfg.nproc > 1 and distributed.world()[1] == 1:
        return distributed.spawn_train(cfg, task_overrides)  # re-enters train() per rank
    rank, world_size, local_rank = distributed.world()
    device = cfg.policy_device
    device = f"cuda:{local_rank}" if device == "cuda" and world_size > 1 else device
    distributed.init(device)
    torch.set_num_threads(cfg.torch_threads)
    entry = tasks.get(cfg.task)
    if cfg.resume:
        run = Run.load(cfg.resume)
    else:
        body = load_for_training(
            cfg.body or entry.default_body,
            cfg.body_seed,
            card=cfg.card,
            body_class=cfg.body_class,
            base=cfg.base,
            ee=cfg.ee,
            feet=cfg.feet,
            package_path=cfg.package_path,
        )
        check_for_task(cfg.task, body)
        task_cfg = tasks.make_config(cfg.task, body.body_class, **(task_overrides or {}))
        if not cfg.randomize:
            task_cfg = tasks.nominal(task_cfg)
        if cfg.action_latency:
            rnd = dataclasses.replace(task_cfg.randomization, action_latency=cfg.latency_range)
            task_cfg = dataclasses.replace(task_cfg, randomization=rnd)
        ppo_values = dict(entry.ppo)
        if cfg.learning_rate:
            ppo_values["learning_rate"] = cfg.learning_rate
        if cfg.base_policy:
            ppo_values["base_policy"] = str(Path(cfg.base_policy).resolve())
            ppo_values["residual_scale"] = cfg.residual_scale
        ppo_values.update(num_steps_per_env=cfg.steps_per_env, save_interval=cfg.save_interval)
        ppo = ppo_config(ppo_values, cfg.ppo)
        run = Run(cfg.task, task_cfg, ppo, body, dataclasses.asdict(cfg))
    if cfg.resume and cfg.ppo:
        raise ValueError(f"ppo={cfg.ppo}: PPO settings are fixed by the run being resumed")
    edits = list(cfg.task_option) + [f"rewards.{r}" for r in cfg.reward]
    if edits:  # also on --resume: a curriculum continues a run with harder settings
        run.task_cfg = tasks.apply_overrides(run.task, run.task_cfg, edits)
    folder = (
        Path(cfg.log_root)
        / f"{run.task}-{run.body.name}"
        / distributed.agree(cfg.run_name or time.strftime("%Y%m%d-%H%M%S"))
    )
    share = max(1, (os.cpu_count() or 1) // world_size)  # physics threads per process
    threads = cfg.threads or (share if world_size > 1 else None)
    backend = f"gpu:cuda:{local_rank}" if cfg.backend == "gpu" and world_size > 1 else cfg.backend
    env = make_env(run, cfg.num_envs, seed=cfg.seed + rank, threads=threads, backend=backend)
    run.task_cfg = dataclasses.replace(run.task_cfg, rewards=dict(env.reward_weights))
    if rank == 0:
        run.save(folder)
    runner = distributed.DistributedRunner(
        env, rsl_rl_config(run.ppo), log_dir=str(folder), device=device
    )
    if cfg.resume:
        ckpt = latest_checkpoint(cfg.resume)
        runner.load(str(ckpt), map_location=str(runner.device))  # saved on another device too
        runner.current_learning_iteration += 1  # the checkpoint holds that iteration's update
        print(f"resumed from {ckpt} at iteration {runner.current_learning_iteration}")
    print(
        f"training {run.task} on {run.body.name}: {cfg.num_envs} envs, {cfg.iterations} "
        f"iterations, {run.ppo.num_steps_per_env} steps/env each -> {folder}"
    )
    t0 = time.perf_counter()
    # Learn in chunks so that a wall-time budget can end training between iterations.
    chunk = 10 if cfg.max_minutes else cfg.iterations
    done = 0
    while done < cfg.iterations:
        n = min(chunk, cfg.iterations - done)
        runner.learn(n)
        done += n
        last = runner.current_learning_iteration  # learn() leaves it at its last iteration
        runner.current_learning_iteration += 1
        over = bool(cfg.max_minutes) and time.perf_counter() - t0 > 60 * cfg.max_minutes
        if distributed.agree(over):  # every rank stops after the same iteration
            print(f"time budget of {cfg.max_minutes} min reached after {done} iterations")
            break
        chunk_end = folder / f"model_{last}.pt"
        kept = last % run.ppo.save_interval == 0
        if rank == 0 and done < cfg.iterations and not kept and chunk_end.exists():
            chunk_end.unlink()  # learn() saves whenever it returns; keep save_interval's only
    runner.close_writer()
    env.close()
    print(f"done: {done} iterations in {time.perf_counter() - t0:.0f} s; checkpoints in {folder}")
    return folder
