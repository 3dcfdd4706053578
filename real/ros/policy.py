"""Policy node: runs an exported xembody policy (ONNX or TorchScript + policy.json).

    python -m xembody.real.ros.policy --ros-args -p policy:=tests/assets/policies/reach

Builds the observation of the policy's contract from /joint_states (indexed by name),
/imu/data, /odom, /scan and the operator's command (/cmd_vel for legged bodies, /goal_pose
for mobile bases, /ee_target for arms; or the `goal` / `ee_target` parameters), runs the
network and publishes at `control_hz` (default: the policy's rate): joint targets on
`command_topic` (Float64MultiArray in the body's joint order, or with `command_type:=
trajectory` a one-point JointTrajectory stamped with the state it answers; clipped into the
joint limits; with `adapter_model:=arm_dyn.pt` first adapted to the robot by an
`ActionAdapter` (docs/REALITY_GAP.md) from that learned model, the optional
`adapter_reference` (nominal model) and the `adapt_*` parameters, the AdaptConfig fields)
or, for a "body_twist" policy, a Twist on `twist_topic` (clipped to what the wheels allow).
A step runs when a joint state arrives stamped at least one control period (less 10%)
after the previous step's, so the latency from state to command is one inference, not a
timer's phase, and a simulation running slower than real time still gets one step per
simulated period. Bad joint states (mismatched lengths, unknown or missing names, NaN/inf,
out-of-order stamps, a flood beyond `max_state_hz`) are rejected with an error log and the
node carries on. Everything from the arrays to the command (observation, network, action
map, clip, adaptation) is the ROS-free `PolicyController` (`xembody.real.controller`);
this node only converts messages to arrays and back. ~/status (String, JSON, 1 Hz) reports
the loop's rate, jitter, latency, time per stage and rejection counts.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from array import array
from collections import deque

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState, LaserScan
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xembody.models.exported import ExportedPolicy
from xembody.real.adapt import AdaptConfig, load_adapter
from xembody.real.controller import PolicyController
from xembody.real.observation import Command
from xembody.real.robot import RobotState, target_limits
from xembody.real.ros.common import (
    COMMAND_QOS,
    SENSOR_QOS,
    Reporter,
    declare,
    declare_topics,
    load_body,
    publish_json,
    run,
    stamp_seconds,
)
from xembody.real.timing import LoopTimer
from xembody.real.validate import InputError, JointStateCheck, RateGate, check_vector


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.folder = declare(self, "policy", "", "export folder (policy.json + network)")
        self.backend = declare(self, "backend", "onnx", "onnx or torchscript")
        self.control_hz = declare(
            self, "control_hz", 0.0, "Hz (0: the policy's rate)", low=0.0, high=2000.0
        )
        self.max_state_hz = declare(
            self, "max_state_hz", 0.0, "joint states per s beyond this are a flood (0: 5 x "
            "control_hz)", low=0.0, high=100000.0,
        )  # fmt: skip
        self.goal = declare(self, "goal", [], "x, y (m, odom frame) until /goal_pose arrives")
        self.ee_target = declare(self, "ee_target", [], "x, y, z, qw, qx, qy, qz until /ee_target")
        self.cmd_vel_stamped = declare(self, "cmd_vel_stamped", False, "TwistStamped on cmd_vel")
        self.command_type = declare(
            self, "command_type", "array", "array (Float64MultiArray) or trajectory"
        )
        topics = {
            "joint_state_topic": "/joint_states",
            "imu_topic": "/imu/data",
            "odom_topic": "/odom",
            "scan_topic": "/scan",
            "cmd_vel_topic": "/cmd_vel",
            "goal_topic": "/goal_pose",
            "ee_target_topic": "/ee_target",
            "command_topic": "/policy/commands",
            "twist_topic": "/policy/cmd_vel",
        }
        self.topic = declare_topics(self, topics)
        if not self.folder:
            raise ValueError("parameter 'policy' is empty: expected an export folder")
        adapter_model = declare(self, "adapter_model", "", "dynamics model (.pt): adapt targets")
        adapter_ref = declare(self, "adapter_reference", "", "nominal dynamics model (.pt)")
        adapt = {
            f.name: declare(self, f"adapt_{f.name}", f.default, f.metadata.get("help", f.name))
            for f in dataclasses.fields(AdaptConfig)
        }
        if self.command_type not in ("array", "trajectory"):
            raise ValueError(
                f"parameter command_type={self.command_type!r}, expected 'array' or 'trajectory'"
            )

        self.policy = ExportedPolicy.load(self.folder, self.backend)
        self.emb = load_body("", 0, self.folder)
        adapter = None
        if adapter_model:
            import torch

            torch.set_num_threads(1)  # batch-1 rollouts of a small model: threads only cost
            adapter = load_adapter(
                adapter_model, adapter_ref or None, AdaptConfig(**adapt),
                joint_names=self.emb.joint_names, limits=target_limits(self.emb),
            )  # fmt: skip
        self.controller = PolicyController(
            self.policy, self.emb, adapter, control_hz=self.control_hz or None
        )
        self.adapter = adapter
        self.offsets: deque[float] = deque(maxlen=2000)  # max |adapted - desired| per step
        self.hz = self.controller.control_hz
        self.period = self.controller.period
        self.check = JointStateCheck(self.emb.joint_names)
        self.gate = RateGate(self.max_state_hz or 5 * self.hz, burst=10, what="joint states")
        self.reporter = Reporter(self)
        self.loop = LoopTimer(self.period)
        self.latency: deque[float] = deque(maxlen=2000)
        # time (ns) per stage of the last steps: validation, observation, inference, publication
        self.stages: dict[str, deque[int]] = {
            k: deque(maxlen=2000) for k in ("check", "observation", "inference", "adapt", "publish")
        }
        self.cmd = Command()
        if self.goal:
            self.cmd.goal = check_vector(self.goal, 2, "parameter goal")
        if self.ee_target:
            t = check_vector(self.ee_target, 7, "parameter ee_target")
            self.cmd.target_pos, self.cmd.target_quat = t[:3], t[3:] / np.linalg.norm(t[3:])
        self.imu: Imu | None = None
        self.odom: Odometry | None = None
        self.t_step = -1e9
        self.resyncs = 0

        # the outgoing message is built once and refilled each step (publish serialises it)
        if self.controller.twist_output:
            self.msg = Twist()
            self.pub = self.create_publisher(Twist, self.topic["twist_topic"], COMMAND_QOS)
        elif self.command_type == "trajectory":
            ns = round(self.period * 1e9)
            self.point = JointTrajectoryPoint(
                time_from_start=Duration(sec=ns // 10**9, nanosec=ns % 10**9)
            )
            self.msg = JointTrajectory(joint_names=list(self.emb.joint_names), points=[self.point])
            self.pub = self.create_publisher(
                JointTrajectory, self.topic["command_topic"], COMMAND_QOS
            )
        else:
            self.msg = Float64MultiArray()
            self.pub = self.create_publisher(
                Float64MultiArray, self.topic["command_topic"], COMMAND_QOS
            )
        self.pub_status = self.create_publisher(String, "~/status", COMMAND_QOS)
        t = self.topic
        self.create_subscription(JointState, t["joint_state_topic"], self.on_joints, SENSOR_QOS)
        self.create_subscription(Imu, t["imu_topic"], self.on_imu, SENSOR_QOS)
        self.create_subscription(Odometry, t["odom_topic"], self.on_odom, SENSOR_QOS)
        self.create_subscription(LaserScan, t["scan_topic"], self.on_scan, SENSOR_QOS)
        vel_type = TwistStamped if self.cmd_vel_stamped else Twist
        self.create_subscription(vel_type, t["cmd_vel_topic"], self.on_cmd_vel, COMMAND_QOS)
        self.create_subscription(PoseStamped, t["goal_topic"], self.on_goal, COMMAND_QOS)
        self.create_subscription(PoseStamped, t["ee_target_topic"], self.on_ee_target, COMMAND_QOS)
        self.create_timer(1.0, self.report)
        self.get_logger().info(f"{self.policy!r} at {self.hz:g} Hz")

    # --- inputs -------------------------------------------------------------------------
    def on_imu(self, msg: Imu) -> None:
        self.imu = msg

    def on_odom(self, msg: Odometry) -> None:
        self.odom = msg

    def on_scan(self, msg: LaserScan) -> None:
        self.cmd.ranges = np.asarray(msg.ranges, dtype=float)

    def on_cmd_vel(self, msg: Twist | TwistStamped) -> None:
        t = msg.twist if isinstance(msg, TwistStamped) else msg
        try:
            self.cmd.twist = tuple(
                check_vector([t.linear.x, t.linear.y, t.angular.z], 3, "cmd_vel")
            )
        except InputError as err:
            self.reporter.reject(err.kind, str(err))

    def on_goal(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        try:
            self.cmd.goal = check_vector([p.x, p.y], 2, "goal_pose")
        except InputError as err:
            self.reporter.reject(err.kind, str(err))

    def on_ee_target(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        try:
            t = check_vector([p.x, p.y, p.z, q.w, q.x, q.y, q.z], 7, "ee_target")
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        if abs(np.linalg.norm(t[3:]) - 1.0) > 0.01:
            return self.reporter.reject("ee_target", f"ee_target quaternion {t[3:]} is not unit")
        self.cmd.target_pos, self.cmd.target_quat = t[:3], t[3:]

    def on_joints(self, msg: JointState) -> None:
        received = time.monotonic()
        t0 = time.perf_counter_ns()
        stamp = stamp_seconds(msg.header.stamp)
        try:
            self.gate(received)
            q, dq, tau = self.check(
                msg.name, msg.position, msg.velocity, msg.effort, stamp,
                now=self.get_clock().now().nanoseconds * 1e-9, received=received,
            )  # fmt: skip
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        if self.check.resyncs != self.resyncs:  # the robot's clock stepped back
            self.resyncs = self.check.resyncs
            self.get_logger().warn(self.check.last_resync)
            self.t_step = -1e9
        if stamp - self.t_step < 0.9 * self.period:
            return  # the control period is counted in the robot's time (its stamps)
        self.t_step = stamp
        self.stamp_msg = msg.header.stamp
        self.stages["check"].append(time.perf_counter_ns() - t0)
        self.step(RobotState(stamp, self.emb.joint_names, q, dq, tau), received)

    # --- one control step ---------------------------------------------------------------
    def step(self, state: RobotState, received: float) -> None:
        if self.imu is not None:
            o, g = self.imu.orientation, self.imu.angular_velocity
            state.imu_quat = np.array([o.w, o.x, o.y, o.z])
            state.imu_gyro = np.array([g.x, g.y, g.z])
        if self.odom is not None:
            p, o = self.odom.pose.pose.position, self.odom.pose.pose.orientation
            v, w = self.odom.twist.twist.linear, self.odom.twist.twist.angular
            state.base_pos, state.base_quat = (
                np.array([p.x, p.y, p.z]),
                np.array([o.w, o.x, o.y, o.z]),
            )
            state.base_lin_vel, state.base_ang_vel = (
                np.array([v.x, v.y, v.z]),
                np.array([w.x, w.y, w.z]),
            )
        try:
            out = self.controller.step(state, self.cmd)
        except ValueError as err:
            return self.reporter.reject("observation", f"no command this step: {err}")
        t2 = time.perf_counter_ns()
        msg = self.msg
        if self.controller.twist_output:
            vx, vy, wz = out
            msg.linear.x, msg.linear.y, msg.angular.z = float(vx), float(vy), float(wz)
        else:
            if self.adapter is not None:
                self.offsets.append(float(np.abs(out - self.controller.desired).max()))
            # array('d') is taken as is by the message; a list is checked entry by entry
            targets = array("d", np.ascontiguousarray(out, dtype=np.float64).tobytes())
            if self.command_type == "array":
                msg.data = targets
            else:  # one point, reached one period after the state whose stamp it carries
                msg.header.stamp = self.stamp_msg
                self.point.positions = targets
        self.pub.publish(msg)
        now = time.monotonic()
        self.latency.append(now - received)
        self.loop.tick(received)
        t3 = time.perf_counter_ns()
        ns = self.controller.stage_ns
        self.stages["observation"].append(ns["observation"])
        self.stages["inference"].append(ns["inference"])
        if "adapt" in ns:
            self.stages["adapt"].append(ns["adapt"])
        self.stages["publish"].append(t3 - t2)
        if self.loop.ticks % 50 == 0 and not gc.isenabled():
            gc.collect(1)  # just after a command: the next state is a period away (see main)

    def report(self) -> None:
        lat = np.asarray(self.latency) * 1e3
        extra = {}
        if len(lat):
            extra = {
                "latency_p50_ms": float(np.percentile(lat, 50)),
                "latency_p99_ms": float(np.percentile(lat, 99)),
            }
        for name, ns in self.stages.items():
            if ns:
                us = np.asarray(ns) / 1e3
                extra[f"{name}_p50_us"] = float(np.percentile(us, 50))
                extra[f"{name}_p99_us"] = float(np.percentile(us, 99))
        if self.offsets:
            off = np.asarray(self.offsets)
            extra["adapt_offset_p50_rad"] = float(np.percentile(off, 50))
            extra["adapt_offset_max_rad"] = float(off.max())
        payload = {**self.loop.report(), **extra, "rejected": dict(self.reporter.counts)}
        publish_json(self.pub_status, payload)


def main(args: list[str] | None = None) -> None:
    run(PolicyNode, args, events=True, quiet_gc=True)


if __name__ == "__main__":
    main()
