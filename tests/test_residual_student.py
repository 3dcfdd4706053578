"""Residual RL on a frozen base, and the joint-token student that serves every body."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from rsl_rl.runners import OnPolicyRunner

from xembody.evaluate import EvalConfig, evaluate
from xembody.models.export import export_policy
from xembody.models.exported import ExportedPolicy
from xembody.models.joint_policy import (
    BODY_DESC_DIM,
    JOINT_DESC_DIM,
    JointTokenPolicy,
    ObsSplit,
    body_descriptor,
    joint_descriptors,
    pad_joints,
)
from xembody.models.ppo import rsl_rl_config
from xembody.models.residual import load_base
from xembody.models.run import Run, load_runner, make_env
from xembody.models.training import TrainConfig, train
from xembody.sim.bodies import registry


@pytest.fixture(scope="module")
def weak_base(tmp_path_factory):
    """A reach policy after 3 PPO iterations (barely trained), exported."""
    root = tmp_path_factory.mktemp("base")
    run = train(
        TrainConfig(
            task="reach", num_envs=32, iterations=3, log_root=str(root), run_name="b", threads=1
        )
    )
    export_policy(run, root / "export")
    return root / "export", run


def test_residual_actor_starts_as_the_base_policy_exactly(weak_base, tmp_path):
    weak_base, _ = weak_base
    run_dir = train(
        TrainConfig(
            task="reach", num_envs=16, iterations=1, log_root=str(tmp_path), run_name="r",
            threads=1, base_policy=str(weak_base), residual_scale=0.5, learning_rate=1e-12,
        )
    )  # fmt: skip
    # Reload the first checkpoint: the actor's deterministic action is the base's, bit for bit.
    run = Run.load(run_dir)
    env = make_env(run, 8, threads=1, randomize=False)
    ckpt = sorted(run_dir.glob("model_*.pt"))[0]
    runner = load_runner(ckpt, env)
    base, _ = load_base(weak_base)
    obs = env.get_observations()
    # A freshly built actor (the constructor's zero-initialised last layer) is the base.
    with contextlib.redirect_stdout(io.StringIO()):
        fresh = OnPolicyRunner(env, rsl_rl_config(run.ppo), log_dir=None, device="cpu")
    assert torch.equal(fresh.alg.actor(obs), base(obs["policy"]))
    # One update at lr 1e-12 later, the checkpoint's actor is still the base to float noise.
    torch.testing.assert_close(runner.alg.actor(obs), base(obs["policy"]), rtol=0, atol=1e-6)
    env.close()

    # The exported residual policy (base inside) runs without rsl-rl, like any export.
    out = tmp_path / "export"
    export_policy(ckpt, out)
    x = np.random.default_rng(0).normal(size=(4, obs["policy"].shape[1])).astype(np.float32)
    res = ExportedPolicy.load(out, "torchscript")(x)
    with torch.no_grad():
        expect = runner.alg.actor.as_jit()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(res, expect, atol=1e-5)
    np.testing.assert_allclose(ExportedPolicy.load(out, "onnx")(x), expect, atol=1e-4)


def test_residual_training_improves_on_the_base(weak_base, tmp_path):
    weak_base, base_run = weak_base
    run_dir = train(
        TrainConfig(
            task="reach", num_envs=64, iterations=60, log_root=str(tmp_path), threads=1,
            base_policy=str(weak_base), residual_scale=1.0,
        )
    )  # fmt: skip
    cfg = dict(checkpoint=str(run_dir), episodes=64, randomize=False)
    residual = evaluate(EvalConfig(**cfg, policy="trained"))
    base = evaluate(EvalConfig(**{**cfg, "checkpoint": str(base_run)}, policy="trained"))
    err_res = residual["metrics"]["pos_error_m"]["mean"]
    err_base = base["metrics"]["pos_error_m"]["mean"]
    # 3 seeds measured (2026-11-26, after the env's draws moved to torch generators): the
    # ratio is under 0.6 for seeds 1 and 2 and 0.77 for seed 0 at 60 iterations (0.80 at 40):
    # < 0.85 says "improves" for all three.
    assert err_res < 0.85 * err_base, (err_res, err_base)


def _arm(seed: int):
    body = registry.sample("arm", seed)
    names = tuple(n for n in body.joint_names if n != "gripper")
    return body, names


def _student_inputs(bodies, batch: int, channels: int = 3, global_dim: int = 12, seed: int = 0):
    """Per-body (joint_obs, joint_desc, global, body_desc) for `batch` envs of each body."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for body, names in bodies:
        model = body.compile()
        desc = torch.from_numpy(joint_descriptors(model, names)).expand(batch, -1, -1)
        bdesc = torch.from_numpy(body_descriptor(model, len(names), False)).expand(batch, -1)
        rows.append(
            (
                torch.randn(batch, len(names), channels, generator=g),
                desc,
                torch.randn(batch, global_dim, generator=g),
                bdesc,
            )
        )
    return rows


def _batch(rows, num_joints: int):
    joint_obs = pad_joints([r[0] for r in rows], num_joints)
    joint_desc = pad_joints([r[1] for r in rows], num_joints)
    mask = pad_joints([torch.ones(r[0].shape[:2], dtype=torch.bool) for r in rows], num_joints)
    glob = torch.cat([r[2] for r in rows])
    body = torch.cat([r[3] for r in rows])
    return joint_obs, joint_desc, mask, glob, body


def test_student_serves_bodies_with_different_joint_counts_in_one_batch():
    bodies = [_arm(s) for s in range(12)]
    by_count = {len(names): (b, names) for b, names in bodies}
    assert len(by_count) >= 2, "the arm generator should give different joint counts"
    small, large = by_count[min(by_count)], by_count[max(by_count)]
    assert joint_descriptors(small[0].compile(), small[1]).shape[1] == JOINT_DESC_DIM
    torch.manual_seed(0)
    policy = JointTokenPolicy(3, 12, body_actions=2).eval()
    rows = _student_inputs([small, large], batch=5)
    jmax = len(large[1])
    joint_actions, body_actions = policy(*_batch(rows, jmax))
    assert joint_actions.shape == (10, jmax) and body_actions.shape == (10, 2)
    assert torch.all(joint_actions[:5, len(small[1]) :] == 0)  # padded joints act not at all
    # Each body's actions are the same as when it is batched alone: no cross-talk.
    alone, _ = policy(*_batch(rows[:1], len(small[1])))
    torch.testing.assert_close(joint_actions[:5, : len(small[1])], alone, atol=1e-5, rtol=1e-5)
    assert BODY_DESC_DIM == rows[0][3].shape[1]


def test_masked_joints_cannot_change_the_real_joints_actions():
    body = _arm(0)
    rows = _student_inputs([body], batch=4)
    n = len(body[1])
    policy = JointTokenPolicy(3, 12).eval()
    joint_obs, joint_desc, mask, glob, bdesc = _batch(rows, n + 3)
    clean, _ = policy(joint_obs, joint_desc, mask, glob, bdesc)
    joint_obs[:, n:] = 1e3 * torch.randn_like(joint_obs[:, n:])  # garbage in the padding
    joint_desc[:, n:] = -7.0
    noisy, _ = policy(joint_obs, joint_desc, mask, glob, bdesc)
    torch.testing.assert_close(clean, noisy, atol=0, rtol=0)
    # ... while a real joint's input does change the others' actions (attention is used).
    joint_obs[:, 0] += 1.0
    moved, _ = policy(joint_obs, joint_desc, mask, glob, bdesc)
    assert (moved[:, 1:n] - clean[:, 1:n]).abs().max() > 1e-4


def test_obs_split_reads_per_joint_terms_from_the_layout():
    terms = [
        {"name": "joint_pos", "start": 0, "size": 6, "frame": "joint"},
        {"name": "joint_vel", "start": 6, "size": 6, "frame": "joint"},
        {"name": "pos_error", "start": 12, "size": 3, "frame": "world"},
        {"name": "last_action", "start": 15, "size": 6, "frame": "action"},
    ]
    split = ObsSplit.from_layout(terms, 6)
    obs = torch.arange(21.0).unsqueeze(0)
    joint, glob = split.split(obs)
    assert joint.shape == (1, 6, 3) and glob.tolist() == [[12.0, 13.0, 14.0]]
    assert joint[0, 2].tolist() == [2.0, 8.0, 17.0]  # joint 2: pos, vel, last action
    with pytest.raises(ValueError, match="no per-joint terms"):
        ObsSplit.from_layout(terms[2:3], 6)


def test_relative_student_outputs_the_measured_angle_plus_what_it_learned():
    # `relative_to="joint_pos"`: a fixed skip adds each joint's angle (over the action
    # scale) to its action, so a student whose head outputs zero holds the arm where it is.
    from xembody.models.generalist import BodyBinding, BoundStudent, make_student
    from xembody.sim import tasks
    from xembody.sim.env import BodyEnv

    env = BodyEnv(tasks.make_task("reach", registry.sample("arm", 0)), 4, num_threads=1)
    env.step(torch.full((4, env.num_actions), 0.5))
    binding = BodyBinding.from_env(env)
    student = make_student(binding, relative_to="joint_pos", dim=16, heads=2, layers=1)
    student.joint_head[-1].weight.data.zero_()
    student.joint_head[-1].bias.data.zero_()
    obs = env.get_observations()["policy"]
    action = BoundStudent(student, binding)(obs)
    angle = obs[:, binding.joint_index[:, binding.joint_channels.index("joint_pos")]]
    assert angle.abs().max() > 0.05
    assert torch.allclose(action, angle / env.task.cfg.action_scale)
    # The skip is saved with the weights; weights saved before it existed load as absolute.
    old = {k: v for k, v in student.state_dict().items() if k != "skip"}
    again = make_student(binding, relative_to="joint_pos", dim=16, heads=2, layers=1)
    again.load_state_dict(old)
    assert not again.skip.any()
    with pytest.raises(ValueError, match="relative_to='angle'.*joint_pos"):
        make_student(binding, relative_to="angle")
    env.close()
