"""Procedural arm and wheeled bodies: contract, determinism and basic physics."""

from __future__ import annotations

import math
from functools import cache

import mujoco
import numpy as np
import pytest

from xembody.sim.bodies.arm import ArmRanges, sample_arm
from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.bodies.wheeled import WheeledRanges, sample_wheeled

SEEDS = range(20)
GENERATORS = {"arm": (sample_arm, ArmRanges), "wheeled": (sample_wheeled, WheeledRanges)}


@cache
def body(kind: str, seed: int) -> Embodiment:
    fn, ranges = GENERATORS[kind]
    return fn(seed, ranges())


@cache
def model(kind: str, seed: int) -> mujoco.MjModel:
    return body(kind, seed).compile()


def home_data(kind: str, seed: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
    m = model(kind, seed)
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    mujoco.mj_forward(m, d)
    return m, d


def assert_healthy(d: mujoco.MjData) -> None:
    assert sum(w.number for w in d.warning) == 0, [w.number for w in d.warning]
    assert np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all()


def yaw_of(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def seeds_of(omni: int) -> list[int]:
    return [s for s in SEEDS if body("wheeled", s).params["omni"] == omni]


# --- contract -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", GENERATORS)
def test_settles_without_warnings(kind: str) -> None:
    for seed in SEEDS:
        m, d = home_data(kind, seed)
        d.ctrl[:] = body(kind, seed).default_pose
        mujoco.mj_step(m, d, 100)
        assert_healthy(d)


# --- arm ------------------------------------------------------------------------------------
def test_arm_structure() -> None:
    for seed in SEEDS:
        emb = body("arm", seed)
        n = emb.params["n_joints"]
        assert 5 <= n <= 7 and len(emb.joints) == n + 1
        assert all(j.kind == "hinge" for j in emb.joints[:n])
        assert emb.joints[-1].name == "gripper" and emb.joints[-1].kind == "slide"
        assert not emb.floating_base and emb.action.kind == "joint_position"
        m = model("arm", seed)
        assert m.site("ee").id >= 0 and m.camera("scene_cam").id >= 0
        assert m.jnt_type[m.joint("joint1").id] == mujoco.mjtJoint.mjJNT_HINGE
        assert mujoco.mjtJoint.mjJNT_FREE not in set(m.jnt_type)
        assert m.neq == 1
    assert len({body("arm", s).params["n_joints"] for s in SEEDS}) == 3


def test_arm_holds_default_pose_under_gravity() -> None:
    for seed in SEEDS:
        emb = body("arm", seed)
        m, d = home_data("arm", seed)
        n = emb.params["n_joints"]
        d.ctrl[:] = emb.default_pose
        mujoco.mj_step(m, d, round(1.0 / m.opt.timestep))
        assert_healthy(d)
        err = np.abs(d.qpos[:n] - emb.default_pose[:n])
        assert err.max() < 0.05, (seed, err)
        assert np.abs(d.qvel[:n]).max() < 0.05
        assert d.site("ee").xpos[2] > 0.05  # clear of the floor


def test_gripper_drives_both_fingers() -> None:
    emb = body("arm", 0)
    m, d = home_data("arm", 0)
    d.ctrl[:] = emb.default_pose
    d.ctrl[-1] = 0.5 * emb.params["gripper_stroke"]
    mujoco.mj_step(m, d, 500)
    left, right = d.joint("gripper").qpos[0], d.joint("gripper_r").qpos[0]
    assert left == pytest.approx(d.ctrl[-1], abs=2e-3)
    assert right == pytest.approx(left, abs=1e-3)


# --- wheeled --------------------------------------------------------------------------------
def test_both_variants_appear() -> None:
    assert seeds_of(0) and seeds_of(1)
    for seed in SEEDS:
        emb = body("wheeled", seed)
        assert emb.action.kind == "joint_velocity"
        assert emb.floating_base == (emb.params["omni"] == 0)
        assert emb.sensors.imu_site == "imu" and emb.sensors.camera == "front_cam"
        m = model("wheeled", seed)
        for s in ("imu_gyro", "imu_acc", "imu_quat"):
            assert m.sensor(s).id >= 0


def test_wheels_touch_floor_at_home() -> None:
    for seed in SEEDS:
        emb = body("wheeled", seed)
        m, d = home_data("wheeled", seed)
        radius = emb.params["wheel_radius"]
        wheels = [i for i in range(m.ngeom) if "wheel" in m.geom(i).name]
        assert wheels
        for g in wheels:
            assert d.geom_xpos[g][2] - radius == pytest.approx(0.0, abs=1e-6)


def _drive(seed: int, ctrl: np.ndarray, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    m, d = home_data("wheeled", seed)
    mujoco.mj_step(m, d, 40)  # settle onto the contacts
    start = d.qpos.copy()
    d.ctrl[:] = ctrl
    mujoco.mj_step(m, d, round(seconds / m.opt.timestep))
    assert_healthy(d)
    return start, d.qpos.copy()


def test_diff_drive_straight_and_turn_in_place() -> None:
    for seed in seeds_of(0):
        emb = body("wheeled", seed)
        assert emb.joint_names == ("left_wheel", "right_wheel")
        speed = 0.8 / emb.params["wheel_radius"]  # 0.8 m/s
        start, end = _drive(seed, np.array([speed, speed]))
        dx, dy = end[:2] - start[:2]
        assert dx > 0.4 and abs(dy) < 0.01 * dx, (seed, dx, dy)
        assert abs(yaw_of(end[3:7])) < 0.01
        start, end = _drive(seed, np.array([speed, -speed]))
        assert abs(yaw_of(end[3:7])) > 0.5, seed
        assert np.linalg.norm(end[:2] - start[:2]) < 0.02
        assert end[2] == pytest.approx(start[2], abs=5e-3)  # stays on the floor


def test_omni_moves_sideways_in_world_frame() -> None:
    for seed in seeds_of(1):
        emb = body("wheeled", seed)
        assert emb.joint_names == ("base_x", "base_y", "base_yaw")
        start, end = _drive(seed, np.array([0.0, 0.5, 0.0]))
        assert end[1] - start[1] > 0.3 and abs(end[0] - start[0]) < 0.01
        # World frame: with the base turned 90 degrees, base_y still moves along world y.
        m, d = home_data("wheeled", seed)
        d.qpos[2] = math.pi / 2
        mujoco.mj_forward(m, d)
        d.ctrl[:] = [0.0, 0.5, 0.0]
        mujoco.mj_step(m, d, 200)
        assert d.body("base").xpos[1] > 0.3 and abs(d.body("base").xpos[0]) < 0.01
        start, end = _drive(seed, np.array([0.0, 0.0, 1.0]))
        assert end[2] - start[2] > 0.5 and np.abs(end[:2] - start[:2]).max() < 0.01
