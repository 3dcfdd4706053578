"""The safety node against real drivers' conventions and real faults, over real rclpy: the
test process plays the driver (publishing /joint_states as ros2_control's
joint_state_broadcaster does) and the policy, and checks every command the robot would get.
Each fault: the bad input, the named log line, the commands staying within the joint limits
and the rate bound, then recovery."""

from __future__ import annotations

import json
import time

import numpy as np
from rosgraph import Graph
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS
from xembody.real.safety import JointLimits
from xembody.sim import bodies

ARM = bodies.sample("arm", seed=0)
LIM = JointLimits.from_embodiment(ARM)
NAMES = list(ARM.joint_names)
N = len(NAMES)
MID = (LIM.low + LIM.high) / 2
RATE_HZ = 100.0


class Driver:
    """The robot side as the test plays it: joint states (optionally as joint_state_broadcaster
    publishes them: one message per controller, NaN effort, an extra joint, no velocity) and
    policy commands, each at its own rate, while the probe spins."""

    def __init__(self, probe, broadcaster: bool = False):
        self.probe = probe
        node = probe.node
        self.pub_js = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        self.pub_cmd = node.create_publisher(Float64MultiArray, "/policy/commands", COMMAND_QOS)
        self.broadcaster = broadcaster
        self.q = MID.copy()
        self.cmd: np.ndarray | None = MID.copy()
        self.stamp_offset = 0.0  # s added to the node clock's stamps (a skewed clock)
        self.t_state = self.t_cmd = 0.0

    def stamp(self, extra: float = 0.0):
        ns = self.probe.node.get_clock().now().nanoseconds + int((self.stamp_offset + extra) * 1e9)
        msg = JointState()
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 10**9, ns % 10**9
        return msg

    def send_state(self, q: np.ndarray | None = None, ahead: float = 0.0) -> None:
        q = self.q if q is None else q
        if not self.broadcaster:
            msg = self.stamp(ahead)
            msg.name, msg.position, msg.velocity = NAMES, q.tolist(), [0.0] * N
            self.pub_js.publish(msg)
            return
        arm = self.stamp(ahead)  # the arm controller's joints + a passive joint we do not drive
        arm.name = [*NAMES[:-1][::-1], "camera_pan"]
        arm.position = [*q[:-1][::-1].tolist(), 0.3]
        arm.effort = [float("nan")] * N  # the broadcaster's fill for a missing interface
        grip = self.stamp(ahead)  # the gripper controller: its own message
        grip.name, grip.position, grip.effort = [NAMES[-1]], [float(q[-1])], [float("nan")]
        self.pub_js.publish(arm)
        self.pub_js.publish(grip)

    def run(self, seconds: float, state_hz: float = 100.0, cmd_hz: float = 50.0) -> None:
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            if now - self.t_state >= 1.0 / state_hz:
                self.send_state()
                self.t_state = now
            if self.cmd is not None and now - self.t_cmd >= 1.0 / cmd_hz:
                self.pub_cmd.publish(Float64MultiArray(data=self.cmd.tolist()))
                self.t_cmd = now
            self.probe.executor.spin_once(timeout_sec=0.002)


def start(g: Graph, **params):
    """The safety node, its commands out as stamped one-point trajectories (the stamp is the
    node's clock at the output, so the rate bound is checked against the node's own dt)."""
    g.start("safety", body="arm", ramp_s=0.2, rate_hz=RATE_HZ, output_type="trajectory", **params)
    probe = g.probe()
    probe.listen("/joint_commands", JointTrajectory, COMMAND_QOS)
    probe.listen("/safety/status", String, COMMAND_QOS)
    return probe


def mode(probe) -> dict:
    m = probe.last("/safety/status")
    return json.loads(m.data) if m is not None else {}


def received(probe, since: float = 0.0) -> list[JointTrajectory]:
    return [m for t, m in probe.msgs["/joint_commands"] if t >= since]


def commands(probe, since: float = 0.0) -> np.ndarray:
    return np.array([m.points[0].positions for m in received(probe, since)])


def assert_bounded(msgs: list[JointTrajectory]) -> None:
    """Within the joint limits, and each step within velocity limit x dt of the previous
    command, dt from the node's stamps (capped at the filter's 0.1 s; 3 ms of slack for the
    ROS clock read beside the filter's monotonic one on a busy machine)."""
    assert len(msgs) > 10
    cmds = np.array([m.points[0].positions for m in msgs])
    t = np.array([m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in msgs])
    assert (cmds >= LIM.low - 1e-9).all() and (cmds <= LIM.high + 1e-9).all()
    dt = np.minimum(np.diff(t), 0.1)[:, None] + 3e-3
    excess = np.abs(np.diff(cmds, axis=0)) - LIM.velocity * dt
    assert (excess <= 1e-9).all(), excess.max(axis=0)


def wait_active(probe, drv: Driver, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and mode(probe).get("mode") != "active":
        drv.run(0.1)
    assert mode(probe).get("mode") == "active", mode(probe)


def test_a_spiked_reading_cannot_move_the_command(tmp_path):
    with Graph(tmp_path) as g:
        probe = start(g)
        drv = Driver(probe)
        drv.cmd = np.clip(MID + 0.02, LIM.low, LIM.high)
        wait_active(probe, drv)
        t0 = time.monotonic()
        for k, spike in enumerate((0.51, 0.97, 3.3)):
            bad = MID.copy()
            bad[2] += spike
            for _ in range(5):  # best-effort QoS may drop one on a busy machine: send again
                drv.send_state(bad)
                drv.run(0.6)
                if mode(probe).get("implausible", 0) > k:
                    break
        cmds = commands(probe, t0)
        assert_bounded(received(probe, t0))
        # between the measured pose and the command (a hold, then a soft start): the spikes
        # (up to 3.3 rad) moved nothing
        assert np.abs(cmds - MID).max() <= 0.02 + 1e-9, np.abs(cmds - MID).max(axis=0)
        assert np.allclose(cmds[-1], drv.cmd, atol=1e-9)
        assert "implausible joint state: 'joint3' jumped" in g.log("safety")
        assert mode(probe)["mode"] == "active" and mode(probe)["implausible"] == 3


def test_estop_before_the_first_state_holds_the_first_measured_pose(tmp_path):
    with Graph(tmp_path) as g:
        probe = start(g)
        assert probe.call(Trigger, "/safety/estop", Trigger.Request()).success
        drv = Driver(probe)
        drv.q = np.clip(MID + 0.4, LIM.low, LIM.high)  # where the arm stands
        drv.cmd = np.clip(np.zeros(N), LIM.low, LIM.high)
        drv.run(1.5)
        cmds = commands(probe)
        assert len(cmds) > 50 and np.allclose(cmds, drv.q, atol=1e-9), np.abs(cmds - drv.q).max()
        assert mode(probe)["mode"] == "estop"


def test_stamps_ahead_are_refused_and_a_clock_stepping_back_is_re_synced(tmp_path):
    with Graph(tmp_path) as g:
        probe = start(g)
        drv = Driver(probe)
        wait_active(probe, drv)
        for ahead in (10.0, 86400.0):  # 10 s, a day
            drv.send_state(ahead=ahead)
            drv.run(0.5)
            assert mode(probe)["mode"] == "active"
        assert "ahead of this node's clock" in g.log("safety")
        t0 = time.monotonic()
        drv.stamp_offset = -30.0  # the robot's clock steps back 30 s
        drv.cmd = np.clip(MID + 0.05, LIM.low, LIM.high)
        drv.run(1.5)
        assert "clock stepped back" in g.log("safety")
        assert mode(probe)["mode"] == "active" and mode(probe)["clock_resyncs"] == 1
        cmds = commands(probe, t0)
        assert_bounded(received(probe, t0))
        assert np.allclose(cmds[-1], drv.cmd, atol=1e-6)  # control went on with the new clock


def test_the_estop_latch_survives_a_restart(tmp_path):
    with Graph(tmp_path) as g:
        probe = start(g)
        drv = Driver(probe)
        wait_active(probe, drv)
        assert probe.call(Trigger, "/safety/estop", Trigger.Request()).success
        g.kill("safety")
        drv.run(0.2)  # take in what the killed node sent before it died: not the restarted one's
        restarted = time.monotonic()
        g.restart("safety")
        drv.q = np.clip(MID + 0.1, LIM.low, LIM.high)
        drv.cmd = np.clip(MID - 0.2, LIM.low, LIM.high)
        while time.monotonic() - restarted < 20 and not commands(probe, restarted).size:
            drv.run(0.1)  # the restarted node's start-up (seconds on a busy machine)
        drv.run(1.0)
        cmds = commands(probe, restarted)
        assert len(cmds) > 50 and np.allclose(cmds, drv.q, atol=1e-9)  # held, never commanded
        assert mode(probe)["mode"] == "estop" and "latched before restart" in mode(probe)["reason"]
        assert probe.call(Trigger, "/safety/reset", Trigger.Request()).success
        wait_active(probe, drv)


def test_a_second_publisher_on_the_command_topic_latches_an_alarm(tmp_path):
    with Graph(tmp_path) as g:
        probe = start(g)
        drv = Driver(probe)
        wait_active(probe, drv)
        rogue = probe.node.create_publisher(Float64MultiArray, "/policy/commands", COMMAND_QOS)
        t0 = time.monotonic()
        wild = np.clip(MID + 1.0, LIM.low, LIM.high)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # 400 Hz of other targets, beside the policy's 50 Hz
            rogue.publish(Float64MultiArray(data=wild.tolist()))
            drv.run(0.0025)
        drv.run(0.5)
        status = mode(probe)
        assert status["mode"] == "estop" and "publishers sent commands" in status["reason"]
        cmds = commands(probe, t0)
        assert_bounded(received(probe, t0))
        assert np.abs(cmds - MID).max() < 0.05  # the rogue never took the arm
        assert "E-STOP latched (alarm" in g.log("safety")


def test_stock_ros2_control_states_in_and_a_trajectory_controller_out(tmp_path):
    """Split messages, NaN effort, an extra joint, no velocity: accepted; commands go out as
    one-point JointTrajectory messages for a joint_trajectory_controller."""
    with Graph(tmp_path) as g:
        g.start("safety", body="arm", ramp_s=0.2, output_type="trajectory")
        probe = g.probe()
        probe.listen("/joint_commands", JointTrajectory, COMMAND_QOS)
        probe.listen("/safety/status", String, COMMAND_QOS)
        drv = Driver(probe, broadcaster=True)
        drv.cmd = np.clip(MID + 0.03, LIM.low, LIM.high)
        wait_active(probe, drv)
        drv.run(0.5)
        last = probe.last("/joint_commands")
        assert list(last.joint_names) == NAMES
        assert np.allclose(last.points[0].positions, drv.cmd, atol=1e-9)
        assert mode(probe)["rejected"].get("nonfinite", 0) == 0


def test_the_arm_reaches_through_a_stand_in_joint_state_broadcaster(tmp_path):
    """The sim robot's states reach the nodes only as a joint_state_broadcaster would publish
    them: the arm's joints (in another order) with a passive joint we do not drive and
    effort filled with NaN, the gripper in a message of its own, each with its stamp."""
    from test_ros_nodes import ArmEE, need, reach_target

    policy = need("reach")
    target = reach_target(policy, 1)
    ee = ArmEE(policy)
    names = list(ee.emb.joint_names)
    with Graph(tmp_path) as g:
        g.start("sim_robot", policy=policy, joint_state_topic="/sim/joint_states")
        g.start("safety", policy=policy, ramp_s=0.5)
        g.start("policy", policy=policy, ee_target=target)
        probe = g.probe()
        pub = probe.node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        sent = []

        def broadcast(msg: JointState) -> None:
            q = dict(zip(msg.name, msg.position, strict=True))
            v = dict(zip(msg.name, msg.velocity, strict=True))
            arm = [n for n in names if n != "gripper"][::-1]
            a = JointState(header=msg.header, name=[*arm, "camera_pan"])
            a.position = [q[n] for n in arm] + [0.0]
            a.velocity = [v[n] for n in arm] + [0.0]
            a.effort = [float("nan")] * len(a.name)
            grip = JointState(header=msg.header, name=["gripper"], position=[q["gripper"]])
            grip.effort = [float("nan")]  # and no velocity: a position-only controller
            pub.publish(a)
            pub.publish(grip)
            sent.append(msg)

        probe.node.create_subscription(JointState, "/sim/joint_states", broadcast, SENSOR_QOS)

        def error() -> float:
            return float(np.linalg.norm(ee(sent[-1]) - target[:3])) if sent else float("inf")

        assert probe.spin_until(lambda: error() < 10, 30), g.log("sim_robot")
        start = error()
        ok = probe.spin_until(lambda: error() < 0.03, 40)
        print(f"reach through the stand-in broadcaster: {start:.3f} -> {error():.4f} m")
        assert ok, f"error {error():.3f} m\n{g.log('policy')}\n{g.log('safety')}"
        for name in ("policy", "safety"):
            assert "nonfinite" not in g.log(name) and "unknown joint" not in g.log(name)
