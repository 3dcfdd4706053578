"""Safety node: between the policy and the robot (`xembody.real.safety.SafetyFilter`).

    python -m xembody.real.ros.safety --ros-args -p body:=arm

Joint mode (default): policy joint targets in on `input_topic` (Float64MultiArray in the
body's joint order, or with `input_type:=trajectory` a JointTrajectory whose first point is
taken, joints by name), limited targets out on `output_topic` at `rate_hz`, as the robot's
controller expects them (`output_type`): `array`, a Float64MultiArray for a ros2_control
forward command controller (the default), or `trajectory`, a one-point JointTrajectory
(reached one tick later) for a joint trajectory controller. Twist mode (mobile bases,
`mode:=twist`): a body twist in and out (geometry_msgs/Twist or TwistStamped with
`cmd_vel_stamped`), bounded by `max_linear` / `max_angular`; the watchdog sends zero velocity.
A good command is passed on at once (limited); besides, every tick publishes, even when the
policy or the state has gone quiet: then the hold (or damp) target.

Joint states are taken as ros2_control drivers publish them (`xembody.real.validate`):
merged by name across messages, extra joints and NaN effort ignored, position-only states
given a filtered velocity; a spiked reading, a stamp ahead of this node's clock or out of
order is refused and logged (a clock stepping back is re-synced, with a log line).

Services: ~/estop (std_srvs/Trigger, latching) and ~/reset. The latch is kept on disk
(`latch_file`, default $ROS_HOME/xembody/<node name>.estop, or ~/.ros/...): a restarted
node comes up e-stopped until ~/reset. More than one publisher sending on `input_topic`
within `publisher_window_s` (two policies, a rogue script) latches an alarm e-stop
(`multiple_publishers:=refuse`, the default) or is logged (`log`); the flood gate
(`max_command_hz`) counts per publisher. ~/status (String, JSON) is published on every
mode change and at 2 Hz: mode, reason, counters, publishers. Commands beyond the limits,
with NaN/inf or the wrong length, or arriving faster than `max_command_hz` are rejected
with an error log and the last good command stays.
"""

from __future__ import annotations

import os
import time
from array import array
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xembody.real.observation import twist_limits
from xembody.real.ros.common import (
    COMMAND_QOS,
    SENSOR_QOS,
    Reporter,
    declare,
    declare_body,
    declare_topics,
    float_array,
    publish_json,
    run,
    stamp_seconds,
)
from xembody.real.safety import JointLimits, SafetyConfig, SafetyFilter
from xembody.real.validate import InputError, JointStateCheck, RateGates, check_vector

PUBLISHER_RULES = ("refuse", "log")
OUTPUT_TYPES = ("array", "trajectory")


class SafetyNode(Node):
    def __init__(self) -> None:
        super().__init__("safety")
        self.mode = declare(self, "mode", "joint", "joint (Float64MultiArray) or twist")
        self.input_type = declare(
            self, "input_type", "array", "joint mode input: array or trajectory (JointTrajectory)"
        )
        self.rate_hz = declare(self, "rate_hz", 100.0, "output rate, Hz", low=1.0, high=2000.0)
        self.max_command_hz = declare(
            self, "max_command_hz", 200.0, "commands per s beyond this are a flood",
            low=1.0, high=100000.0,
        )  # fmt: skip
        cfg = SafetyConfig()
        self.cfg = SafetyConfig(
            state_timeout_s=declare(
                self, "state_timeout_s", cfg.state_timeout_s, "s", low=0.001, high=10.0
            ),
            command_timeout_s=declare(
                self, "command_timeout_s", cfg.command_timeout_s, "s", low=0.001, high=10.0
            ),
            stale_mode=declare(self, "stale_mode", cfg.stale_mode, "hold or damp"),
            ramp_s=declare(self, "ramp_s", cfg.ramp_s, "soft-start ramp, s", low=0.0, high=60.0),
            velocity_scale=declare(
                self, "velocity_scale", cfg.velocity_scale, "share of joint velocity limits",
                low=0.01, high=1.0,
            ),
            default_velocity=declare(
                self, "default_velocity", cfg.default_velocity, "rad/s or m/s, the rate "
                "bound of joints without a finite velocity limit", low=0.01, high=100.0,
            ),
        )  # fmt: skip
        self.max_linear = declare(
            self,
            "max_linear",
            0.0,
            "m/s (twist mode; 0: what the wheels allow)",
            low=0.0,
            high=10.0,
        )
        self.max_angular = declare(
            self, "max_angular", 0.0, "rad/s (twist mode; 0: what the wheels allow)",
            low=0.0, high=20.0,
        )  # fmt: skip
        self.cmd_vel_stamped = declare(self, "cmd_vel_stamped", False, "TwistStamped in and out")
        self.output_type = declare(
            self, "output_type", "array", "joint mode output: array (forward command "
            "controller) or trajectory (joint trajectory controller)",
        )  # fmt: skip
        self.multiple_publishers = declare(
            self, "multiple_publishers", "refuse", "more than one publisher on input_topic: "
            "refuse (latched alarm e-stop) or log",
        )  # fmt: skip
        self.publisher_window_s = declare(
            self, "publisher_window_s", 0.5, "s: publishers heard within this are active",
            low=0.01, high=60.0,
        )  # fmt: skip
        self.max_ahead_s = declare(
            self, "max_ahead_s", 0.5, "s: joint state stamps further ahead of this node's "
            "clock are refused", low=0.0, high=3600.0,
        )  # fmt: skip
        latch = declare(self, "latch_file", "", "e-stop latch on disk ('' default, 'none': off)")
        twist = self.mode == "twist"
        if self.mode not in ("joint", "twist"):
            raise ValueError(f"parameter mode={self.mode!r}, expected 'joint' or 'twist'")
        for name, value, allowed in (
            ("input_type", self.input_type, OUTPUT_TYPES),
            ("output_type", self.output_type, OUTPUT_TYPES),
            ("multiple_publishers", self.multiple_publishers, PUBLISHER_RULES),
        ):
            if value not in allowed:
                raise ValueError(f"parameter {name}={value!r}, expected one of {allowed}")
        self.latch_path = latch_path(latch, self.get_name())
        topics = {
            "joint_state_topic": "/joint_states",
            "input_topic": "/policy/cmd_vel" if twist else "/policy/commands",
            "output_topic": "/cmd_vel" if twist else "/joint_commands",
        }
        self.topic = declare_topics(self, topics)

        self.emb = declare_body(self)
        self.check = JointStateCheck(self.emb.joint_names, max_ahead_s=self.max_ahead_s)
        limits = self._twist_limits() if twist else JointLimits.from_embodiment(self.emb)
        self.filter = SafetyFilter(self.cfg, limits)
        if self.filter.defaulted:
            self.get_logger().warn(
                f"joints {self.filter.defaulted} have no finite velocity limit in the body: "
                f"their rate bound is default_velocity = {self.cfg.default_velocity:g} (set "
                "velocity limits in the robot file, or the parameter)"
            )
        self.gate = RateGates(self.max_command_hz, burst=10, what="commands")
        self.reporter = Reporter(self)
        self.last_mode = ""
        self.resyncs = 0
        self.heard: dict[bytes, float] = {}  # publisher gid -> last command received
        self.alarm = ""
        if self.latch_path is not None and self.latch_path.is_file():
            reason = self.latch_path.read_text().strip() or "e-stop"
            self.filter.estop(f"latched before restart: {reason}")
            self.get_logger().error(
                f"E-STOP still latched from before this start ({reason}; {self.latch_path}): "
                "holding until ~/reset"
            )
        self.twist_type = TwistStamped if self.cmd_vel_stamped else Twist
        out_type = Float64MultiArray
        if twist:
            out_type = self.twist_type
        elif self.output_type == "trajectory":
            out_type = JointTrajectory
            ns = round(1e9 / self.rate_hz)
            self.point = JointTrajectoryPoint(
                time_from_start=Duration(sec=ns // 10**9, nanosec=ns % 10**9)
            )
            self.traj = JointTrajectory(joint_names=list(self.emb.joint_names), points=[self.point])
        self.pub = self.create_publisher(out_type, self.topic["output_topic"], COMMAND_QOS)
        self.pub_status = self.create_publisher(String, "~/status", COMMAND_QOS)
        self.create_subscription(
            JointState, self.topic["joint_state_topic"], self.on_joints, SENSOR_QOS
        )
        in_type = self.twist_type if twist else Float64MultiArray
        if not twist and self.input_type == "trajectory":
            in_type = JointTrajectory
            self.names = JointStateCheck(self.emb.joint_names)  # by name, any order
        self.create_subscription(in_type, self.topic["input_topic"], self.on_command, COMMAND_QOS)
        self.create_service(Trigger, "~/estop", self.on_estop)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.create_timer(1.0 / self.rate_hz, self.tick)
        self.create_timer(0.5, self.report)

    def _twist_limits(self) -> JointLimits:
        top = twist_limits(self.emb)  # a differential drive cannot move sideways: vy 0
        if self.max_linear > 0:
            top[:2] = np.minimum(top[:2], self.max_linear)
        if self.max_angular > 0:
            top[2] = min(top[2], self.max_angular)
        inf = np.full(3, np.inf)
        return JointLimits(
            names=("vx", "vy", "wz"), low=-top, high=top, velocity=inf, effort=inf,
            kp=np.ones(3), kd=np.zeros(3), velocity_actuated=True,
        )  # fmt: skip

    # --- callbacks ----------------------------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        received = time.monotonic()
        try:
            q, dq, _ = self.check(
                msg.name, msg.position, msg.velocity, msg.effort,
                stamp_seconds(msg.header.stamp), now=self.get_clock().now().nanoseconds * 1e-9,
                received=received,
            )  # fmt: skip
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        if self.check.resyncs != self.resyncs:
            self.resyncs = self.check.resyncs
            self.get_logger().warn(self.check.last_resync)
        if self.mode == "twist":  # the joint state only proves the robot is alive
            q = dq = np.zeros(3)
        try:  # the least recently heard joint sets the state's age (per-joint staleness)
            self.filter.state(self.check.oldest, q, dq)
        except ValueError as err:
            self.reporter.reject("implausible", f"{err}: holding the last good reading")

    def on_command(self, msg: Float64MultiArray | Twist | TwistStamped, info: dict) -> None:
        now = time.monotonic()
        gid = bytes((info.get("publisher_gid") or {}).get("data", b""))
        try:
            self._one_publisher(now, gid)
            self.gate(now, gid)
            if isinstance(msg, Float64MultiArray):
                values = check_vector(msg.data, len(self.filter.limits.names), "joint command")
            elif isinstance(msg, JointTrajectory):
                values = self._first_point(msg)
            else:
                t = msg.twist if isinstance(msg, TwistStamped) else msg
                values = check_vector([t.linear.x, t.linear.y, t.angular.z], 3, "cmd_vel")
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        try:
            self.filter.command(now, values)
        except ValueError as err:
            return self.reporter.reject("limits", f"command rejected: {err}")
        self.tick()  # pass a fresh command on at once, not at the next timer tick

    def _one_publisher(self, now: float, gid: bytes) -> None:
        """Commands from a second publisher within publisher_window_s: alarm (or log)."""
        self.heard[gid] = now
        window = self.publisher_window_s
        self.heard = {g: t for g, t in self.heard.items() if now - t <= window}
        if len(self.heard) < 2:
            return
        topic = self.topic["input_topic"]
        reason = (
            f"{len(self.heard)} publishers sent commands on {topic} within {window:g} s "
            f"({self.count_publishers(topic)} matched): only the policy may command"
        )
        if self.multiple_publishers == "log":
            return self.reporter.reject("publishers", reason)
        if not self.alarm:
            self.alarm = reason
            self.latch(f"alarm: {reason}")
        raise InputError("publishers", f"command refused: {reason}")

    def _first_point(self, msg: JointTrajectory) -> np.ndarray:
        """The first point's positions in our joint order (a forward position command)."""
        if not msg.points:
            raise InputError("lengths", "JointTrajectory has no points")
        ours, theirs = self.names.index(msg.joint_names)
        if len(ours) != len(self.emb.joint_names):
            missing = sorted(set(self.emb.joint_names) - set(msg.joint_names))
            raise InputError("names", f"JointTrajectory lacks joint(s) {missing}")
        pos = check_vector(msg.points[0].positions, len(msg.joint_names), "trajectory point")
        out = np.empty(len(ours))
        out[ours] = pos[theirs]
        return out

    def on_estop(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.latch("e-stop service called")
        resp.success, resp.message = True, "e-stop latched"
        return resp

    def latch(self, reason: str) -> None:
        """Latch the e-stop, on disk too: a restarted node comes up e-stopped."""
        self.filter.estop(reason)
        if self.latch_path is not None:
            self.latch_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.latch_path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.write(reason + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.latch_path)
        self.get_logger().error(f"E-STOP latched ({reason}): holding until ~/reset")

    def on_reset(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.filter.reset()
        self.alarm = ""
        self.heard.clear()
        if self.latch_path is not None:
            self.latch_path.unlink(missing_ok=True)
        resp.success, resp.message = True, "e-stop cleared; control resumes with a soft start"
        self.get_logger().warn(resp.message)
        return resp

    def tick(self) -> None:
        stamp = self.get_clock().now().to_msg()  # the instant the filter's output is for
        out = self.filter.output(time.monotonic())
        if out is not None:
            if self.mode == "twist":
                msg = self.twist_type()
                t = msg.twist if isinstance(msg, TwistStamped) else msg
                t.linear.x, t.linear.y, t.angular.z = (float(x) for x in out)
                if isinstance(msg, TwistStamped):
                    msg.header.stamp = stamp
            elif self.output_type == "trajectory":
                msg = self.traj
                msg.header.stamp = stamp
                self.point.positions = array("d", np.asarray(out, dtype=np.float64).tobytes())
            else:
                msg = float_array(out)
            self.pub.publish(msg)
        if self.filter.mode != self.last_mode:
            log = (
                self.get_logger().warn
                if self.filter.mode in ("hold", "estop")
                else (self.get_logger().info)
            )
            log(f"mode {self.last_mode or 'start'} -> {self.filter.mode} ({self.filter.reason})")
            self.last_mode = self.filter.mode
            self.report()

    def report(self) -> None:
        topic = self.topic["input_topic"]
        publish_json(
            self.pub_status,
            {
                **self.filter.status(),
                "rejected": dict(self.reporter.counts),
                "publishers": self.count_publishers(topic),
                "alarm": self.alarm,
                "clock_resyncs": self.resyncs,
            },
        )


def latch_path(param: str, node_name: str) -> Path | None:
    """Where the e-stop latch lives: `param`, or $ROS_HOME/xembody/<node>.estop ('none': off)."""
    if param == "none":
        return None
    if param:
        return Path(param).expanduser()
    home = Path(os.environ.get("ROS_HOME") or Path.home() / ".ros")
    return home / "xembody" / f"{node_name}.estop"


def main(args: list[str] | None = None) -> None:
    run(SafetyNode, args)


if __name__ == "__main__":
    main()
