"""The exported contract is enough without xembody: tests/foreign_runtime.py (onnxruntime,
numpy, json, mujoco only) rebuilds each observation from raw readings with policy.json and
the bundled body model, and its observations and actions match the robot side
(`PolicyController`) over a sequence of random states, for reach, velocity and navigate.

The policies are tiny fresh exports (one PPO iteration): the contract, not skill, is tested.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xembody.models.export import export_policy
from xembody.models.training import TrainConfig, train
from xembody.real.controller import PolicyController
from xembody.real.observation import Command
from xembody.real.robot import RobotState

FOREIGN = Path(__file__).parent / "foreign_runtime.py"
CASES = {  # task -> (body, body seed, task overrides)
    "reach": ("arm", 0, {"jacobian_obs": True, "ik_obs": True, "gravity_obs": True}),
    "velocity": ("quadruped", 0, {"observe_lin_vel": True}),
    "navigate": ("wheeled", 1, {}),
}
STEPS = 6


@pytest.fixture(scope="module", params=sorted(CASES))
def exported(request, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    task = request.param
    body, seed, overrides = CASES[task]
    root = tmp_path_factory.mktemp(f"runs-{task}")
    cfg = TrainConfig(task=task, body=body, body_seed=seed, num_envs=8, iterations=1,
                      steps_per_env=8, threads=1, log_root=str(root), run_name="tiny")  # fmt: skip
    out = tmp_path_factory.mktemp(f"export-{task}")
    export_policy(train(cfg, overrides), out)
    return task, out


def random_unit_quat(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def random_readings(controller: PolicyController, rng: np.random.Generator) -> dict:
    """Raw readings as a driver reports them: joints by name in a shuffled order, with a
    joint the body does not have; IMU, odometry and the operator's command."""
    emb = controller.emb
    lo = np.maximum([j.range[0] for j in emb.joints], -np.pi)  # wheels: unlimited
    hi = np.minimum([j.range[1] for j in emb.joints], np.pi)
    names = [*emb.joint_names, "foreign_extra_joint"]
    q = [*rng.uniform(lo, hi).tolist(), 0.3]
    dq = rng.uniform(-2, 2, len(names)).tolist()
    order = rng.permutation(len(names))
    r = {
        "joint_names": [names[i] for i in order],
        "position": [q[i] for i in order],
        "velocity": [dq[i] for i in order],
        "imu_quat": random_unit_quat(rng).tolist(),
        "imu_gyro": rng.normal(size=3).tolist(),
        "odom_pos": rng.uniform(-3, 3, 3).tolist(),
        "odom_quat": random_unit_quat(rng).tolist(),
        "odom_lin_vel": rng.normal(size=3).tolist(),
        "odom_ang_vel": rng.normal(size=3).tolist(),
        "twist": rng.uniform(-1, 1, 3).tolist(),
        "goal": rng.uniform(-4, 4, 2).tolist(),
        "target_pos": rng.uniform(-0.5, 0.5, 3).tolist(),
        "target_quat": random_unit_quat(rng).tolist(),
    }
    rays = int(controller.policy.contract["task_cfg"].get("num_rays", 0))
    if rays:
        ranges = rng.uniform(0.1, 6.0, rays)
        ranges[::5], ranges[1::7] = np.inf, -1.0  # no hit; an invalid reading
        r["ranges"] = [float(x) if np.isfinite(x) else "Infinity" for x in ranges]
    return r


def robot_side(controller: PolicyController, r: dict) -> tuple[np.ndarray, np.ndarray]:
    """The xembody robot side for the same readings: state by name, then one step."""
    emb = controller.emb
    index = {n: i for i, n in enumerate(r["joint_names"])}
    pick = lambda key: np.array([r[key][index[n]] for n in emb.joint_names])  # noqa: E731
    arr = lambda key: np.asarray(r[key], dtype=float)  # noqa: E731
    state = RobotState(0.0, emb.joint_names, pick("position"), pick("velocity"),
                       np.zeros(emb.num_actions), imu_quat=arr("imu_quat"),
                       imu_gyro=arr("imu_gyro"), base_pos=arr("odom_pos"),
                       base_quat=arr("odom_quat"), base_lin_vel=arr("odom_lin_vel"),
                       base_ang_vel=arr("odom_ang_vel"))  # fmt: skip
    cmd = Command(twist=tuple(r["twist"]), goal=arr("goal"), target_pos=arr("target_pos"),
                  target_quat=arr("target_quat"))  # fmt: skip
    if "ranges" in r:
        cmd.ranges = np.array([float(x) for x in r["ranges"]])
    controller.step(state, cmd)
    return controller.obs, controller.action


def assert_foreign_runtime_matches(folder: Path, tmp_path: Path) -> dict:
    contract = json.loads((folder / "policy.json").read_text())
    assert contract["format"] == "xembody-policy/2"
    controller = PolicyController.load(folder)
    rng = np.random.default_rng(7)
    steps = [random_readings(controller, rng) for _ in range(STEPS)]
    want = [robot_side(controller, r) for r in steps]
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    out = subprocess.run([sys.executable, str(FOREIGN), str(folder), str(tmp_path / "steps.json")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["xembody_modules"] == []  # nothing of xembody was imported
    for k, (obs, action) in enumerate(want):
        np.testing.assert_allclose(got["obs"][k], obs, atol=1e-5, rtol=0, err_msg=f"step {k}")
        np.testing.assert_allclose(got["actions"][k], action, atol=1e-5, rtol=0)
    if contract["task"] == "velocity":  # the clock moved: the contract's origin and rate
        clock = next(t for t in contract["observation"]["terms"] if t["name"] == "gait_clock")
        phases = [np.arctan2(*o[clock["start"] : clock["start"] + 2]) for o, _ in want]
        assert len({round(p, 6) for p in phases}) == STEPS
    return contract


def test_foreign_runtime_matches_the_robot_side(exported, tmp_path):
    task, folder = exported
    assert assert_foreign_runtime_matches(folder, tmp_path)["task"] == task


@pytest.mark.parametrize("name", ["reach", "velocity", "navigate"])
def test_foreign_runtime_runs_the_trained_test_policies(name, tmp_path):
    """The same for the trained policies the ROS tests run (upgraded to format 2)."""
    folder = Path(__file__).parent / "assets" / "policies" / name
    if not (folder / "policy.json").is_file():
        pytest.skip(f"{folder}: no exported policy (bash tests/assets/make_policies.sh)")
    assert assert_foreign_runtime_matches(folder, tmp_path)["task"] == name
