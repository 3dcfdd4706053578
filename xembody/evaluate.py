"""`xembody eval`: run a trained policy for N episodes and report success rate and the
task's metrics (for example tracking error) with 95% confidence intervals.

Success uses the Wilson score interval; metric means use mean +- 1.96 standard errors of
the per-episode means. `--policy zero` evaluates the untrained baseline of holding the
default pose (zero actions), `--policy random` a unit Gaussian policy.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from xembody.config import add_arguments, field, from_args


@dataclass(kw_only=True)
class EvalConfig:
    checkpoint: str = field("", "checkpoint file or run folder (latest checkpoint)")
    episodes: int = field(100, "episodes to evaluate")
    num_envs: int = field(0, "parallel envs (0: min(episodes, 256))")
    seed: int = field(1, "seed of the evaluation episodes")
    randomize: bool = field(True, "evaluate under the training randomisation")
    policy: str = field("trained", "trained | zero | random")
    json: bool = field(False, "print the result as JSON")
    out: str = field("", "also write the JSON result to this file")

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give --checkpoint (a model_<it>.pt file or a run folder)")
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes}, expected >= 1")
        if self.policy not in ("trained", "zero", "random"):
            raise ValueError(f"policy={self.policy!r}, expected trained, zero or random")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a policy: success rate and metrics with 95%% CIs")
    add_arguments(p, EvalConfig)
    p.set_defaults(run=lambda args: _run_cli(from_args(EvalConfig, args)))


def _run_cli(cfg: EvalConfig) -> int:
    result = evaluate(cfg)
    text = json.dumps(result, indent=2)
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(text)
    if cfg.json:
        print(text)
    else:
        s = result["success_rate"]
        print(
            f"{result['task']} on {result['body']} ({result['policy']} policy, "
            f"{result['episodes']} episodes): success {100 * s['mean']:.1f}% "
            f"[{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]"
        )
        for name, m in result["metrics"].items():
            print(f"  {name}: {m['mean']:.4f} [{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}]")
    return 0


def load_policy(checkpoint: str | Path, env):
    """The trained deterministic policy of `checkpoint`, acting on `env`'s observations."""
    from xembody.models.run import load_runner

    return load_runner(checkpoint, env).get_inference_policy()


def evaluate(cfg: EvalConfig) -> dict:
    from xembody.models.run import Run, latest_checkpoint, make_env

    torch.set_num_threads(1)  # small MLPs: torch threads would compete with the physics
    run = Run.load(cfg.checkpoint)
    n = cfg.num_envs or min(cfg.episodes, 256)
    env = make_env(run, n, seed=cfg.seed, randomize=cfg.randomize)
    if cfg.policy == "trained":
        policy = load_policy(cfg.checkpoint, env)
    elif cfg.policy == "zero":
        policy = lambda obs: torch.zeros(n, env.num_actions)  # noqa: E731
    else:
        policy = lambda obs: torch.randn(n, env.num_actions)  # noqa: E731
    records = run_episodes(env, policy, cfg.episodes)
    env.close()
    ckpt = latest_checkpoint(cfg.checkpoint) if cfg.policy == "trained" else None
    return summarize(records) | {
        "task": run.task,
        "body": run.body.name,
        "policy": cfg.policy,
        "checkpoint": str(ckpt) if ckpt else None,
        "randomize": cfg.randomize,
        "seed": cfg.seed,
    }


def run_episodes(env, policy, episodes: int) -> dict[str, list[float]]:
    """Roll `policy` until `episodes` episodes have ended; the first `episodes` records
    (in order of ending) are kept. Prints progress every ~5 s."""
    records: dict[str, list[float]] = {}
    obs = env.get_observations()
    done_count, last = 0, time.perf_counter()
    with torch.inference_mode():
        while done_count < episodes:
            obs, _, _, extras = env.step(policy(obs))
            finished = extras.get("finished")
            if finished is None:
                continue
            take = min(len(finished["env_ids"]), episodes - done_count)
            for key, values in finished.items():
                if key != "env_ids":
                    records.setdefault(key, []).extend(values[:take].float().tolist())
            done_count += take
            if time.perf_counter() - last > 5:
                print(f"  eval: {done_count}/{episodes} episodes", flush=True)
                last = time.perf_counter()
    return records


def summarize(records: dict[str, list[float]]) -> dict:
    success = records["success"]
    n = len(success)
    metrics = {
        k: _mean_ci(v) for k, v in records.items() if k not in ("success", "length", "return")
    }
    return {
        "episodes": n,
        "success_rate": {"mean": sum(success) / n, "ci95": list(wilson(sum(success), n))},
        "return": _mean_ci(records["return"]),
        "episode_length_steps": _mean_ci(records["length"]),
        "metrics": metrics,
    }


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _mean_ci(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
    half = 1.96 * math.sqrt(var / n)
    return {"mean": mean, "ci95": [mean - half, mean + half]}
