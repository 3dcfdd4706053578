"""Point-goal navigation (`navigate`) on both wheeled variants: scene, sensing, episodes."""

from __future__ import annotations

import math
import time
from functools import cache

import numpy as np
import pytest
import torch

from xembody.sim import bodies, tasks
from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg
from xembody.sim.tasks.navigation import OBSTACLES, PARK, NavigateConfig, NavigateTask

DIFF_SEED, OMNI_SEED = 1, 0  # wheeled_s1 is a differential drive, wheeled_s0 an omni base
VARIANTS = {"diff": DIFF_SEED, "omni": OMNI_SEED}


@cache
def body(seed: int) -> Embodiment:
    return bodies.sample("wheeled", seed=seed)


def make_env(seed: int, num_envs: int = 2, **overrides) -> BodyEnv:
    cfg = NavigateConfig(randomization=RandomizationCfg.off(), **overrides)
    return BodyEnv(tasks.make_task("navigate", body(seed), cfg), num_envs, seed=0, num_threads=1)


def parked(n: int) -> np.ndarray:
    return np.array([[[PARK + 5 * k, PARK] for k in range(len(OBSTACLES))]] * n, dtype=float)


def scripted(task: NavigateTask) -> torch.Tensor:
    """Turn towards the goal, then drive straight at it."""
    g = task.goal_body()
    bearing = torch.atan2(g[:, 1], g[:, 0])
    actions = torch.zeros(task.num_envs, task.num_actions)
    actions[:, 0] = (bearing.abs() < 0.15).float() * 0.8 / task.cfg.action_scale
    actions[:, -1] = (2.0 * bearing).clamp(-1.0, 1.0) / task.cfg.turn_scale
    return actions


def run_episode(env: BodyEnv) -> dict[str, float]:
    """Step the scripted controller until env 0's episode ends; its episode log."""
    for _ in range(env.max_episode_length):
        _, _, dones, extras = env.step(scripted(env.task))
        if dones[0]:
            return extras["log"]
    raise AssertionError("the episode did not end")


def test_variants_are_the_intended_drives() -> None:
    assert body(DIFF_SEED).params["omni"] == 0 and body(OMNI_SEED).params["omni"] == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_observations_have_declared_shapes_and_stay_finite(variant: str) -> None:
    env = make_env(VARIANTS[variant], num_envs=4)
    task = env.task
    assert env.num_actions == (3 if variant == "omni" else 2)
    sizes = {"goal_distance": 1, "goal_direction": 2, "base_lin_vel": 2, "base_ang_vel": 1,
             "ranges": task.cfg.num_rays, "last_action": env.num_actions}  # fmt: skip
    assert [t.name for t in env.obs_terms] == list(sizes)
    for t in env.obs_terms:
        assert t.fn(task).shape == (4, sizes[t.name]), t.name
        assert t.units and t.frame and t.doc
    torch.manual_seed(0)
    for _ in range(10):
        obs, rewards, dones, _ = env.step(torch.randn(4, env.num_actions))
        assert obs["policy"].shape == (4, sum(sizes.values()))
        assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rewards).all()
    assert (task.ranges() > 0).all() and (task.ranges() <= task.cfg.ray_range).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_rangefinders_see_obstacles_but_not_robot_floor_or_goal(variant: str) -> None:
    env = make_env(VARIANTS[variant], num_envs=1)
    task, ids = env.task, torch.tensor([0])
    task.place(ids, np.zeros(1), np.array([[1.0, 0.0]]), parked(1))  # goal disc in front
    assert torch.equal(task.ranges(), torch.full((1, task.cfg.num_rays), task.cfg.ray_range))
    readings = []
    for x in (2.5, 1.8, 1.1):  # block 0 (0.2 m half size) straight ahead
        centres = parked(1)
        centres[0, 0] = [x, 0.0]
        task.place(ids, np.zeros(1), np.array([[3.0, 3.0]]), centres)
        readings.append(task.ranges()[0, 0].item())
        assert readings[-1] == pytest.approx(x - OBSTACLES[0][0], abs=1e-3)
        assert (task.ranges()[0, 1:] == task.cfg.ray_range).sum() >= task.cfg.num_rays - 3
    assert readings[0] > readings[1] > readings[2]
    # ray i looks 360*i/num_rays degrees counter-clockwise from the robot's heading
    centres = parked(1)
    centres[0, 0] = [0.0, 1.2]
    task.place(ids, np.zeros(1), np.array([[3.0, 3.0]]), centres)
    assert task.ranges()[0, task.cfg.num_rays // 4].item() == pytest.approx(1.0, abs=1e-3)


def test_layouts_keep_start_goal_and_passages_clear() -> None:
    env = make_env(DIFF_SEED, num_envs=1)
    task, cfg = env.task, env.task.cfg
    used = 0
    for _ in range(300):
        _, goal, centres = task._layout()
        assert cfg.goal_distance[0] <= np.linalg.norm(goal) <= cfg.goal_distance[1]
        active = [k for k in range(len(OBSTACLES)) if centres[k, 0] < PARK / 2]
        used += len(active)
        for k in active:
            half = np.array(OBSTACLES[k])
            for point in (np.zeros(2), goal):
                gap = np.hypot(*np.maximum(np.abs(centres[k] - point) - half, 0))
                assert gap > task.radius + cfg.clearance
            for j in active:
                if j != k:
                    gap = np.maximum(np.abs(centres[k] - centres[j]) - half - OBSTACLES[j], 0)
                    assert np.hypot(*gap) > 2 * task.radius + cfg.clearance
    assert used / 300 > 2.0  # most episodes have several obstacles


@pytest.mark.parametrize("variant", VARIANTS)
def test_scripted_controller_reaches_the_goal(variant: str) -> None:
    env = make_env(VARIANTS[variant])
    task, ids = env.task, torch.arange(2)
    heading = 2.0
    goal = 2.5 * np.array([[math.cos(heading), math.sin(heading)]] * 2)
    task.place(ids, np.array([-1.0, -1.0]), goal, parked(2))
    log = run_episode(env)
    assert log["/episode/success"] == 1.0
    assert log["/reward/goal_reached"] > 0 and log["/reward/collision"] == 0
    assert log["/episode/length_s"] < env.cfg.episode_seconds


@pytest.mark.parametrize("variant", VARIANTS)
def test_driving_into_an_obstacle_ends_the_episode_as_a_failure(variant: str) -> None:
    env = make_env(VARIANTS[variant])
    task, ids = env.task, torch.arange(2)
    centres = parked(2)
    centres[:, 5] = [1.5, 0.0]  # wall 5 (along y) blocks the straight line to the goal
    task.place(ids, np.zeros(2), np.array([[3.0, 0.0]] * 2), centres)
    log = run_episode(env)
    assert log["/episode/success"] == 0.0 and log["/reward/collision"] < 0
    assert log["/episode/length_s"] < 2.0  # ended by the collision, well before the time-out


def test_wrong_body_class_is_refused() -> None:
    with pytest.raises(ValueError, match="navigate.*wheeled.*arm"):
        tasks.make_task("navigate", bodies.sample("arm", seed=0))


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="goal_distance"):
        NavigateConfig(goal_distance=(3.0, 1.0))
    with pytest.raises(ValueError, match="obstacle_prob"):
        NavigateConfig(obstacle_prob=1.5)


def success_rate(run_folder, num_envs: int = 200) -> float:
    """Deterministic policy, first episode of every env counted once."""
    from rsl_rl.runners import OnPolicyRunner

    from xembody.models.ppo import rsl_rl_config
    from xembody.models.run import Run, latest_checkpoint
    from xembody.models.run import make_env as run_env

    run = Run.load(run_folder)
    env = run_env(run, num_envs, seed=123)
    runner = OnPolicyRunner(env, rsl_rl_config(run.ppo), log_dir=None, device="cpu")
    runner.load(str(latest_checkpoint(run_folder)))
    policy = runner.get_inference_policy()
    result = torch.full((num_envs,), -1)
    log_episodes = env._episode_log

    def record(ids: torch.Tensor) -> dict[str, float]:
        first = ids[result[ids] < 0]
        result[first] = env.episode_success[first].long()
        return log_episodes(ids)

    env._episode_log = record
    obs = env.get_observations()
    while (result < 0).any():
        with torch.no_grad():
            obs, *_ = env.step(policy(obs))
    return result.float().mean().item()


@pytest.mark.slow
def test_ppo_learns_to_navigate_a_differential_drive(tmp_path) -> None:
    from xembody.models.training import TrainConfig, train

    start = time.perf_counter()
    folder = train(
        TrainConfig(task="navigate", body="wheeled", body_seed=DIFF_SEED, num_envs=128,
                    iterations=100, save_interval=100, log_root=str(tmp_path))
    )  # fmt: skip
    rate = success_rate(folder)
    print(f"navigate, wheeled_s{DIFF_SEED}: success {rate:.2f} after "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    assert rate >= 0.7
