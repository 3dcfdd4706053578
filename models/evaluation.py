"""Episode statistics: roll a policy for N episodes and summarise them with 95% intervals
(success and termination rates: Wilson score intervals; metric means: mean +- 1.96
standard errors of the per-episode means). `xembody eval`, the generalist pipeline, the
demo and the digital-cousin experiment all report through these.
"""

from __future__ import annotations

import math
import sys
import time

import torch


def run_episodes(env, policy, episodes: int) -> dict[str, list[float]]:
    """Roll `policy` until `episodes` episodes are recorded: each env's first k (k =
    episodes // num_envs), and one more from each of the first episodes % num_envs envs.

    Which episodes count is fixed before any ends, so it cannot depend on how they end.
    Keeping the first `episodes` to end, as this did before, over-counted short episodes
    (falls) whenever episodes > num_envs: the last slots went to second-round episodes that
    had ended early. Prints progress every ~5 s (to stderr: stdout may be --json)."""
    n = env.num_envs
    quota = torch.full((n,), episodes // n, dtype=torch.long)
    quota[: episodes % n] += 1
    taken = torch.zeros(n, dtype=torch.long)
    records: dict[str, list[float]] = {}
    obs = env.get_observations()
    done_count, last = 0, time.perf_counter()
    with torch.inference_mode():
        while done_count < episodes:
            obs, _, _, extras = env.step(policy(obs))
            finished = extras.get("finished")
            if finished is None:
                continue
            ids = finished["env_ids"].to("cpu", torch.long)
            keep = taken[ids] < quota[ids]
            taken[ids] += 1  # an env ends at most one episode per step
            for key, values in finished.items():
                if key != "env_ids":
                    records.setdefault(key, []).extend(values.cpu()[keep].float().tolist())
            done_count += int(keep.sum())
            if time.perf_counter() - last > 5:
                print(f"  eval: {done_count}/{episodes} episodes", file=sys.stderr, flush=True)
                last = time.perf_counter()
    return records


def summarize(records: dict[str, list[float]]) -> dict:
    success = records["success"]
    n = len(success)
    ended = records.get("terminated", [0.0] * n)
    counts = ("success", "terminated", "length", "return")
    metrics = {k: _mean_ci(v) for k, v in records.items() if k not in counts}
    return {
        "episodes": n,
        "success_rate": {"mean": sum(success) / n, "ci95": list(wilson(sum(success), n))},
        "termination_rate": {"mean": sum(ended) / n, "ci95": list(wilson(sum(ended), n))},
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
