"""Twin versus cousins: does training on digital cousins transfer better to the real scene?

The study of issue 10. A generated arm opens the top drawer (or the first door) of a cabinet
in front of it: the registered `cabinet` task (xembody.sim.tasks.cabinet) on the batched
env, one env per cabinet. Each seed draws its own "real" room, scans and extracts it, and
builds the twin, the cousins, held-out cousins, broad cabinets and the real scene from the
estimate (scenes.py). Students are MLPs behaviour-cloned by models.bc.fit_mlp on the
demonstrations of `CabinetTeacher` (xembody.models.teachers; DART: the executed action
carries `dart_noise`, the recorded one is clean), the same number of demonstrations for
every training set:

- twin: the twin only;
- cousins_K (K = 2, 4, 8): the first K cousins (farthest-point ordered);
- broad: cabinets drawn across the whole asset library's ranges.

Each is evaluated on the twin, on held-out cousins ("near" and "far") and on the real scene
(the true cabinet at its true pose), `episodes` episodes per cell, with the task's
per-episode jitter of the cabinet's pose and of the arm's start, for `seeds` training
seeds; success rates with 95 % Wilson intervals (models.evaluation.wilson), per seed and
pooled over seeds. report.py writes the docs/RESULTS.md section.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from xembody.models.bc import fit_mlp
from xembody.models.evaluation import wilson
from xembody.models.teachers import CabinetTeacher
from xembody.sim import tasks
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg
from xembody.sim.tasks.cabinet import PARTS

from .scenes import Cabinet, Perceive, build_scenes

SETS = ("twin", "cousins_2", "cousins_4", "cousins_8", "broad")
EVALS = ("twin", "heldout_near", "heldout_far", "real")
# nominal physics; the wrist camera's noise on the seen handle stays (the task's obs noise)
SENSING = RandomizationCfg(friction=(1, 1), mass=(1, 1), motor_strength=(1, 1))


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """The scenes (scenes.py), the students and the evaluation; the task's own settings
    (step size, grasp, camera, success, jitter) are the `cabinet` task's defaults."""

    room_seed: int = 0  # the generated "real" room
    arm_seed: int = 3
    standoff: float = 0.80  # m, arm base to the estimated cabinet front
    task: str = "drawer"  # open the top drawer, or "door": open door 0
    demos: int = 96  # teacher episodes per training set
    dart_noise: float = 0.3
    bc_steps: int = 3000  # Adam steps of fit_mlp
    batch_size: int = 256
    hidden: int = 256  # two ELU layers of this width
    episodes: int = 100  # per evaluation cell
    seeds: tuple[int, ...] = (0, 1, 2)
    cousins: int = 8
    heldout: int = 8
    broad: int = 32
    workers: int = 2

    def __post_init__(self) -> None:
        if self.task not in PARTS:
            raise ValueError(f"task={self.task!r}, expected one of {sorted(PARTS)}")


def make_env(arm, cab: Cabinet, part: str, num_envs: int, seed: int) -> BodyEnv:
    """The `cabinet` task in scene `cab`, `num_envs` envs, nominal physics but for sensing."""
    cfg = tasks.make_config("cabinet", part=part, cabinet=cab.scene(), randomization=SENSING)
    return tasks.make_env("cabinet", arm, num_envs, cfg=cfg, seed=seed, num_threads=1)


def rollout(env: BodyEnv, policy, noise: float = 0.0, seed: int = 0):
    """One episode in every env of `env`, from a reset: (policy observations and teacher
    actions of each step before the env's success, successes (N,) bool). `policy`
    (observation (N, obs) -> actions) drives when given, else the teacher with `noise`
    added to its displacement (DART)."""
    teacher, gen = CabinetTeacher(env), torch.Generator().manual_seed(seed)
    obs = env.reset()
    won = torch.zeros(env.num_envs, dtype=torch.bool)
    xs, ys = [], []
    with torch.inference_mode():
        for _ in range(env.max_episode_length):
            target = teacher()
            xs.append(obs["policy"][~won])
            ys.append(target[~won])
            if policy is None:
                act = target.clone()
                act[:, :3] += noise * torch.randn(act[:, :3].shape, generator=gen)
            else:
                act = policy(obs["policy"])
            obs, _, _, extras = env.step(act)
            finished = extras.get("finished")
            if finished is None:
                won |= env.task.success()
            else:  # the time-out: the envs are reset already
                won[finished["env_ids"]] |= finished["success"]
            if won.all():
                break
    return torch.cat(xs), torch.cat(ys), won


def _spread(cabinets: list[Cabinet], n: int) -> list[tuple[int, Cabinet, int]]:
    """(index, cabinet, episodes): `n` episodes dealt round-robin over `cabinets`."""
    k = len(cabinets)
    return [(i, c, n // k + (i < n % k)) for i, c in enumerate(cabinets) if n // k + (i < n % k)]


def collect(arm, cabinets: list[Cabinet], n: int, cfg: ExperimentConfig, seed: int):
    """`n` teacher episodes spread over `cabinets`: (obs, actions, teacher success)."""
    xs, ys, wins = [], [], 0
    for i, cab, count in _spread(cabinets, n):
        env = make_env(arm, cab, cfg.task, count, seed + i)
        x, y, won = rollout(env, None, cfg.dart_noise, seed + i)
        env.close()
        xs.append(x)
        ys.append(y)
        wins += int(won.sum())
    return torch.cat(xs), torch.cat(ys), wins / n


def clone_student(x: torch.Tensor, y: torch.Tensor, cfg: ExperimentConfig, seed: int):
    """A student: rsl-rl's MLP (two ELU layers of `cfg.hidden`) on observations normalised
    by the demonstrations' statistics, fitted by models.bc.fit_mlp (`cfg.bc_steps` steps)."""
    from rsl_rl.modules import MLP, EmpiricalNormalization

    torch.manual_seed(seed)
    norm = EmpiricalNormalization(x.shape[1])
    norm.update(x)
    norm.eval()
    mlp = MLP(x.shape[1], y.shape[1], (cfg.hidden, cfg.hidden), "elu")
    fit_mlp(mlp, x, y, normalize=norm, batch_size=cfg.batch_size, seed=seed,
            steps=cfg.bc_steps)  # fmt: skip
    return lambda obs: mlp(norm(obs))


def evaluate_policy(arm, policy, cabinets: list[Cabinet], n: int, cfg, seed: int) -> int:
    """Successes in `n` episodes spread evenly over `cabinets`."""
    wins = 0
    for i, cab, count in _spread(cabinets, n):
        env = make_env(arm, cab, cfg.task, count, seed + i)
        wins += int(rollout(env, policy)[2].sum())
        env.close()
    return wins


def _cell(job):
    """One (training set, seed): demonstrations, BC, then every evaluation (a worker)."""
    from xembody.sim import bodies

    cfg, scenes, name, seed = job
    torch.set_num_threads(1)
    arm = bodies.sample("arm", seed=cfg.arm_seed)
    train = {"twin": scenes["twin"], "broad": scenes["broad"]}.get(name)
    if train is None:
        train = scenes["cousins"][: int(name.split("_")[1])]
    x, y, teacher_rate = collect(arm, train, cfg.demos, cfg, seed=1000 * seed + 1)
    policy = clone_student(x, y, cfg, seed)
    out = {"set": name, "seed": seed, "demos": cfg.demos, "samples": len(x),
           "teacher_success": teacher_rate, "train_scenes": [c.name for c in train]}  # fmt: skip
    for ev in EVALS:
        out[ev] = evaluate_policy(arm, policy, scenes[ev], cfg.episodes, cfg, 1000 * seed + 7)
    return out


def run_experiment(cfg: ExperimentConfig, perceive: Perceive,
                   out: str | Path = "out/cousins_experiment", progress=print) -> dict:  # fmt: skip
    """Build the scenes (each seed's room scanned and extracted by `perceive`, see
    scenes.py), then every (training set, seed) cell on `cfg.workers` processes; success
    rates per cell and pooled over seeds with 95 % Wilson intervals."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    rooms = {}
    for seed in cfg.seeds:  # each seed: its own real room, scan, twin and cousins
        rooms[seed] = sc = build_scenes(
            cfg, cfg.room_seed + seed, perceive, Path(out) / f"room_{seed}"
        )
        progress(f"room {cfg.room_seed + seed}: twin, {len(sc['cousins'])} cousins, "
                 f"{len(sc['heldout_near']) + len(sc['heldout_far'])} held-out cousins, "
                 f"{len(sc['broad'])} broad, real ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    jobs = [(cfg, rooms[seed], name, seed) for seed in cfg.seeds for name in SETS]
    cells = []
    with mp.get_context("spawn").Pool(cfg.workers) as pool:
        for cell in pool.imap_unordered(_cell, jobs):
            cells.append(cell)
            rates = ", ".join(f"{ev} {cell[ev]}/{cfg.episodes}" for ev in EVALS)
            progress(f"[{len(cells)}/{len(jobs)}] {cell['set']} seed {cell['seed']}: {rates} "
                     f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    table = {}
    for name in SETS:
        mine = [c for c in cells if c["set"] == name]
        row = {}
        for ev in EVALS:
            k, n = sum(c[ev] for c in mine), cfg.episodes * len(mine)
            lo, hi = wilson(k, n)
            per_seed = [c[ev] / cfg.episodes for c in sorted(mine, key=lambda c: c["seed"])]
            row[ev] = {"success": k / n, "ci95": [lo, hi], "per_seed": per_seed, "n": n}
        table[name] = row
    real8, realt = table["cousins_8"]["real"], table["twin"]["real"]
    twin8, twint = table["cousins_8"]["twin"], table["twin"]["twin"]
    target = {
        "real_gain_points": 100 * (real8["success"] - realt["success"]),
        "real_intervals_separate": real8["ci95"][0] > realt["ci95"][1],
        "twin_gap_points": 100 * (twin8["success"] - twint["success"]),
    }
    target["met"] = (target["real_gain_points"] >= 15 and target["real_intervals_separate"]
                     and target["twin_gap_points"] >= -5)  # fmt: skip
    about = {
        seed: {
            "room_seed": cfg.room_seed + seed,
            "estimate": sc["estimate"],
            "rooms_skipped": sc["rooms_skipped"],
            "truth_cabinet": sc["truth_cabinet"],
            "twin_cabinet": sc["twin"][0].describe(),
            "real_cabinet": sc["real"][0].describe(),
            "distances": {
                k: [round(c.distance, 3) for c in sc[k]]
                for k in ("cousins", "heldout_near", "heldout_far")
            },
        }
        for seed, sc in rooms.items()
    }
    task_cfg = asdict(tasks.make_config("cabinet", part=cfg.task))
    del task_cfg["cabinet"], task_cfg["randomization"]  # per scene; SENSING
    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "task_config": task_cfg,
        "rooms": about, "table": table, "target": target,
        "cells": sorted(cells, key=lambda c: (SETS.index(c["set"]), c["seed"])),
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
