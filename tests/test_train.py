"""`xembody train` bookkeeping: run folder contents, time budgets, bad settings."""

from __future__ import annotations

import json

import pytest

from xembody.models.training import TrainConfig, train


def test_run_folder_and_checkpoints_with_a_time_budget(tmp_path):
    run = train(
        TrainConfig(task="reach", num_envs=8, iterations=25, max_minutes=5, save_interval=20,
                    steps_per_env=4, log_root=str(tmp_path), action_latency="1,3")
    )  # fmt: skip
    names = sorted(p.name for p in run.glob("model_*.pt"))
    assert names == ["model_0.pt", "model_20.pt", "model_24.pt"]  # no per-chunk leftovers
    doc = json.loads((run / "run.json").read_text())
    assert doc["task"] == "reach" and doc["ppo"]["init_std"] == 0.5  # the task's PPO default
    assert (run / "body.xml").is_file() and (run / "body.xml.json").is_file()
    assert doc["task_cfg"]["randomization"]["action_latency"] == [1, 3]  # --action-latency
    # Learning in chunks of 10 (for the budget) keeps one TensorBoard writer for the run; it
    # made one per chunk (113 event files and writer threads in a 15-minute run).
    events = list(run.glob("events.out.tfevents*"))
    assert len(events) == 1, [e.name for e in events]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert [e.step for e in acc.Scalars("Loss/learning_rate")] == list(range(25))


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="device='cuda'"):
        TrainConfig(device="cuda")
    with pytest.raises(ValueError, match="num_envs=0"):
        TrainConfig(num_envs=0)
    for bad in ("3,1", "x", "1"):
        with pytest.raises(ValueError, match="action_latency="):
            TrainConfig(action_latency=bad)
    with pytest.raises(KeyError, match="unknown task 'swim'"):
        train(TrainConfig(task="swim"))
