"""Rough terrain for the `velocity` task: the tile grid, contact and height on it, the level
curriculum, the flat default left as it was, and the MuJoCo Warp backend."""

from __future__ import annotations

import functools
import math
import re

import mujoco
import numpy as np
import pytest
import torch

from xembody.sim import bodies, tasks
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg
from xembody.sim.tasks.locomotion import VelocityConfig
from xembody.sim.tasks.terrain import CELL, MIN_COMMANDED, TILE, next_level

N = 4


@functools.cache
def body(kind: str = "quadruped"):
    return bodies.sample(kind, seed=0)


def rough_env(n: int = N, backend: str = "cpu", **cfg) -> BodyEnv:
    cfg.setdefault("randomization", RandomizationCfg.off())
    task = tasks.make_task("velocity", body(), VelocityConfig(terrain="rough", **cfg))
    return BodyEnv(task, n, seed=0, backend=backend, num_threads=1)


def on_top_level(env: BodyEnv) -> None:
    """Every env respawned on the roughest row (a fresh env's episodes have not run, so
    the reset keeps the levels it is given)."""
    env.task.curriculum.level[:] = env.cfg.terrain_levels - 1
    env.reset()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("terrain", "hilly", "expected 'flat' or 'rough'"),
        ("terrain_levels", 1, "expected an integer >= 2"),
        ("terrain_levels", 2.5, "expected an integer >= 2"),
        ("terrain_max_height", 0.0, "expected in (0, 1] m"),
        ("terrain_max_height", 5.0, "expected in (0, 1] m"),
    ],
)
def test_bad_terrain_options_are_refused_by_name(field, value, expected) -> None:
    with pytest.raises(ValueError, match=rf"{field}=.*{re.escape(expected)}"):
        VelocityConfig(**{field: value})


def test_tiles_get_rougher_with_the_row() -> None:
    env = rough_env(terrain_levels=5, terrain_max_height=0.08)
    task, cfg, m = env.task, env.cfg, env.sim.model
    hf = m.hfield("terrain")  # rows along y, one point every CELL m
    assert (int(hf.nrow[0]), int(hf.ncol[0])) == task.terrain.heights.shape
    assert 2 * m.hfield_size[0][1] / (int(hf.nrow[0]) - 1) == pytest.approx(CELL)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    grid, rng = task.terrain, np.random.default_rng(0)
    ranges = []
    for level in range(grid.levels):
        cx, cy = grid.tile_centre(level, 1)
        heights = []
        for x, y in rng.uniform(-0.45, 0.45, (150, 2)) * TILE + (cx, cy):
            geom = np.zeros(1, np.int32)
            heights.append(3.0 - mujoco.mj_ray(m, d, [x, y, 3.0], [0, 0, -1], None, 1, -1, geom))
            assert m.geom(int(geom[0])).name == "terrain"
        ranges.append(np.ptp(heights))
        assert np.ptp(grid.tile_heights(level, 1)) <= cfg.terrain_max_height * level / 4 + 1e-9
    assert ranges[0] < 1e-6  # row 0 is flat
    assert all(a < b for a, b in zip(ranges, ranges[1:], strict=False)), ranges
    assert ranges[-1] > 0.8 * cfg.terrain_max_height
    # the task's ground lookup agrees with what MuJoCo's collision surface reports
    cx, cy = grid.tile_centre(grid.levels - 1, 2)
    for x, y in rng.uniform(-0.4, 0.4, (50, 2)) * TILE + (cx, cy):
        ray = 3.0 - mujoco.mj_ray(m, d, [x, y, 3.0], [0, 0, -1], None, 1, -1, np.zeros(1, np.int32))
        ground = task.curriculum.ground(torch.tensor([x, y], dtype=torch.float32))
        assert float(ground) == pytest.approx(ray, abs=0.3 * cfg.terrain_max_height)


def test_zero_action_on_rough_tiles_stands_with_its_feet_in_contact() -> None:
    env = rough_env(terrain_max_height=0.08)
    task = env.task
    on_top_level(env)
    level = env.cfg.terrain_levels - 1
    spawn_z = task.sim.qpos[:, 2] - task.home_height
    assert (spawn_z > 0.5 * env.cfg.terrain_max_height).all()  # above the bumps
    torch.testing.assert_close(
        task.sim.qpos[:, 1].float(), torch.full((N,), (level + 0.5) * TILE), rtol=0, atol=1e-6
    )
    zero = torch.zeros(N, env.num_actions)
    for _ in range(25):  # 0.5 s: dropped onto the bumps and settled
        obs, rew, dones, _ = env.step(zero)
        assert torch.isfinite(obs["critic"]).all() and torch.isfinite(rew).all()
        assert not dones.any()
    contact = task.foot_contact()
    assert (contact.sum(1) >= 3).all(), contact  # standing on uneven ground: 3 or 4 feet
    # the flat rule (a foot within contact_height of its home height) misses them here
    by_height = task.sim.sensordata[:, task._foot_z_cols].float() < task.foot_contact_z
    assert by_height.sum() < contact.sum()
    # the base height is measured from the ground under the feet, not from z = 0
    assert (task.sensor("base_pos")[:, 2] > task.home_height + 0.01).all()
    assert (task.base_z() - task.home_height).abs().max() < 0.03


def test_the_level_rule_on_hand_made_episodes() -> None:
    c = 2 * MIN_COMMANDED  # commanded distance, m
    cases = [  # level, fell, walked, commanded, ran -> new level
        (3, False, 0.5 * c, c, True, 4),  # walked half: up
        (3, False, 0.4 * c, c, True, 3),  # between a quarter and a half: stays
        (3, False, 0.2 * c, c, True, 2),  # less than a quarter: down
        (3, True, 1.0 * c, c, True, 2),  # fell: down, however far it got
        (0, True, 0.0, c, True, 0),  # not below 0
        (3, False, 0.0, 0.5 * MIN_COMMANDED, True, 3),  # standing-ish command: stays
        (3, True, 0.0, 0.0, True, 2),  # a standing env that fell: down
        (3, True, 0.0, 0.0, False, 3),  # no step taken (the env's first reset): stays
        (9, False, c, c, True, 7),  # past the top: the random level (7)
    ]
    level, fell, walked, commanded, ran, expected = (
        torch.tensor(x) for x in zip(*cases, strict=True)
    )
    new = next_level(
        level, fell, walked.float(), commanded.float(), ran, torch.full_like(level, 7), 10
    )
    assert new.tolist() == expected.tolist()


def test_the_curriculum_moves_walkers_up_and_fallers_down() -> None:
    env = rough_env(episode_seconds=0.2)
    task, cur = env.task, env.task.curriculum
    zero = torch.zeros(N, env.num_actions)
    env.step(zero)  # one step: the episodes have run
    cur.level[:] = torch.tensor([3, 3, 3, 5])
    cur.commanded[:] = 4.0
    cur.walked[:] = torch.tensor([3.0, 0.5, 4.0, 1.5])  # walked, shuffled, fell, middling
    qpos = task.sim.qpos.clone()
    qpos[2, 3:7] = torch.tensor([math.cos(0.75), math.sin(0.75), 0.0, 0.0])  # rolled 1.5 rad
    task.sim.reset(torch.tensor([2]), qpos=qpos[2:3])
    assert task.terminated().tolist() == [False, False, True, False]
    task.reset_envs(torch.arange(N))
    assert cur.level.tolist() == [4, 2, 2, 5]
    y = task.sim.qpos[:, 1].float()  # respawned on the new levels' rows
    torch.testing.assert_close(y, (cur.level.float() + 0.5) * TILE, rtol=0, atol=1e-6)
    assert (cur.walked == 0).all() and (cur.commanded == 0).all()
    # walking is measured along the command: a base moving at the commanded velocity
    # walks the commanded distance
    cur.track(torch.tensor([[0.6, 0.8]] * N), torch.tensor([[0.6, 0.8]] * N), 0.5)
    torch.testing.assert_close(cur.walked, torch.full((N,), 0.5))
    # the mean level is logged whenever episodes end
    logged = []
    for _ in range(round(0.2 * env.cfg.control_hz)):
        before = cur.level.float().mean()
        log = env.step(zero)[3]["log"]
        if log:
            logged.append((log["/curriculum/terrain_level"], before))
    assert logged and all(value == pytest.approx(mean) for value, mean in logged)


def test_flat_terrain_is_the_model_and_rollout_it_always_was() -> None:
    """Numbers recorded at commit fec4515 (before rough terrain existed) with this rollout:
    pushes, resets and randomisation included. They change only if the flat velocity task
    itself is changed on purpose (then re-record them here) or MuJoCo's numerics move."""
    cfg = VelocityConfig(episode_seconds=0.4, randomization=RandomizationCfg(push_interval_s=0.3))
    assert cfg.terrain == "flat"
    env = BodyEnv(tasks.make_task("velocity", body(), cfg), 4, seed=3, num_threads=1)
    m = env.sim.model
    assert (m.nhfield, m.ngeom, m.nsensordata) == (0, 18, 53)
    assert env.task.curriculum is None and env.task.episode_log() == {}
    g = torch.Generator().manual_seed(0)
    totals = torch.zeros(4, dtype=torch.float64)
    for _ in range(40):
        obs, rew, dones, _ = env.step(0.5 * torch.randn(4, env.num_actions, generator=g))
        totals += torch.stack(
            [obs["policy"].double().abs().sum(), obs["critic"].double().abs().sum()]
            + [rew.double().sum(), dones.double().sum()]
        )
    expected = [4974.408100421293, 5525.632099161681, 4.420323937898502, 8.0]
    assert totals.tolist() == pytest.approx(expected, rel=1e-6)


def test_rough_terrain_runs_on_warp_like_on_cpu() -> None:
    pytest.importorskip("mujoco_warp", reason="mujoco-warp is not installed (pip install .[dev])")
    out = {}
    for backend in ("cpu", "warp:cpu"):
        env = rough_env(backend=backend, init_joint_noise=0.0, gait_period=0.0)
        env.task.fixed_commands = torch.zeros(N, 3)
        on_top_level(env)
        zero = torch.zeros(N, env.num_actions, device=env.device)
        for _ in range(20):
            obs, rew, dones, _ = env.step(zero)
        assert torch.isfinite(obs["critic"]).all() and not dones.any()
        out[backend] = env.task.sim.qpos.cpu().double(), env.task.foot_contact().cpu()
        env.close()
    assert (out["cpu"][1] == out["warp:cpu"][1]).all()
    assert (out["cpu"][0] - out["warp:cpu"][0]).abs().max() < 5e-3
