"""Physics throughput of the batched CPU backend on a generated humanoid.

For each env count N and thread count T, the backend steps N envs (`substeps` physics steps
per control step, holding the default pose as PD target) and copies the observation
(qpos, qvel, sensors) into one float32 torch tensor after every control step. Next to it,
in the same process, a plain single-thread loop calls `mj_step` on N `MjData` of the same
model. Trials are interleaved (baseline, T=1, T=2, baseline, ...) from the same initial
states, and each figure is the median over repeats; `speedup` is the median of the paired
ratios backend / baseline, so machine noise that hits a whole repeat cancels.

The two-core limit: in each repeat, two processes run the baseline loop on N/2 envs each
at the same time; their summed rate over the baseline (`two_process_speedup`) is what two
cores give with no sharing at all, and `of_two_core_limit` = speedup / that.

    python benchmarks/sim_throughput.py            # prints JSON
    python benchmarks/sim_throughput.py --envs 64 256 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import time

import mujoco
import numpy as np
import torch

from xembody.sim import bodies
from xembody.sim.physics import CpuSim


def initial_states(model: mujoco.MjModel, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, 0)
    rng = np.random.default_rng(seed)
    qvel = rng.normal(0, 0.2, (n, model.nv))
    return np.repeat(d.qpos[None], n, 0), qvel


def run_baseline(model: mujoco.MjModel, n: int, control_steps: int, substeps: int) -> float:
    qpos, qvel = initial_states(model, n)
    datas = []
    for i in range(n):
        d = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, d, 0)
        d.qpos[:], d.qvel[:] = qpos[i], qvel[i]
        datas.append(d)
    t = time.perf_counter()
    for _ in range(control_steps):
        for d in datas:
            for _ in range(substeps):
                mujoco.mj_step(model, d)
    return n * control_steps * substeps / (time.perf_counter() - t)


def _limit_worker(job: tuple[int, int, int, int]) -> float:
    seed, n, control_steps, substeps = job
    model = bodies.sample("humanoid", seed=seed).compile()
    return run_baseline(model, n, control_steps, substeps)


def run_two_processes(seed: int, n: int, control_steps: int, substeps: int) -> float:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        return sum(pool.map(_limit_worker, [(seed, n // 2, control_steps, substeps)] * 2))


def run_backend(sim: CpuSim, control_steps: int, substeps: int) -> float:
    qpos, qvel = initial_states(sim.model, sim.num_envs)
    sim.reset(qpos=qpos, qvel=qvel)
    t = time.perf_counter()
    for _ in range(control_steps):
        sim.step(substeps)
        obs = torch.cat([sim.qpos, sim.qvel, sim.sensordata], dim=1).float()
    elapsed = time.perf_counter() - t
    assert torch.isfinite(obs).all()
    return sim.num_envs * control_steps * substeps / elapsed


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--envs", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--substeps", type=int, default=4, help="physics steps per control step")
    p.add_argument("--physics-steps", type=int, default=20000, help="per trial, all envs together")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="humanoid generator seed")
    p.add_argument(
        "--limit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the two-core limit with two baseline processes",
    )
    args = p.parse_args()

    emb = bodies.sample("humanoid", seed=args.seed)
    model = emb.compile()
    results = []
    for n in args.envs:
        control_steps = max(5, args.physics_steps // (n * args.substeps))
        sims = {t: CpuSim(model, n, num_threads=t) for t in args.threads}
        base, limit, rates = [], [], {t: [] for t in args.threads}
        for _ in range(args.repeats):
            base.append(run_baseline(model, n, control_steps, args.substeps))
            for t, sim in sims.items():
                rates[t].append(run_backend(sim, control_steps, args.substeps))
            if n >= 2 and args.limit:
                limit.append(
                    run_two_processes(args.seed, n, control_steps, args.substeps) / base[-1]
                )
        for t, sim in sims.items():
            ratios = [r / b for r, b in zip(rates[t], base, strict=True)]
            row = {
                "num_envs": n,
                "threads": t,
                "steps_per_s": round(statistics.median(rates[t])),
                "baseline_steps_per_s": round(statistics.median(base)),
                "speedup": round(statistics.median(ratios), 3),
                "speedup_min": round(min(ratios), 3),
            }
            if limit and t == 2:
                row["two_process_speedup"] = round(statistics.median(limit), 3)
                row["of_two_core_limit"] = round(row["speedup"] / row["two_process_speedup"], 3)
            results.append(row)
            sim.close()
    print(
        json.dumps(
            {
                "benchmark": "sim_throughput",
                "body": emb.name,
                "nq": model.nq,
                "nu": model.nu,
                "timestep": model.opt.timestep,
                "substeps": args.substeps,
                "repeats": args.repeats,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "mujoco": mujoco.__version__,
                "baseline": "single-thread mj_step loop over N MjData, same model, same process",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
