"""Safety node: between the policy and the robot (`xembody.real.safety.SafetyFilter`).

    python -m xembody.real.ros.safety --ros-args -p body:=arm

Joint mode (default): policy joint targets in on `input_topic` (Float64MultiArray in the
body's joint order, or with `input_type:=trajectory` a JointTrajectory whose first point is
taken, joints by name), limited targets out on `output_topic` at `rate_hz`. Twist mode (mobile
bases, `mode:=twist`): a body twist in and out (geometry_msgs/Twist or TwistStamped), bounded
by `max_linear` / `max_angular`; the watchdog sends zero velocity. A good command is passed on
at once (limited); besides, every tick publishes, even when the policy or the state has
gone quiet: then the hold (or damp) target.
Services: ~/estop (std_srvs/Trigger, latching) and ~/reset. ~/status (String, JSON) is
published on every mode change and at 2 Hz: mode, reason, counters. Commands beyond the
limits, with NaN/inf or the wrong length, or arriving faster than `max_command_hz` are
rejected with an error log and the last good command stays.
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from xembody.real.observation import twist_limits
from xembody.real.ros.common import (
    COMMAND_QOS,
    SENSOR_QOS,
    Reporter,
    declare,
    float_array,
    load_body,
    publish_json,
    run,
    stamp_seconds,
)
from xembody.real.safety import JointLimits, SafetyConfig, SafetyFilter
from xembody.real.validate import InputError, JointStateCheck, RateGate, check_vector


class SafetyNode(Node):
    def __init__(self) -> None:
        super().__init__("safety")
        self.body_name = declare(self, "body", "arm", "body class or body file")
        self.body_seed = declare(self, "body_seed", 0, "seed of a sampled body", low=0, high=2**31)
        self.policy = declare(self, "policy", "", "export folder: the body of its sidecar")
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
        twist = self.mode == "twist"
        if self.mode not in ("joint", "twist"):
            raise ValueError(f"parameter mode={self.mode!r}, expected 'joint' or 'twist'")
        if self.input_type not in ("array", "trajectory"):
            raise ValueError(
                f"parameter input_type={self.input_type!r}, expected 'array' or 'trajectory'"
            )
        topics = {
            "joint_state_topic": "/joint_states",
            "input_topic": "/policy/cmd_vel" if twist else "/policy/commands",
            "output_topic": "/cmd_vel" if twist else "/joint_commands",
        }
        self.topic = {k: declare(self, k, v, f"topic ({k})") for k, v in topics.items()}

        self.emb = load_body(self.body_name, self.body_seed, self.policy)
        self.check = JointStateCheck(self.emb.joint_names)
        limits = self._twist_limits() if twist else JointLimits.from_embodiment(self.emb)
        self.filter = SafetyFilter(self.cfg, limits)
        self.gate = RateGate(self.max_command_hz, burst=10, what="commands")
        self.reporter = Reporter(self)
        self.last_mode = ""
        self.twist_type = TwistStamped if self.cmd_vel_stamped else Twist
        out_type = self.twist_type if twist else Float64MultiArray
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
        try:
            q, dq, _ = self.check(
                msg.name, msg.position, msg.velocity, msg.effort, stamp_seconds(msg.header.stamp)
            )
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        if self.mode == "twist":  # the joint state only proves the robot is alive
            q = dq = np.zeros(3)
        self.filter.state(time.monotonic(), q, dq)

    def on_command(self, msg: Float64MultiArray | Twist | TwistStamped) -> None:
        now = time.monotonic()
        try:
            self.gate(now)
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

    def _first_point(self, msg: JointTrajectory) -> np.ndarray:
        """The first point's positions in our joint order (a forward position command)."""
        if not msg.points:
            raise InputError("lengths", "JointTrajectory has no points")
        idx = self.names.index(msg.joint_names)
        pos = check_vector(msg.points[0].positions, len(msg.joint_names), "trajectory point")
        return pos[idx]

    def on_estop(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.filter.estop("e-stop service called")
        self.get_logger().error("E-STOP latched: holding until ~/reset")
        resp.success, resp.message = True, "e-stop latched"
        return resp

    def on_reset(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.filter.reset()
        resp.success, resp.message = True, "e-stop cleared; control resumes with a soft start"
        self.get_logger().warn(resp.message)
        return resp

    def tick(self) -> None:
        out = self.filter.output(time.monotonic())
        if out is not None:
            if self.mode == "twist":
                msg = self.twist_type()
                t = msg.twist if isinstance(msg, TwistStamped) else msg
                t.linear.x, t.linear.y, t.angular.z = (float(x) for x in out)
                if isinstance(msg, TwistStamped):
                    msg.header.stamp = self.get_clock().now().to_msg()
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
        publish_json(
            self.pub_status, {**self.filter.status(), "rejected": dict(self.reporter.counts)}
        )


def main(args: list[str] | None = None) -> None:
    run(SafetyNode, args)


if __name__ == "__main__":
    main()
