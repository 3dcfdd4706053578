"""Twin versus cousins: does training on digital cousins transfer better to the real scene?

The study of issue 10. A generated arm opens the top drawer (or the first door) of a cabinet
in front of it (task.py). Each seed draws its own "real" room, scans and extracts it, and
builds the twin, the cousins, held-out cousins, broad cabinets and the real scene from the
estimate (scenes.py). Students are behaviour-cloned MLPs on the teacher's demonstrations
(DART: the executed action carries `dart_noise`, the recorded one is clean), the same number
of demonstrations for every training set:

- twin: the twin only;
- cousins_K (K = 2, 4, 8): the first K cousins (farthest-point ordered);
- broad: cabinets drawn across the whole asset library's ranges.

Each is evaluated on the twin, on held-out cousins ("near" and "far") and on the real scene
(the true cabinet at its true pose), `episodes` episodes per cell, with per-episode jitter
of the cabinet's pose (`jitter_m`, `jitter_rad`) and of the arm's start, for `seeds`
training seeds; success rates with 95 % Wilson intervals (models.evaluation.wilson), per
seed and pooled over seeds. report.py writes the docs/RESULTS.md section.

The students are cloned by `fit_student`, not by models.bc.fit_mlp: its schedule (`bc_steps`
Adam steps on batches of 256 drawn with replacement, fixed learning rate) is part of the
published tables, and fit_mlp's (epochs over shuffled frames, cosine-decayed rate) changes
them (docs/RESULTS.md, "how much the result depends on the cloning loop").
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xembody.models.evaluation import wilson

from .scenes import Perceive, build_scenes
from .task import Cabinet, OpenTask, run_episode

SETS = ("twin", "cousins_2", "cousins_4", "cousins_8", "broad")
EVALS = ("twin", "heldout_near", "heldout_far", "real")


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """The task (task.py), its scenes (scenes.py), the students and the evaluation."""

    room_seed: int = 0  # the generated "real" room
    arm_seed: int = 3
    standoff: float = 0.80  # m, arm base to the estimated cabinet front
    control_hz: float = 25.0
    episode_s: float = 2.4
    step_m: float = 0.02  # m per control step at action 1
    grasp_radius: float = 0.03  # m
    detect_range: float = 0.30  # m
    detect_noise: float = 0.003  # m
    task: str = "drawer"  # open the top drawer, or "door": open door 0
    open_m: float = 0.10  # m of drawer travel for success
    open_rad: float = 0.5  # rad of door opening for success
    jitter_m: float = 0.02  # cabinet position jitter per episode (uniform +-)
    jitter_rad: float = 0.04  # cabinet yaw jitter per episode
    start_noise: float = 0.05  # rad, arm start pose
    demos: int = 96  # teacher episodes per training set
    dart_noise: float = 0.3
    bc_steps: int = 3000
    hidden: int = 256
    episodes: int = 100  # per evaluation cell
    seeds: tuple[int, ...] = (0, 1, 2)
    cousins: int = 8
    heldout: int = 8
    broad: int = 32
    workers: int = 2


# --- students: behaviour cloning on the teacher's demonstrations ----------------------
class MLPPolicy:
    """obs -> action with numpy (weights from a torch MLP), input normalised."""

    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]], mean, std):
        self.weights, self.mean, self.std = weights, mean, std

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = (np.asarray(obs, np.float32) - self.mean) / self.std
        for i, (w, b) in enumerate(self.weights):
            x = x @ w + b
            if i < len(self.weights) - 1:
                x = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))  # elu
        return x


def collect(arm, cabinets: list[Cabinet], n: int, cfg: ExperimentConfig, seed: int):
    """`n` teacher episodes, round-robin over `cabinets`: (obs, actions, teacher success)."""
    rng = np.random.default_rng(seed)
    tasks = [OpenTask(arm, c, cfg) for c in cabinets]
    xs, ys, ok = [], [], 0
    for i in range(n):
        x, y, success, _ = run_episode(tasks[i % len(tasks)], rng, noise=cfg.dart_noise)
        xs.append(x)
        ys.append(y)
        ok += success
    return np.concatenate(xs), np.concatenate(ys), ok / n


def fit_student(x: np.ndarray, y: np.ndarray, cfg: ExperimentConfig, seed: int) -> MLPPolicy:
    """An MLP (two ELU layers of `cfg.hidden`) fitted to y ~ f(x) by MSE: `cfg.bc_steps`
    Adam steps (learning rate 1e-3) on batches of 256 drawn with replacement from the
    normalised x, seeded by `seed`."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-3
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    h = cfg.hidden
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], h), torch.nn.ELU(), torch.nn.Linear(h, h), torch.nn.ELU(),
        torch.nn.Linear(h, y.shape[1]),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.bc_steps):
        idx = torch.randint(0, len(xt), (256,), generator=gen)
        loss = torch.nn.functional.mse_loss(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in layers]
    return MLPPolicy(weights, mean.astype(np.float32), std.astype(np.float32))


def evaluate_policy(arm, policy, cabinets: list[Cabinet], n: int, cfg, seed: int) -> int:
    """Successes in `n` episodes spread evenly over `cabinets`."""
    rng = np.random.default_rng(seed)
    tasks = [OpenTask(arm, c, cfg) for c in cabinets]
    return sum(bool(run_episode(tasks[i % len(tasks)], rng, policy)[2]) for i in range(n))


def _cell(job):
    """One (training set, seed): demonstrations, BC, then every evaluation (a worker)."""
    from xembody.sim import bodies

    cfg, scenes, name, seed = job
    import torch

    torch.set_num_threads(1)
    arm = bodies.sample("arm", seed=cfg.arm_seed)
    train = {"twin": scenes["twin"], "broad": scenes["broad"]}.get(name)
    if train is None:
        train = scenes["cousins"][: int(name.split("_")[1])]
    x, y, teacher_rate = collect(arm, train, cfg.demos, cfg, seed=1000 * seed + 1)
    policy = fit_student(x, y, cfg, seed)
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
    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "rooms": about, "table": table, "target": target,
        "cells": sorted(cells, key=lambda c: (SETS.index(c["set"]), c["seed"])),
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
