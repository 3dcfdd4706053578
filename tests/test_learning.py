"""Learning happens: trained policies beat untrained ones by a measured margin.

The default run trains reaching briefly (40 iterations, about 30 s on 2 cores; measured
on seed 0: error 0.19 m after 30 iterations, 0.086 m after 50, against 0.575 m for the
zero policy, so the bar of half the zero policy's error has a wide margin); the slow tier (run by
.ci/run) guards docs/TRAINING.md's reach figure: 510 iterations on seeds 0-4 (2026-12-04)
gave 49.0, 46.2, 81.0, 90.8 and 93.5 % success over 400 randomised episodes, the zero policy
0.0 %; the bar of 35 % sits under the worst seed's interval [41.4, 51.1] and far above a
policy that does not learn. (A 60 % bar set from two seeds failed CI at seed 0's 49.0 %.)"""

from __future__ import annotations

import pytest

from xembody.evaluate import EvalConfig, evaluate
from xembody.models.training import TrainConfig, train


def _eval(run, policy: str, episodes: int = 64, randomize: bool = False) -> dict:
    return evaluate(
        EvalConfig(checkpoint=str(run), episodes=episodes, policy=policy, randomize=randomize)
    )


def test_reach_policy_gets_much_closer_than_the_untrained_one(tmp_path):
    run = train(
        TrainConfig(task="reach", num_envs=128, iterations=40, log_root=str(tmp_path), seed=0)
    )
    trained, zero = _eval(run, "trained"), _eval(run, "zero")
    err_trained = trained["metrics"]["pos_error_m"]["mean"]
    err_zero = zero["metrics"]["pos_error_m"]["mean"]
    assert err_trained < 0.5 * err_zero, (err_trained, err_zero)
    assert trained["return"]["mean"] > zero["return"]["mean"]


@pytest.mark.slow
def test_reach_reaches_35_percent_success_in_510_iterations(tmp_path):
    run = train(
        TrainConfig(
            task="reach", num_envs=256, iterations=510, save_interval=510, log_root=str(tmp_path)
        )
    )
    result = _eval(run, "trained", episodes=400, randomize=True)
    print(f"reach after 510 iterations: {result['success_rate']}")
    assert result["success_rate"]["mean"] >= 0.35, result["success_rate"]
