"""PPO training throughput per task and env count: rollout steps/s and update time.

For each registered task whose module imports (others are listed under "skipped") and each
env count N, the task runs on its default body with an rsl-rl PPO (the `xembody train`
config) and this script runs OnPolicyRunner.learn's loop with timers around its phases:

    collect:  steps_per_env x (alg.act -> env.step -> alg.process_env_step), no grad
    update:   alg.compute_returns + alg.update (epochs x mini-batches of Adam steps)

Episode lengths start spread over the episode (rsl-rl's `init_at_random_ep_len`), so resets
are amortised as in steady-state training rather than all landing in one iteration. The
first `--warmup` iterations are not timed; each figure is the median over `--iterations`.
`env_share` is the fraction of the collect time spent inside env.step (the rest is the
policy, storage and bookkeeping). `load_average_1min` (before, after) shows whether other
work shared the machine: figures taken on a loaded machine are not comparable.

    python benchmarks/train_throughput.py                    # JSON on stdout
    python benchmarks/train_throughput.py --tasks reach --envs 64 256 --iterations 5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

import mujoco
import torch
from rsl_rl.runners import OnPolicyRunner

from xembody.models.ppo import PPOConfig, rsl_rl_config
from xembody.models.run import resolve_body
from xembody.sim import tasks
from xembody.sim.env import BodyEnv


def available_tasks(names: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """The tasks whose modules import, and a note for each one that does not."""
    ok, skipped = [], []
    for name in names:
        try:
            tasks.get(name).load()
        except Exception as err:  # a task still being written: any import failure
            skipped.append({"task": name, "reason": f"{type(err).__name__}: {err}"})
        else:
            ok.append(name)
    return ok, skipped


def measure(
    name: str, num_envs: int, *, iterations: int, warmup: int, steps_per_env: int,
    threads: int | None, seed: int,
) -> dict[str, Any]:  # fmt: skip
    entry = tasks.get(name)
    emb = resolve_body(entry.default_body, seed)
    env = BodyEnv(tasks.make_task(name, emb), num_envs, seed=seed, num_threads=threads)
    ppo = PPOConfig(num_steps_per_env=steps_per_env)
    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the model summary
        runner = OnPolicyRunner(env, rsl_rl_config(ppo), log_dir=None, device="cpu")
    alg = runner.alg
    env.episode_length_buf = torch.randint_like(
        env.episode_length_buf, high=int(env.max_episode_length)
    )
    obs = env.get_observations()
    alg.train_mode()
    collect, env_time, update = [], [], []
    for it in range(warmup + iterations):
        t_env = 0.0
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(steps_per_env):
                actions = alg.act(obs)
                t = time.perf_counter()
                obs, rewards, dones, extras = env.step(actions)
                t_env += time.perf_counter() - t
                alg.process_env_step(obs, rewards, dones, extras)
            t1 = time.perf_counter()
            alg.compute_returns(obs)
        alg.update()
        t2 = time.perf_counter()
        if it >= warmup:
            collect.append(t1 - t0)
            env_time.append(t_env)
            update.append(t2 - t1)
    env.close()
    samples = num_envs * steps_per_env
    c, u = statistics.median(collect), statistics.median(update)
    return {
        "task": name,
        "body": emb.name,
        "num_envs": num_envs,
        "obs_dim": int(obs["policy"].shape[1]),
        "num_actions": env.num_actions,
        "control_hz": env.cfg.control_hz,
        "physics_steps_per_control_step": env.decimation,
        "collect_steps_per_s": round(samples / c),
        "env_share": round(
            statistics.median(e / t for e, t in zip(env_time, collect, strict=True)), 3
        ),
        "collect_s_per_iter": round(c, 4),
        "update_s_per_iter": round(u, 4),
        "iteration_s": round(c + u, 4),
        "train_steps_per_s": round(samples / (c + u)),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tasks", nargs="+", default=None, help="default: every registered task")
    p.add_argument("--envs", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--iterations", type=int, default=3, help="timed PPO iterations per case")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    p.add_argument("--steps-per-env", type=int, default=24, help="rollout length (train's)")
    p.add_argument("--threads", type=int, default=0, help="physics threads (0: every core)")
    p.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    p.add_argument("--seed", type=int, default=0, help="body and env seed")
    args = p.parse_args()
    if args.iterations < 1 or args.warmup < 0 or args.steps_per_env < 1:
        p.error("--iterations and --steps-per-env must be >= 1, --warmup >= 0")

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    load_before = os.getloadavg()[0]
    names, skipped = available_tasks(args.tasks or tasks.names())
    results = []
    for name in names:
        for n in args.envs:
            t = time.perf_counter()
            row = measure(
                name, n, iterations=args.iterations, warmup=args.warmup,
                steps_per_env=args.steps_per_env, threads=args.threads or None, seed=args.seed,
            )  # fmt: skip
            results.append(row)
            print(
                f"{name} N={n}: {row['collect_steps_per_s']} steps/s collect, "
                f"{row['update_s_per_iter']:.3f} s update ({time.perf_counter() - t:.0f} s)",
                file=sys.stderr,
            )
    ppo = PPOConfig(num_steps_per_env=args.steps_per_env)
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "steps_per_env": args.steps_per_env,
                "iterations": args.iterations,
                "warmup": args.warmup,
                "ppo": {
                    "hidden_dims": list(ppo.hidden_dims),
                    "num_learning_epochs": ppo.num_learning_epochs,
                    "num_mini_batches": ppo.num_mini_batches,
                },
                "physics_threads": args.threads or os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "machine": platform.machine(),
                "torch": torch.__version__,
                "mujoco": mujoco.__version__,
                "results": results,
                "skipped": skipped,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
