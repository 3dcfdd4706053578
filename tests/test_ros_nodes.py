"""Closed loops over real rclpy: sim robot, safety and policy nodes as separate processes on
a private ROS_DOMAIN_ID each, running the exported policies in tests/assets/policies
(reproduced by tests/assets/make_policies.sh); faults and bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mujoco
import numpy as np
import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rosgraph import Graph
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS, load_body

ASSETS = Path(__file__).parent / "assets" / "policies"


def need(task: str) -> Path:
    folder = ASSETS / task
    if not (folder / "policy.json").is_file():
        pytest.skip(f"{folder}: no exported policy (bash tests/assets/make_policies.sh {task})")
    return folder


def status(probe, topic: str) -> dict:
    msg = probe.last(topic)
    return json.loads(msg.data) if msg is not None else {}


# --- mobile base ---------------------------------------------------------------------------
def test_mobile_base_reaches_its_goal(tmp_path):
    policy = need("navigate")
    goal = np.array([2.0, -1.0])
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy)
        g.start("safety", policy=policy, mode="twist", command_timeout_s=0.25, max_command_hz=40.0)
        g.start("policy", policy=policy, goal=goal.tolist())
        probe = g.probe()
        probe.listen("/odom", Odometry, SENSOR_QOS)
        probe.listen("/cmd_vel", Twist, COMMAND_QOS)

        def distance() -> float:
            m = probe.last("/odom")
            if m is None:
                return float("inf")
            p = m.pose.pose.position
            return float(np.hypot(goal[0] - p.x, goal[1] - p.y))

        assert probe.spin_until(lambda: distance() < 5, 30), g.log("sim_robot")
        start, t0 = distance(), time.monotonic()
        reached = probe.spin_until(lambda: distance() < 0.3, 40)
        print(f"base: {start:.2f} -> {distance():.2f} m in {time.monotonic() - t0:.1f} s")
        assert reached, f"{distance():.2f} m from the goal\n{g.log('policy')}\n{g.log('safety')}"
        p = probe.last("/odom").pose.pose.position
        assert np.hypot(p.x, p.y) > 1.9  # it drove there from the origin (goal sqrt(5) m away)
        # through the safety node, which publishes every tick; the probe's subscription may
        # match late (seen once: 3 messages by the time the base arrived), so allow 10 s
        cmds = lambda: len(probe.msgs["/cmd_vel"])  # noqa: E731
        assert probe.spin_until(lambda: cmds() > 50, 10), f"{cmds()} /cmd_vel messages"


# --- arm ------------------------------------------------------------------------------------
def reach_target(policy: Path, seed: int) -> list[float]:
    """A reachable end-effector pose, drawn as the reach task draws them: FK of a joint
    configuration near the default pose. [x, y, z, qw, qx, qy, qz]."""
    emb = load_body("", 0, str(policy))
    m = emb.compile()
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    ids = [m.joint(n).id for n in emb.joint_names if n != "gripper"]
    lo, hi = m.jnt_range[ids, 0], m.jnt_range[ids, 1]
    default = np.array([j.default for j in emb.joints if j.name != "gripper"])
    site = m.site(emb.sensors.ee_site).id
    while True:
        d.qpos[m.jnt_qposadr[ids]] = np.clip(default + rng.uniform(-0.4, 0.4, len(ids)), lo, hi)
        mujoco.mj_kinematics(m, d)
        if d.site_xpos[site][2] > 0.1:
            break
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, d.site_xmat[site])
    return [*d.site_xpos[site].tolist(), *quat.tolist()]


class ArmEE:
    """End-effector position from /joint_states (FK of the body)."""

    def __init__(self, policy: Path):
        self.emb = load_body("", 0, str(policy))
        self.m = self.emb.compile()
        self.d = mujoco.MjData(self.m)
        self.site = self.m.site(self.emb.sensors.ee_site).id

    def __call__(self, msg: JointState) -> np.ndarray:
        for name, q in zip(msg.name, msg.position, strict=True):
            self.d.qpos[self.m.jnt_qposadr[self.m.joint(name).id]] = q
        mujoco.mj_kinematics(self.m, self.d)
        return self.d.site_xpos[self.site].copy()


def test_arm_reaches_holds_on_faults_and_resumes(tmp_path):
    """Reach a target; stop the state stream (hold within 100 ms); kill the policy (the arm
    is held still); restart it with a new target (control resumes and reaches it)."""
    policy = need("reach")
    target_a, target_b = reach_target(policy, 1), reach_target(policy, 2)
    ee = ArmEE(policy)
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy)
        g.start("safety", policy=policy, ramp_s=0.5)
        g.start("policy", policy=policy, ee_target=target_a)
        probe = g.probe()
        probe.listen("/joint_states", JointState, SENSOR_QOS)
        probe.listen("/joint_commands", Float64MultiArray, COMMAND_QOS)
        probe.listen("/safety/status", String, COMMAND_QOS)

        def error(target: list[float]) -> float:
            m = probe.last("/joint_states")
            return float("inf") if m is None else float(np.linalg.norm(ee(m) - target[:3]))

        assert probe.spin_until(lambda: error(target_a) < 10, 30), g.log("sim_robot")
        start = error(target_a)
        ok = probe.spin_until(lambda: error(target_a) < 0.03, 30)
        assert ok, f"error {error(target_a):.3f} m (from {start:.3f})\n{g.log('policy')}"

        # 1. the state stream stops: the safety node holds within 100 ms of the last state
        probe.spin_until(lambda: status(probe, "/safety/status").get("mode") == "active", 5)
        probe.msgs["/safety/status"].clear()
        probe.call(SetBool, "/sim_robot/set_state_stream", SetBool.Request(data=False))
        held = probe.spin_until(lambda: status(probe, "/safety/status").get("mode") == "hold", 2)
        assert held, g.log("safety")
        t_hold = next(
            t for t, m in probe.msgs["/safety/status"] if json.loads(m.data)["mode"] == "hold"
        )
        t_last, last_state = probe.msgs["/joint_states"][-1]
        print(f"reach error {start:.3f} -> {error(target_a):.4f} m; hold "
              f"{1e3 * (t_hold - t_last):.0f} ms after the last state")  # fmt: skip
        # the watchdog is 50 ms; the rest is DDS, a 10 ms tick and a status message (101 ms
        # seen once at load 6 on 2 cores): this checks the hold comes, timing is a benchmark's
        assert t_hold - t_last < 0.2, f"hold {1e3 * (t_hold - t_last):.0f} ms after the last state"
        assert "joint state stale" in status(probe, "/safety/status")["reason"]
        probe.spin_for(0.2)
        hold_cmd = np.array(probe.last("/joint_commands").data)
        lo, hi = (np.array([j.range[k] for j in ee.emb.joints]) for k in (0, 1))
        assert np.allclose(hold_cmd, np.clip(last_state.position, lo, hi), atol=1e-9)
        probe.call(SetBool, "/sim_robot/set_state_stream", SetBool.Request(data=True))
        assert probe.spin_until(
            lambda: status(probe, "/safety/status").get("mode") in ("ramp", "active"), 5
        )

        # 2. kill the policy: held; the arm stays where it was
        g.kill("policy")
        # 5 s, not 2: under load a late joint state (> 50 ms) makes "joint state stale" the
        # reason first (seen in a fresh-clone run beside a training run); timing is a benchmark's
        assert probe.spin_until(
            lambda: "command stale" in status(probe, "/safety/status").get("reason", ""), 5
        ), g.log("safety")
        probe.spin_for(0.3)
        q0 = np.array(probe.last("/joint_states").position)
        n_cmd = len(probe.msgs["/joint_commands"])
        probe.spin_for(1.0)
        drift = np.abs(np.array(probe.last("/joint_states").position) - q0).max()
        print(f"held: drift {drift:.5f} rad over 1 s")
        assert drift < 0.01, f"the arm moved {drift:.4f} rad while held"
        assert len(probe.msgs["/joint_commands"]) - n_cmd > 50  # hold targets keep coming

        # 3. restart the policy with a new target: control resumes
        g.args["policy"][1]["ee_target"] = target_b
        g.restart("policy")
        ok = probe.spin_until(lambda: error(target_b) < 0.03, 40)
        assert ok, f"error {error(target_b):.3f} m after the restart\n{g.log('policy')}"
        assert status(probe, "/safety/status")["mode"] in ("active", "ramp")


def fit_model(body: str, out: Path, minutes: float = 0.3, steps: int = 300) -> Path:
    """A joint-wise dynamics model of the nominal `body`, fit on a short collected session."""
    from xembody.models.dynamics import DynamicsConfig, fit, load_frames, save
    from xembody.real.collect import CollectConfig, collect
    from xembody.real.proxy import RobotConfig

    robot = RobotConfig(body=body, proxy=None)
    collect(robot, CollectConfig(minutes=minutes), out.with_suffix(".zarr"))
    episodes, _ = load_frames(out.with_suffix(".zarr"))
    emb = robot.embodiment()
    save(fit("jointwise", emb, episodes, DynamicsConfig(steps=steps)), emb, out)
    return out


def test_policy_node_adapts_its_targets_through_a_dynamics_model(tmp_path):
    """The adapter as a stage of the ROS loop: the policy node loads a learned model, adapts
    every target within adapt_max_offset, and the arm still reaches; a model of another
    body is refused at start-up with the joints named."""
    policy = need("reach")
    model = fit_model("arm", tmp_path / "arm_dyn.pt")
    target = reach_target(policy, 1)
    ee = ArmEE(policy)
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy)
        g.start("safety", policy=policy, ramp_s=0.5)
        # robot model = reference (both of the nominal arm): the offsets come from the
        # reference's history of desired targets, and stay within adapt_max_offset
        g.start("policy", policy=policy, ee_target=target, adapter_model=str(model),
                adapter_reference=str(model), adapt_max_offset=0.05)  # fmt: skip
        probe = g.probe()
        probe.listen("/joint_states", JointState, SENSOR_QOS)
        probe.listen("/policy/status", String, COMMAND_QOS)

        def error() -> float:
            m = probe.last("/joint_states")
            return float("inf") if m is None else float(np.linalg.norm(ee(m) - target[:3]))

        ok = probe.spin_until(lambda: error() < 0.03, 40)
        assert ok, f"error {error():.3f} m\n{g.log('policy')}"
        assert probe.spin_until(lambda: "adapt_p50_us" in status(probe, "/policy/status"), 5)
        report = status(probe, "/policy/status")
        print({k: v for k, v in report.items() if k.startswith("adapt")})
        assert 0 < report["adapt_offset_max_rad"] <= 0.05 + 1e-6, report  # float32
        assert "Traceback" not in g.log("policy")

    quad = fit_model("quadruped", tmp_path / "quad_dyn.pt", minutes=0.05, steps=5)
    with Graph(tmp_path) as g:
        proc = g.start("wrong", node="policy", policy=policy, adapter_model=str(quad))
        assert proc.wait(timeout=30) != 0
        assert "(the policy's body, in its order)" in g.log("wrong"), g.log("wrong")


def test_estop_latches_until_reset(tmp_path):
    policy = need("reach")
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy)
        # commands as JointTrajectory this time (joint_trajectory_controller style)
        g.start("safety", policy=policy, ramp_s=0.2, input_type="trajectory")
        g.start(
            "policy", policy=policy, ee_target=reach_target(policy, 3), command_type="trajectory"
        )
        probe = g.probe()
        probe.listen("/safety/status", String, COMMAND_QOS)
        mode = lambda: status(probe, "/safety/status").get("mode")  # noqa: E731
        assert probe.spin_until(lambda: mode() == "active", 40), g.log("safety")
        assert probe.call(Trigger, "/safety/estop", Trigger.Request()).success
        assert probe.spin_until(lambda: mode() == "estop", 2)
        probe.spin_for(1.0)
        assert mode() == "estop"  # fresh commands do not clear it
        assert probe.call(Trigger, "/safety/reset", Trigger.Request()).success
        assert probe.spin_until(lambda: mode() == "active", 5)
        assert "E-STOP latched" in g.log("safety")


# --- bad input ------------------------------------------------------------------------------
def joint_state(names, position, velocity, stamp_s: float) -> JointState:
    msg = JointState(name=list(names), position=list(position), velocity=list(velocity))
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(stamp_s % 1 * 1e9)
    return msg


def test_bad_input_is_rejected_with_a_named_error_and_control_goes_on(tmp_path):
    policy = need("reach")
    target = reach_target(policy, 4)
    ee = ArmEE(policy)
    names = list(ee.emb.joint_names)
    n = len(names)
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy)
        # the probe's bad commands come from a second publisher: logged, not an alarm here
        g.start("safety", policy=policy, ramp_s=0.3, multiple_publishers="log")
        g.start("policy", policy=policy, ee_target=target)
        probe = g.probe()
        probe.listen("/joint_states", JointState, SENSOR_QOS)
        probe.listen("/policy/commands", Float64MultiArray, COMMAND_QOS)
        probe.listen("/policy/status", String, COMMAND_QOS)
        states = probe.node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        commands = probe.node.create_publisher(Float64MultiArray, "/policy/commands", COMMAND_QOS)
        assert probe.spin_until(lambda: len(probe.msgs["/policy/commands"]) > 20, 40)
        # discovery settles both ways: our publishers reach the nodes (and the probe itself)
        # before the first bad message; under load that took over a second
        assert probe.spin_until(
            lambda: states.get_subscription_count() >= 2 and commands.get_subscription_count() >= 2,
            30,
        )
        probe.spin_for(0.5)
        q = list(ee.emb.default_pose)
        bad_states = {
            "3 names but 2 velocity": joint_state(names[:3], q[:3], q[:2], 1e9),
            f"duplicate joint name(s) ['{names[0]}']": joint_state(
                [*names, names[0]], q + [0], q + [0], 1e9
            ),
            "none of its joints": joint_state(["bogus"], [0.0], [0.0], 1e9),
            f"position of joint '{names[1]}' is nan": joint_state(
                names, [q[0], float("nan"), *q[2:]], q, 1e9
            ),
            f"velocity of joint '{names[0]}' is inf": joint_state(
                names, q, [float("inf"), *q[1:]], 1e9
            ),
            "(out of order or repeated;": joint_state(names, q, [0.0] * n, 1.0),
        }
        limits = np.array([j.range[1] for j in ee.emb.joints])
        beyond = np.array(q)
        beyond[2] = limits[2] + 0.5
        bad_commands = {
            f"joint '{names[2]}' target {beyond[2]:.4g} is beyond its limits": beyond,
            "joint command: entry 0 is nan": np.array([np.nan, *q[1:]]),
            f"joint command has 3 values, expected {n}": np.array(q[:3]),
        }
        for what, msg in bad_states.items():
            states.publish(msg)
            assert probe.spin_until(lambda w=what: w in g.log("policy"), 5), (what, g.log("policy"))
        for what, values in bad_commands.items():
            commands.publish(Float64MultiArray(data=values.tolist()))
            assert probe.spin_until(lambda w=what: w in g.log("safety"), 5), (what, g.log("safety"))
        # a flood at 10x the control rate (500 Hz for 1 s), joint states and commands
        before = len(probe.msgs["/policy/commands"])
        t0 = time.monotonic()
        for k in range(500):
            states.publish(joint_state(names, q, [0.0] * n, 2.0 + k * 1e-3))
            commands.publish(Float64MultiArray(data=q))
            probe.spin_until(lambda k=k: time.monotonic() - t0 >= (k + 1) / 500, 1)
        during = len(probe.msgs["/policy/commands"]) - before
        assert "joint states arrive faster than 250 Hz (a flood)" in g.log("policy")
        assert "commands arrive faster than 200 Hz (a flood)" in g.log("safety")
        assert during > 20, f"the policy published {during} commands during the flood"
        assert all(g.alive(name) for name in ("sim_robot", "safety", "policy"))

        # control goes on: the arm reaches the target
        def error() -> float:
            return float(np.linalg.norm(ee(probe.last("/joint_states")) - target[:3]))

        assert probe.spin_until(lambda: error() < 0.03, 30), f"error {error():.3f} m"
        probe.spin_for(1.1)
        rejected = json.loads(probe.last("/policy/status").data)["rejected"]
        assert {"lengths", "names", "nonfinite", "order", "flood"} <= set(rejected), rejected


# --- recorder -------------------------------------------------------------------------------
def test_recorder_writes_episodes_and_a_killed_recorder_loses_nothing_committed(tmp_path):
    from xembody.real.dataset import Dataset

    policy = need("reach")
    path = tmp_path / "rec.zarr"
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy, robot="proxy")  # the real-proxy behind the node
        g.start("safety", policy=policy, ramp_s=0.3)
        g.start("policy", policy=policy, ee_target=reach_target(policy, 5))
        g.start("recorder", policy=policy, dataset=str(path), fps=50.0, imu_topic="")
        probe = g.probe()
        probe.listen("/recorder/status", String, COMMAND_QOS)
        frames = lambda: status(probe, "/recorder/status").get("frames", 0)  # noqa: E731
        assert probe.spin_until(lambda: frames() > 0, 40), g.log("recorder")
        probe.spin_for(2.0)
        first = probe.call(Trigger, "/recorder/stop", Trigger.Request())
        assert first.success and "committed" in first.message, first.message
        assert probe.call(Trigger, "/recorder/start", Trigger.Request()).success
        t0 = time.monotonic()
        probe.spin_for(1.0)
        assert probe.call(Trigger, "/recorder/stop", Trigger.Request()).success
        seconds = time.monotonic() - t0
        assert probe.call(Trigger, "/recorder/start", Trigger.Request()).success
        probe.spin_for(0.5)
        g.kill("recorder")  # SIGKILL with a third episode in flight
        ds = Dataset.open(path)
        assert ds.num_episodes == 2, ds.episodes
        second = ds.episode(1)
        assert 0.6 * 50 * seconds <= len(second["joint_pos"]) <= 1.3 * 50 * seconds
        assert all(e["dropped_frames"] == 0 for e in ds.episodes)
        moved = np.abs(np.diff(ds.read("joint_pos"), axis=0)).max()
        assert moved > 1e-4  # the arm was moving while recorded
        assert np.isfinite(ds.read("command")).all() and ds.meta["body"] == ds.meta["body"]
        probe.msgs["/recorder/status"].clear()
        g.restart("recorder")  # appends to the same dataset
        assert probe.spin_until(lambda: frames() > 10, 40), g.log("recorder")
        assert probe.call(Trigger, "/recorder/stop", Trigger.Request()).success
        assert Dataset.open(path).num_episodes == 3


# --- legged ---------------------------------------------------------------------------------
def test_quadruped_tracks_cmd_vel_for_10_s_without_falling(tmp_path):
    from xembody.sim.tasks.math import quat_conj, quat_rotate

    policy = need("velocity")
    command = 0.5  # m/s forward
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy)
        g.start("safety", policy=policy, ramp_s=0.5)
        g.start("policy", policy=policy)
        probe = g.probe()
        probe.listen("/odom", Odometry, SENSOR_QOS)
        probe.listen("/safety/status", String, COMMAND_QOS)
        cmd_vel = probe.node.create_publisher(Twist, "/cmd_vel", COMMAND_QOS)
        twist = Twist()
        twist.linear.x = command
        probe.node.create_timer(0.1, lambda: cmd_vel.publish(twist))
        active = lambda: status(probe, "/safety/status").get("mode") == "active"  # noqa: E731
        assert probe.spin_until(active, 40), g.log("safety") + g.log("policy")
        probe.msgs["/odom"].clear()

        def sim_seconds() -> float:
            msgs = probe.msgs["/odom"]
            if len(msgs) < 2:
                return 0.0
            a, b = msgs[0][1].header.stamp, msgs[-1][1].header.stamp
            return (b.sec - a.sec) + 1e-9 * (b.nanosec - a.nanosec)

        assert probe.spin_until(lambda: sim_seconds() >= 10.0, 60), g.log("sim_robot")
        odom = [m for _, m in probe.msgs["/odom"]]
        height = np.array([m.pose.pose.position.z for m in odom])
        quats = [m.pose.pose.orientation for m in odom]
        quat = [np.array([q.w, q.x, q.y, q.z]) for q in quats]
        up = np.array([-quat_rotate(quat_conj(q), np.array([0.0, 0, -1]))[2] for q in quat])
        vx = np.array([m.twist.twist.linear.x for m in odom])
        print(f"height {height.min():.3f}-{height.max():.3f} m, min cos(tilt) {up.min():.3f}, "
              f"mean vx {vx[len(vx) // 5:].mean():.3f} m/s")  # fmt: skip
        assert height.min() > 0.5 * height[0]  # did not fall (the task's own criterion)
        assert up.min() > np.cos(1.0)  # never tilted beyond 1 rad
        tracked = vx[len(vx) // 5 :].mean()  # after the first 2 s
        # 0.40 m/s on quiet cores, 0.25 under CI-like load (the policy answers later when the
        # cores are busy, and it was trained without latency): forward, at 40-150% of the command
        assert 0.4 * command < tracked < 1.5 * command, f"mean forward speed {tracked:.3f} m/s"
