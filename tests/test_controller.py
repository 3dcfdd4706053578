"""`PolicyController`, the one robot-side loop: observation -> policy -> action map -> clip ->
adaptation, with the last action fed back and the gait clock advanced per step.

A scripted network (an `ExportedPolicy` around a function) makes every stage checkable by
hand; the exported test policies check `load` (format /1 folders: tests/test_export.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xembody.models.export import policy_contract
from xembody.models.exported import ExportedPolicy
from xembody.real.controller import PolicyController
from xembody.real.observation import Command, twist_limits
from xembody.real.robot import RobotState, target_limits
from xembody.sim import bodies, tasks
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg

ASSETS = Path(__file__).parent / "assets" / "policies"


def scripted(task: str, body: str, seed: int, outputs: list[np.ndarray]):
    """(policy whose network returns `outputs` in turn and records its inputs, emb)."""
    emb = bodies.sample(body, seed=seed)
    cfg = tasks.make_config(task, randomization=RandomizationCfg.off())
    env = BodyEnv(tasks.make_task(task, emb, cfg), 1, num_threads=1)
    contract = policy_contract(env)
    env.close()
    seen: list[np.ndarray] = []

    def run(x: np.ndarray) -> np.ndarray:
        seen.append(x[0].copy())
        return np.asarray(outputs[min(len(seen), len(outputs)) - 1], dtype=np.float32)[None]

    policy = ExportedPolicy(contract, run, backend="scripted")
    policy.seen = seen
    return policy, emb


def arm_state(emb, q=None) -> RobotState:
    q = emb.default_pose.copy() if q is None else q
    return RobotState(0.0, emb.joint_names, q, np.zeros(len(q)), np.zeros(len(q)))


def reach_command() -> Command:
    return Command(target_pos=np.array([0.3, 0.0, 0.4]), target_quat=np.array([1.0, 0, 0, 0]))


def test_step_maps_clips_and_feeds_the_action_back():
    a1 = np.array([0.2, -0.4, 0, 10.0, 0, 0, -0.1], np.float32)  # joint4's beyond action_clip
    a2 = np.full(7, 0.05)
    policy, emb = scripted("reach", "arm", 0, [a1, a2])
    c = PolicyController(policy, emb)
    contract = policy.contract
    scale, clip = contract["action"]["action_scale"], contract["action"]["action_clip"]
    lo, hi = target_limits(emb)
    out = c.step(arm_state(emb), reach_command())
    want = emb.default_pose.copy()
    idx = [emb.joint_names.index(n) for n in contract["joint_names"]]
    want[idx] = np.asarray(contract["default_pose"]) + scale * np.clip(a1, -clip, clip)
    np.testing.assert_allclose(out, np.clip(want, lo, hi))
    assert out[3] == hi[3] < want[3]  # 1.105 + 0.5 x 3 rad is beyond joint4: at its limit
    assert out[emb.joint_names.index("gripper")] == emb.default_pose[-1]  # not driven
    np.testing.assert_array_equal(c.last_action, np.clip(a1, -clip, clip))  # as the env
    assert c.last_action[3] == clip < a1[3]  # fed it in training: clipped, not scaled
    c.step(arm_state(emb), reach_command())
    last = next(t for t in contract["observation"]["terms"] if t["name"] == "last_action")
    fed = policy.seen[1][last["start"] : last["start"] + last["size"]]
    np.testing.assert_allclose(fed, np.clip(a1, -clip, clip), rtol=1e-6)  # fed back clipped
    np.testing.assert_allclose(policy.seen[0][last["start"] :][: last["size"]], 0.0)


def test_missing_input_changes_nothing_and_reset_starts_over():
    policy, emb = scripted("velocity", "quadruped", 0, [np.full(12, 0.3)])
    c = PolicyController(policy, emb)
    state = arm_state(emb)  # no IMU reading yet
    with pytest.raises(ValueError, match="IMU"):
        c.step(state, Command())
    assert c.phase == 0.0 and not c.last_action.any() and c.out is None
    state.imu_quat, state.imu_gyro = np.array([1.0, 0, 0, 0]), np.zeros(3)
    for _ in range(5):
        c.step(state, Command(twist=(0.5, 0.0, 0.0)))
    period = policy.contract["task_cfg"]["gait_period"]
    assert c.phase == pytest.approx(5 * c.period / period)
    assert c.stage_ns.keys() == {"observation", "inference", "action"}
    c.reset(phase=0.25)
    assert c.phase == 0.25 and not c.last_action.any()


def test_body_twist_is_clipped_to_what_the_wheels_allow():
    policy, emb = scripted("navigate", "wheeled", 1, [np.array([3.0, -3.0])])
    c = PolicyController(policy, emb)
    assert c.twist_output
    q = emb.default_pose.copy()
    state = RobotState(0.0, emb.joint_names, q, np.zeros(len(q)), np.zeros(len(q)),
                       base_pos=np.zeros(3), base_quat=np.array([1.0, 0, 0, 0]),
                       base_lin_vel=np.zeros(3), base_ang_vel=np.zeros(3))  # fmt: skip
    rays = policy.contract["task_cfg"]["num_rays"]
    out = c.step(state, Command(goal=(2.0, 1.0), ranges=np.full(rays, np.inf)))
    top = twist_limits(emb)
    assert out.shape == (3,) and np.all(np.abs(out) <= top + 1e-12)
    assert out[0] == pytest.approx(min(3.0 * policy.contract["action"]["action_scale"], top[0]))
    with pytest.raises(ValueError, match="twist policy has no joint targets"):
        PolicyController(policy, emb, adapter=lambda q, dq, a: a)


def test_adapter_gets_the_clipped_targets_and_its_command_goes_out():
    policy, emb = scripted("reach", "arm", 0, [np.full(7, 0.1)])
    calls = []

    class Adapter:
        def set_limits(self, lo, hi):
            self.limits = (lo, hi)

        def __call__(self, q, dq, desired):
            calls.append((q.copy(), desired.copy()))
            return desired + 0.01

    adapter = Adapter()
    c = PolicyController(policy, emb, adapter)
    np.testing.assert_array_equal(adapter.limits[0], target_limits(emb)[0])
    state = arm_state(emb, emb.default_pose + 0.02)
    out = c.step(state, reach_command())
    np.testing.assert_allclose(out, c.desired + 0.01)
    np.testing.assert_array_equal(calls[0][0], state.q)
    np.testing.assert_array_equal(calls[0][1], c.desired)
    assert "adapt" in c.stage_ns


@pytest.mark.parametrize("name", ["reach", "velocity", "navigate"])
def test_load_runs_the_test_policies_and_equals_the_parts(name):
    """An export folder loads with its bundled body; the controller's output is the
    network's action through the map and clip, exactly."""
    folder = ASSETS / name
    if not (folder / "policy.json").is_file():
        pytest.skip(f"{folder}: no exported policy")
    c = PolicyController.load(folder)
    emb = c.emb
    q = emb.default_pose.copy()
    state = RobotState(0.0, emb.joint_names, q, np.zeros(len(q)), np.zeros(len(q)),
                       imu_quat=np.array([1.0, 0, 0, 0]), imu_gyro=np.zeros(3),
                       base_pos=np.zeros(3), base_quat=np.array([1.0, 0, 0, 0]),
                       base_lin_vel=np.zeros(3), base_ang_vel=np.zeros(3))  # fmt: skip
    cmd = reach_command()
    cmd.goal, cmd.twist = (1.0, 0.0), (0.3, 0.0, 0.0)
    cmd.ranges = np.full(int(c.policy.contract["task_cfg"].get("num_rays", 0)), 2.0)
    obs = c.observe(state, cmd)  # no side effects: the step sees the same clock
    out = c.step(state, cmd)
    action = c.policy(obs)
    np.testing.assert_array_equal(c.obs, obs)
    np.testing.assert_array_equal(c.action, action)
    if c.twist_output:
        want = np.clip(c.actions.twist(action), c.lo, c.hi)
    else:
        want = np.clip(c.actions.targets(action), c.lo, c.hi)
    np.testing.assert_array_equal(out, want)


def test_predict_feeds_the_observation_predicted_readings():
    """A Smith predictor: the observation sees the adapter's predicted joints, the adapter
    itself the measured ones."""
    policy, emb = scripted("reach", "arm", 0, [np.zeros(7)])
    seen = []

    class Predictor:
        def __call__(self, q, dq, desired):
            seen.append(q.copy())
            return desired

        def predict(self, q, dq):
            return q + 0.1, dq

    c = PolicyController(policy, emb, Predictor(), predict=True)
    state = arm_state(emb)
    c.step(state, reach_command())
    joint_pos = next(t for t in policy.contract["observation"]["terms"] if t["name"] == "joint_pos")
    got = policy.seen[0][joint_pos["start"] : joint_pos["start"] + joint_pos["size"]]
    np.testing.assert_allclose(got, 0.1, rtol=1e-6)  # predicted: default + 0.1
    np.testing.assert_array_equal(seen[0], state.q)  # measured
    with pytest.raises(ValueError, match="predict"):
        PolicyController(policy, emb, lambda q, dq, a: a, predict=True)


def test_controller_loads_without_ros():
    """The controller is ROS-free: it loads an export folder with rclpy unavailable."""
    import subprocess
    import sys

    folder = ASSETS / "reach"
    if not (folder / "policy.json").is_file():
        pytest.skip(f"{folder}: no exported policy")
    code = (
        "import sys; sys.modules['rclpy'] = None\n"
        "from xembody.real.controller import PolicyController\n"
        f"c = PolicyController.load({str(folder)!r})\n"
        "print(c.emb.name, any(m.startswith('rclpy') for m in sys.modules if sys.modules[m]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "arm_s0 False"


def test_robot_side_sees_what_the_env_showed_the_policy_in_training():
    """Readings -> `PolicyController` builds, step by step, the observation the env builds
    for the same state, also when the network's output goes beyond action_clip: the env
    feeds the clipped action back, and a controller that fed back the raw one took a
    vendor humanoid file's policy from 12 % falls in the sim to 81 % on the robot side."""
    import torch

    from xembody.real.gap import _restart, robot_reading, robot_side, task_command
    from xembody.real.proxy import RobotConfig

    emb = bodies.sample("quadruped", seed=0)
    cfg = tasks.nominal(tasks.make_config("velocity", "quadruped"))
    env = BodyEnv(tasks.make_task("velocity", emb, cfg), 1, num_threads=1)
    contract = policy_contract(env)
    env.close()
    clip = contract["action"]["action_clip"]
    w = np.random.default_rng(0).normal(size=(contract["obs_dim"], contract["num_actions"]))
    net = lambda x: (2 * clip * np.tanh(x @ w)).astype(np.float32)  # noqa: E731
    policy = ExportedPolicy(contract, net, backend="scripted")
    robot = RobotConfig(body="quadruped", body_seed=0, proxy=None)
    env, controllers = robot_side(policy, "velocity", cfg, emb, robot, num_envs=2)
    obs = env.reset()["policy"].numpy()
    _restart(controllers, env.task, range(2))
    beyond = 0
    for _ in range(25):
        env.sim.desired = np.stack(
            [c.step(robot_reading(env.sim, i), task_command(env.task, i))
             for i, c in enumerate(controllers)]
        )  # fmt: skip
        np.testing.assert_allclose(np.stack([c.obs for c in controllers]), obs, atol=1e-4)
        actions = np.stack([c.action for c in controllers])
        beyond += int((np.abs(actions) > clip).sum())
        out, _, _, extras = env.step(torch.from_numpy(actions))
        obs = out["policy"].numpy()
        if "env_ids" in extras.get("finished", {}):
            _restart(controllers, env.task, extras["finished"]["env_ids"].tolist())
    assert beyond > 100  # the case that differed: outputs beyond the clip, fed back
