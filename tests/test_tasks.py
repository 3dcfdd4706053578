"""Integrity over every registered task: docs, shapes, randomisation switches, bad bodies,
units, and the rsl-rl contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rsl_rl.env import VecEnv

from xembody.sim import bodies, tasks
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg

DOCS = Path(__file__).resolve().parents[1] / "docs" / "TASKS.md"
TASKS = pytest.mark.parametrize("name", tasks.names())


def make_env(name: str, n: int = 4, randomize: bool = True, seed: int = 0) -> BodyEnv:
    entry = tasks.get(name)
    cfg = tasks.make_config(name)
    if not randomize:
        cfg.randomization = RandomizationCfg.off()
    emb = bodies.sample(entry.default_body, seed=seed)
    return BodyEnv(tasks.make_task(name, emb, cfg), n, seed=seed, num_threads=1)


def test_docs_match_the_code():
    from xembody.sim.tasks.doc import render

    assert DOCS.read_text() == render(), (
        "docs/TASKS.md is out of date: python -m xembody.sim.tasks.doc > docs/TASKS.md"
    )


@TASKS
def test_env_follows_the_vecenv_contract(name):
    env = make_env(name)
    assert isinstance(env, VecEnv)
    obs = env.get_observations()
    sizes = [t.fn(env.task).shape for t in env.obs_terms]
    assert all(s[0] == env.num_envs for s in sizes)
    assert obs["policy"].shape == (4, sum(s[1] for s in sizes))
    privileged = sum(t.fn(env.task).shape[1] for t in env.critic_terms)
    assert obs["critic"].shape == (4, obs["policy"].shape[1] + privileged)
    for _ in range(env.max_episode_length + 2):  # through at least one time-out
        obs, rew, dones, extras = env.step(torch.randn(4, env.num_actions))
        assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all()
        assert rew.shape == (4,) and dones.shape == (4,)
        assert extras["time_outs"].dtype == torch.bool
    assert (env.episode_length_buf < env.max_episode_length).all()
    env.close()


@TASKS
def test_play_mode_has_no_noise_and_same_structure(name):
    train_env, play_env = make_env(name), make_env(name, randomize=False)
    train_obs, play_obs = train_env.get_observations(), play_env.get_observations()
    assert train_obs["policy"].shape == play_obs["policy"].shape
    width = play_obs["policy"].shape[1]  # the critic's privileged terms come after
    assert torch.equal(play_obs["policy"], play_obs["critic"][:, :width])
    if any(t.noise for t in train_env.obs_terms):
        assert not torch.equal(train_obs["policy"], train_obs["critic"])


@TASKS
def test_a_body_of_the_wrong_class_fails_clearly(name):
    task_cls, _ = tasks.get(name).load()
    wrong = next(c for c in bodies.names() if c not in task_cls.body_classes)
    expected = f"task '{name}' needs a body of class .* got .* '{wrong}'"
    with pytest.raises(ValueError, match=expected):
        tasks.make_task(name, bodies.sample(wrong, seed=0))


@TASKS
def test_joint_velocity_term_is_in_rad_per_second(name):
    env = make_env(name, randomize=False)
    terms = {t.name: t for t in env.obs_terms}
    if "joint_pos" not in terms or "joint_vel" not in terms:
        pytest.skip("task has no joint terms")
    env.step(torch.full((4, env.num_actions), 0.3))  # joints in motion
    before = terms["joint_pos"].fn(env.task).clone()
    env.sim.step(1)  # one physics step
    after, vel = terms["joint_pos"].fn(env.task), terms["joint_vel"].fn(env.task)
    # MuJoCo's semi-implicit Euler: q' = q + dt * v', so the difference over one physics step
    # is the end velocity itself (measured: 2e-5 relative, reach and velocity tasks); a term in
    # rad per control step or scaled would be off by a factor
    finite_diff = (after - before) / (env.control_dt / env.decimation)
    assert vel.abs().mean() > 0.1, "the joints did not move: nothing was checked"
    assert (finite_diff - vel).norm() < 1e-3 * finite_diff.norm()


def test_unknown_task_and_bad_config():
    with pytest.raises(KeyError, match="unknown task 'fly'"):
        tasks.get("fly")
    with pytest.raises(ValueError, match="control_hz=0"):
        tasks.make_config("reach", control_hz=0)
    with pytest.raises(ValueError, match="randomization.mass"):
        RandomizationCfg(mass=(1.2, 0.8))


def test_randomization_reaches_the_physics():
    env = make_env("reach", n=8)
    masses = env.sim.get_params("body_mass")[:, 2]
    kp = env.sim.get_params("actuator_kp")[:, 0]
    assert masses.std() > 0 and kp.std() > 0
    nominal = env.task.emb.compile()
    assert np.all(np.abs(masses.numpy() / nominal.body_mass[2] - 1) <= 0.1 + 1e-9)


def test_pushes_kick_the_base_and_leave_the_scene_in_place():
    cfg = tasks.make_config("navigate")
    cfg.randomization = RandomizationCfg(push_interval_s=0.2, push_velocity=1.0)
    emb = bodies.sample("wheeled", seed=1)
    assert emb.floating_base  # the differential-drive variant has a free base
    env = BodyEnv(tasks.make_task("navigate", emb, cfg), 4, seed=0, num_threads=1)
    scene = env.sim.mocap_pos.clone()
    kicked = False
    for _ in range(10):
        before = env.sim.qvel[:, :2].clone()
        timers = env.push_timer.clone()
        env.step(torch.zeros(4, env.num_actions))
        pushed = timers - env.control_dt <= 0
        kicked |= bool(((env.sim.qvel[:, :2] - before).norm(dim=1)[pushed] > 0.2).any())
    assert kicked
    kept = env.episode_length_buf == 10  # envs whose episode did not end (no new scene)
    assert kept.any()
    assert torch.equal(env.sim.mocap_pos[kept], scene[kept])


@TASKS
def test_reward_weights_come_from_the_config(name):
    env = make_env(name)
    defaults = dict(env.reward_weights)
    first, second = list(defaults)[:2]
    cfg = tasks.apply_overrides(name, tasks.make_config(name), [f"rewards.{first}=0"])
    cfg = tasks.apply_overrides(name, cfg, [f"rewards.{second}=7.5"])
    emb = bodies.sample(tasks.get(name).default_body, seed=0)
    edited = BodyEnv(tasks.make_task(name, emb, cfg), 4, seed=0, num_threads=1)
    assert edited.reward_weights == defaults | {first: 0.0, second: 7.5}
    assert first not in [t.name for t in edited.reward_terms]  # weight 0: not computed
    assert [t.weight for t in edited.reward_terms if t.name == second] == [7.5]
    cfg = tasks.apply_overrides(name, tasks.make_config(name), ["rewards.no_such_term=1"])
    with pytest.raises(ValueError, match=r"unknown term\(s\) \['no_such_term'\].*" + first):
        BodyEnv(tasks.make_task(name, emb, cfg), 1, seed=0, num_threads=1)
    env.close()
    edited.close()


def test_task_options_edit_nested_fields_and_refuse_unknown_ones():
    cfg = tasks.apply_overrides(
        "velocity",
        tasks.make_config("velocity"),
        ["vx=-1,1.5", "randomization.push_interval_s=4", "observe_lin_vel=true"],
    )
    assert cfg.vx == (-1.0, 1.5) and cfg.observe_lin_vel is True
    assert cfg.randomization.push_interval_s == 4
    with pytest.raises(ValueError, match="no field 'vz'.*'vx'"):
        tasks.apply_overrides("velocity", cfg, ["vz=1"])
    edited = tasks.apply_overrides("velocity", cfg, ["randomization.action_latency=1,3"])
    assert edited.randomization.action_latency == (1, 3)
    with pytest.raises(ValueError, match=r"action_latency=\(1.5, 3\), expected whole"):
        tasks.apply_overrides("velocity", cfg, ["randomization.action_latency=1.5,3"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        tasks.apply_overrides("velocity", cfg, ["vx"])
    with pytest.raises(ValueError, match=r"vx=\(1, -1\), expected low <= high"):
        tasks.apply_overrides("velocity", cfg, ["vx=1,-1"])


def test_body_class_defaults_sit_between_the_config_and_the_callers_values():
    assert tasks.make_config("velocity").gait_period == 0.35  # quadruped: a trot's stride
    assert tasks.make_config("velocity", "humanoid").gait_period == 0.6
    assert tasks.make_config("velocity", "humanoid", gait_period=0.5).gait_period == 0.5
    assert tasks.make_config("velocity", "quadruped").gait_period == 0.35


def test_ppo_options_parse_values_and_name_the_known_keys():
    from xembody.models.ppo import ppo_config

    cfg = ppo_config({"init_std": 1.0}, ["init_std=0.5", "hidden_dims=256,128"])
    assert cfg.init_std == 0.5 and cfg.hidden_dims == (256, 128)
    assert ppo_config({}, ["hidden_dims=[64]"]).hidden_dims == (64,)
    with pytest.raises(ValueError, match="'init_sd=1'.*'init_std'"):
        ppo_config({}, ["init_sd=1"])
    with pytest.raises(ValueError, match=r"ppo.learning_rate=2, expected in \(0, 1\)"):
        ppo_config({}, ["learning_rate=2"])
