"""Multi-process PPO (rsl-rl's torch.distributed support, gloo on the CPU).

Each rank writes `<run>/ranks/rank<r>.jsonl`: per iteration a hash of its actor and critic
weights after the update and the mean per-step reward of its own rollout.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xembody.models.training import TrainConfig, train


def _log(run, rank: int) -> list[dict]:
    return [json.loads(x) for x in (run / "ranks" / f"rank{rank}.jsonl").read_text().splitlines()]


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(task="reach", steps_per_env=24, save_interval=1000, threads=1,
                log_root=str(tmp_path))  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_two_gloo_ranks_hold_identical_weights_after_every_update(tmp_path):
    run = train(_cfg(tmp_path, num_envs=4, nproc=2, iterations=4, steps_per_env=8, run_name="x"))
    r0, r1 = _log(run, 0), _log(run, 1)
    assert [x["it"] for x in r0] == [x["it"] for x in r1] == [0, 1, 2, 3]
    assert [x["params_sha1"] for x in r0] == [x["params_sha1"] for x in r1]
    assert len({x["params_sha1"] for x in r0}) == 4  # and every update changed them
    # each rank stepped its own envs (own seed): the rollouts differ
    assert [x["mean_reward"] for x in r0] != [x["mean_reward"] for x in r1]
    # rank 0 alone writes the run record, logs and checkpoints
    assert (run / "run.json").is_file() and len(list(run.glob("events.out.tfevents*"))) == 1
    assert sorted(p.name for p in run.glob("model_*.pt")) == ["model_0.pt", "model_3.pt"]


def test_bad_process_settings_fail_clearly():
    with pytest.raises(ValueError, match="nproc=0, expected >= 1"):
        TrainConfig(nproc=0)
    with pytest.raises(ValueError, match="device='tpu'"):
        TrainConfig(device="tpu")


def _curve(run, ranks: int, window: int = 8) -> np.ndarray:
    """Mean per-step reward (averaged over ranks) in windows of 8 iterations (192 steps; a
    reach episode is 200 steps, so each window holds about one reset spike)."""
    r = np.mean([[x["mean_reward"] for x in _log(run, k)] for k in range(ranks)], axis=0)
    return r[: len(r) // window * window].reshape(-1, window).mean(1)


@pytest.mark.slow  # four training runs; the default run keeps the identical-weights check
def test_two_processes_learn_like_one_with_the_same_total_envs(tmp_path):
    """2 x 8 envs against 1 x 16 envs, 32 iterations (~40 s on 2 quiet cores, ~4 min
    busy). Tolerance: the 2-process curve stays as close to the 1-process one (seed 0) as other
    1-process seeds (1 and 2) do, within a factor 2 plus 2e-4 (per-step reward units)."""
    one = _curve(train(_cfg(tmp_path, num_envs=16, iterations=32, run_name="one0")), 1)
    others = [
        _curve(train(_cfg(tmp_path, num_envs=16, iterations=32, seed=s, run_name=f"one{s}")), 1)
        for s in (1, 2)
    ]
    two = _curve(train(_cfg(tmp_path, num_envs=8, nproc=2, iterations=32, run_name="two0")), 2)
    for curve in (one, two):  # the compared runs learn (the others only gauge seed noise)
        assert curve[-1] > curve[0], f"no learning: {curve}"
    # the seed-to-seed gap from two other seeds: one pair alone can come out unusually close
    # (seeds 0 and 1 differed by 1.3e-4 at most once the env's draws moved to torch generators)
    seed_gap = max(np.abs(other - one).max() for other in others)
    assert np.abs(two - one).max() <= 2 * seed_gap + 2e-4, (one, others, two)
