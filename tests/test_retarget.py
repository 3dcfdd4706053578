"""Pinocchio retargeting: IK checked against MuJoCo's forward kinematics of the same MJCF."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from xembody.real.retarget import (
    ArmIK,
    IKConfig,
    map_workspace,
    mujoco_ee_pose,
    retarget_trajectory,
)
from xembody.sim import bodies


def mj_pose(ik: ArmIK, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """End-effector pose by MuJoCo: home keyframe, chain joints set to q."""
    model = ik.emb.compile()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    for name, value in zip(ik.joint_names, q, strict=True):
        data.qpos[model.joint(name).qposadr[0]] = value
    mujoco.mj_kinematics(model, data)
    return mujoco_ee_pose(model, data, ik.ee)


def reachable_targets(ik: ArmIK, n: int, seed: int, min_height: float = 0.08) -> list:
    """(q, pos, rot) of random configurations inside the limits, end effector above the floor."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        q = rng.uniform(ik.lower, ik.upper)
        pos, rot = mj_pose(ik, q)
        if pos[2] >= min_height:
            out.append((q, pos, rot))
    return out


def rot_angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ik_reaches_poses_on_generated_arms_within_1cm_by_mujoco_fk(seed):
    emb = bodies.sample("arm", seed=seed)
    ik = ArmIK.for_body(emb)
    assert ik.joint_names == tuple(n for n in emb.joint_names if n != "gripper")
    pos_err, rot_err = [], []
    for _, pos, rot in reachable_targets(ik, 15, seed):
        res = ik.solve(pos, rot)
        assert np.all(res.q >= ik.lower - 1e-12) and np.all(res.q <= ik.upper + 1e-12)
        got_pos, got_rot = mj_pose(ik, res.q)  # MuJoCo, not pinocchio
        pos_err.append(np.linalg.norm(got_pos - pos))
        rot_err.append(rot_angle(got_rot, rot))
    assert max(pos_err) < 0.01, pos_err
    assert np.median(pos_err) < 1e-3
    assert max(rot_err) < 0.05, rot_err


def test_pinocchio_fk_matches_mujoco_on_arm_and_humanoid_arms():
    cases = [(bodies.sample("arm", seed=3), ""), (bodies.sample("humanoid", seed=1), "left")]
    for emb, arm in cases:
        ik = ArmIK.for_body(emb, arm)
        rng = np.random.default_rng(0)
        for _ in range(5):
            q = rng.uniform(ik.lower, ik.upper)
            p_pin, r_pin = ik.fk(q)
            p_mj, r_mj = mj_pose(ik, q)
            np.testing.assert_allclose(p_pin, p_mj, atol=1e-9)
            np.testing.assert_allclose(r_pin, r_mj, atol=1e-9)


@pytest.mark.parametrize("arm", ["left", "right"])
def test_humanoid_arm_position_ik_within_1cm(arm):
    emb = bodies.sample("humanoid", seed=2)
    ik = ArmIK.for_body(emb, arm)
    assert all(n.startswith(arm) for n in ik.joint_names) and len(ik.joint_names) in (3, 4)
    errors = []
    for _, pos, _ in reachable_targets(ik, 10, 5, min_height=0.0):
        res = ik.solve(pos)
        errors.append(np.linalg.norm(mj_pose(ik, res.q)[0] - pos))
    assert max(errors) < 0.01, errors


def test_unreachable_target_stays_in_limits_and_reports_its_error():
    ik = ArmIK.for_body(bodies.sample("arm", seed=0), cfg=IKConfig(restarts=1))
    far = ik.shoulder() + np.array([0.0, 0.0, 3 * ik.reach()])  # straight up
    res = ik.solve(far)
    assert not res.converged
    assert np.all(res.q >= ik.lower) and np.all(res.q <= ik.upper)
    # the arm stretches toward it: the error is the distance beyond the reach (within 5 cm)
    assert abs(res.pos_error - 2 * ik.reach()) < 0.01


def test_null_space_posture_keeps_redundant_arm_near_its_default_pose():
    emb = bodies.sample("arm", seed=0)  # 7 joints: one redundant degree of freedom for 6-D
    with_posture = ArmIK.for_body(emb, cfg=IKConfig(posture_gain=0.2, rot_weight=0.0))
    without = ArmIK.for_body(emb, cfg=IKConfig(posture_gain=0.0, rot_weight=0.0))
    assert len(with_posture.joint_names) == 7
    dist_with, dist_without = [], []
    for _, pos, _ in reachable_targets(with_posture, 8, 11):
        a, b = with_posture.solve(pos), without.solve(pos)
        assert a.pos_error < 1e-3 and b.pos_error < 1e-3
        dist_with.append(np.linalg.norm(a.q - with_posture.posture))
        dist_without.append(np.linalg.norm(b.q - without.posture))
    assert np.mean(dist_with) < 0.8 * np.mean(dist_without), (dist_with, dist_without)


def test_trajectory_retargets_from_one_arm_to_another_and_to_a_humanoid_arm():
    src = ArmIK.for_body(bodies.sample("arm", seed=0))
    # a recorded end-effector path: the source arm sweeps its base yaw +-0.4 rad while
    # straightening its bends by up to 30 %, through its forward kinematics
    s = 2 * np.pi * np.linspace(0, 1, 40)[:, None]
    q_path = src.posture * (1 - 0.15 * (1 - np.cos(s)))
    q_path[:, 0] += 0.4 * np.sin(s[:, 0])
    pos = np.array([src.fk(q)[0] for q in q_path])
    rot = np.array([src.fk(q)[1] for q in q_path])
    assert pos[:, 2].min() > 0.15 and np.ptp(pos, axis=0).min() > 0.05

    dst = ArmIK.for_body(bodies.sample("arm", seed=1))
    mapped = map_workspace(pos, src, dst)
    np.testing.assert_allclose(
        np.linalg.norm(mapped[1:] - mapped[:-1], axis=1),
        np.linalg.norm(pos[1:] - pos[:-1], axis=1) * dst.reach() / src.reach(),
        rtol=1e-9,
    )
    out = retarget_trajectory(dst, mapped)  # positions: the body-agnostic part
    assert out.q.shape == (40, len(dst.joint_names))
    assert out.summary()["pos_error_max_m"] < 0.01, out.summary()
    # warm starts give a smooth path: no joint jumps by more than 0.5 rad between steps
    assert np.abs(np.diff(out.q, axis=0)).max() < 0.5

    # with orientations too, the 6-joint arm cannot follow every pose of the 7-joint arm:
    # the reported errors are what MuJoCo's forward kinematics gives for the solution
    fast = ArmIK.for_body(dst.emb, cfg=IKConfig(restarts=0))
    full = retarget_trajectory(fast, mapped, rot)
    for t in (0, 13, 27, 39):
        got_pos, got_rot = mj_pose(fast, full.q[t])
        assert abs(np.linalg.norm(got_pos - mapped[t]) - full.pos_error[t]) < 1e-6
        assert abs(rot_angle(got_rot, rot[t]) - full.rot_error[t]) < 1e-6

    hum = ArmIK.for_body(bodies.sample("humanoid", seed=0), "right")
    out = retarget_trajectory(hum, map_workspace(pos, src, hum))
    assert out.summary()["pos_error_mean_m"] < 0.01, out.summary()


def test_bad_targets_are_rejected_with_the_value():
    ik = ArmIK.for_body(bodies.sample("arm", seed=0))
    with pytest.raises(ValueError, match="expected 3 finite"):
        ik.solve(np.array([0.1, np.nan, 0.3]))
    with pytest.raises(ValueError, match=r"expected \(T, 3\)"):
        retarget_trajectory(ik, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="'left' and a 'right'"):
        ArmIK.for_body(bodies.sample("humanoid", seed=0), "middle")
