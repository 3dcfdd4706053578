"""`RosRobot`: a robot behind ROS 2 topics, under the `Robot` contract (`xembody.real.robot`).

    robot = RosRobot(emb, control_dt=0.02)      # joint_states in, safety node input out
    s = robot.reset()                           # moves (slowly) to the home pose, waits there
    robot.send(targets); s = robot.step()       # one control period of the robot's time

Readings: `joint_state_topic` (sensor_msgs/JointState, merged by name as ros2_control
publishes it: `xembody.real.validate.JointStateCheck`), `imu_topic` (sensor_msgs/Imu) when
the body has an IMU, `odom_topic` (nav_msgs/Odometry) for a free-standing floating base or a
wheeled one. Targets (the Embodiment's joint order, clipped into the limits) go out as
std_msgs/Float64MultiArray on `command_topic`, by default the safety node's input
(/policy/commands): the safety node (`xembody.real.ros.safety`) bounds them, watches the
streams and forwards them to the robot's controller. The robot refuses to start without the
safety node's ~/status (`require_safety`), and an e-stop there ends `step` and `reset` with
an error.

Time is the robot's: `step` returns once a joint state stamped about one control period
(within 10 %) after the previous step's has arrived, so a robot, or a simulation, that runs
slower than the wall clock is still stepped in its own time, as the policy node counts its
periods. `reset` cannot teleport: it moves the targets from where the joints are to the
home pose (`q0`) at `home_speed` of each joint's velocity limit, holds them there until
every joint is within `home_tolerance`, and fails after `home_timeout_s`. Gains belong to
the driver: `send` refuses `kp`/`kd`. `tau` is the driver's effort, 0 where it reports none
(NaN); nothing in the dynamics fit reads it.

This module imports rclpy, so it lives with the nodes; `RobotConfig(robot="ros")` (the
registered id, `xembody.real.robot.ROBOTS`) builds it, and `xembody collect --robot ros
--params robot.yaml` collects through it.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import rclpy
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String

from xembody.real.robot import Robot, RobotState, target_limits
from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS, float_array, stamp_seconds
from xembody.real.validate import InputError, JointStateCheck
from xembody.sim.bodies.embodiment import Embodiment


class RosRobot(Robot):
    def __init__(
        self,
        embodiment: Embodiment,
        control_dt: float = 0.02,
        seed: int = 0,
        *,
        suspended: bool = False,
        joint_state_topic: str = "/joint_states",
        command_topic: str = "/policy/commands",
        imu_topic: str = "/imu/data",
        odom_topic: str = "/odom",
        safety_status_topic: str = "/safety/status",
        require_safety: bool = True,
        domain_id: int | None = None,
        connect_timeout_s: float = 20.0,
        state_timeout_s: float = 1.0,
        home_speed: float = 0.3,
        home_tolerance: float = 0.1,
        home_timeout_s: float = 10.0,
    ):
        for name, value in (("control_dt", control_dt), ("connect_timeout_s", connect_timeout_s),
                            ("state_timeout_s", state_timeout_s), ("home_speed", home_speed),
                            ("home_tolerance", home_tolerance),
                            ("home_timeout_s", home_timeout_s)):  # fmt: skip
            if not value > 0:
                raise ValueError(f"{name}={value}, expected > 0")
        self.embodiment = embodiment
        self.joint_names = embodiment.joint_names
        self.control_dt = float(control_dt)
        self.suspended = suspended
        self.position = embodiment.action.kind == "joint_position"
        self.home_speed, self.home_tolerance = home_speed, home_tolerance
        self.state_timeout_s, self.home_timeout_s = state_timeout_s, home_timeout_s
        self.topics = {"joint_state": joint_state_topic, "command": command_topic,
                       "safety_status": safety_status_topic}  # fmt: skip
        self.check = JointStateCheck(self.joint_names)
        self.rejected = 0  # joint states refused by the check
        self.overruns = 0  # steps that came more than a period late
        self.safety: dict = {}  # the safety node's last ~/status
        self._reading: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._imu: Imu | None = None
        self._odom: Odometry | None = None
        self._closed = False

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("xembody_robot", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        n = self.node
        n.create_subscription(JointState, joint_state_topic, self._on_joints, SENSOR_QOS)
        n.create_subscription(String, safety_status_topic, self._on_safety, COMMAND_QOS)
        if embodiment.sensors.imu_site:
            n.create_subscription(Imu, imu_topic, self._on_imu, SENSOR_QOS)
        floating = embodiment.floating_base and not suspended
        if floating or embodiment.body_class == "wheeled":
            n.create_subscription(Odometry, odom_topic, self._on_odom, SENSOR_QOS)
        self.pub = n.create_publisher(type(float_array(np.zeros(1))), command_topic, COMMAND_QOS)
        self.lo, self.hi = target_limits(embodiment)
        try:
            self._connect(connect_timeout_s, require_safety)
        except BaseException:
            self.close()
            raise
        self._sent = self.read().q.copy() if self.position else np.zeros(self.num_joints)
        self._last_step = self._reading[0]

    # --- callbacks ------------------------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        stamp = stamp_seconds(msg.header.stamp)
        try:
            q, dq, tau = self.check(msg.name, msg.position, msg.velocity, msg.effort, stamp)
        except InputError:
            self.rejected += 1
            return
        self._reading = (stamp, q, dq, np.nan_to_num(tau, nan=0.0))

    def _on_imu(self, msg: Imu) -> None:
        self._imu = msg

    def _on_odom(self, msg: Odometry) -> None:
        self._odom = msg

    def _on_safety(self, msg: String) -> None:
        try:
            self.safety = json.loads(msg.data)
        except json.JSONDecodeError:
            pass

    # --- the contract ---------------------------------------------------------------------
    def read(self) -> RobotState:
        for _ in range(8):  # take what has arrived, without waiting
            self.executor.spin_once(timeout_sec=0.0)
        stamp, q, dq, tau = self._reading
        s = RobotState(stamp, self.joint_names, q.copy(), dq.copy(), tau.copy())
        if self._imu is not None:
            imu = self._imu
            o, g, a = imu.orientation, imu.angular_velocity, imu.linear_acceleration
            s.imu_quat = np.array([o.w, o.x, o.y, o.z])
            s.imu_gyro, s.imu_acc = np.array([g.x, g.y, g.z]), np.array([a.x, a.y, a.z])
        if self._odom is not None:
            p, o = self._odom.pose.pose.position, self._odom.pose.pose.orientation
            v, w = self._odom.twist.twist.linear, self._odom.twist.twist.angular
            s.base_pos, s.base_quat = np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z])
            s.base_lin_vel, s.base_ang_vel = np.array([v.x, v.y, v.z]), np.array([w.x, w.y, w.z])
        return s

    def send(self, targets, kp=None, kd=None) -> None:
        if kp is not None or kd is not None:
            raise ValueError("RosRobot: the gains belong to the robot's driver (kp/kd refused)")
        self._sent = self.safe_targets(targets)
        self.pub.publish(float_array(self._sent))

    def step(self) -> RobotState:
        due = self._last_step + 0.9 * self.control_dt
        if not self._spin(lambda: self._reading[0] >= due, self.state_timeout_s):
            raise RuntimeError(
                f"RosRobot: no joint state on {self.topics['joint_state']} for "
                f"{self.state_timeout_s:g} s (last stamp {self._reading[0]:.3f} s); "
                f"safety: {self._safety_line()}"
            )
        stamp = self._reading[0]
        if stamp - self._last_step > 2 * self.control_dt:
            self.overruns += 1
        self._last_step = stamp
        return self.read()

    def reset(self, q0: np.ndarray | None = None) -> RobotState:
        home = self.embodiment.default_pose if q0 is None else np.asarray(q0, dtype=float)
        if home.shape != (self.num_joints,) or not np.isfinite(home).all():
            raise ValueError(f"q0={home}: expected {self.num_joints} finite joint positions")
        if not self.position:  # velocity-actuated: stop
            for _ in range(max(1, round(0.5 / self.control_dt))):
                self.send(np.zeros(self.num_joints))
                self.step()
            return self.read()
        home = self.safe_targets(home)
        start = self.read().q
        vmax = np.array([j.velocity_limit for j in self.embodiment.joints])
        speed = self.home_speed * np.where(np.isfinite(vmax), vmax, 1.0)
        n = max(1, math.ceil(float(np.max(np.abs(home - start) / speed)) / self.control_dt))
        for k in range(1, n + 1):
            self.send(start + (home - start) * k / n)
            self.step()
        deadline = time.monotonic() + self.home_timeout_s
        while True:
            self.send(home)
            s = self.step()
            err = np.abs(s.q - home)
            if (err < self.home_tolerance).all():
                return s
            if time.monotonic() > deadline:
                far = {self.joint_names[i]: round(float(err[i]), 3)
                       for i in np.flatnonzero(err >= self.home_tolerance)}  # fmt: skip
                raise RuntimeError(
                    f"RosRobot.reset: joints {far} (rad) still farther than "
                    f"{self.home_tolerance:g} from the home pose after {self.home_timeout_s:g} "
                    f"s; safety: {self._safety_line()}"
                )

    def close(self) -> None:
        """Stop commanding (the safety node then holds the robot) and leave ROS."""
        if self._closed:
            return
        self._closed = True
        self.executor.shutdown(timeout_sec=0.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # --- helpers --------------------------------------------------------------------------
    def _connect(self, timeout: float, require_safety: bool) -> None:
        what = lambda: self._reading is not None and (self.safety or not require_safety)  # noqa: E731
        if self._spin(what, timeout):
            return
        if self._reading is None:
            raise RuntimeError(
                f"RosRobot: no complete joint state on {self.topics['joint_state']} within "
                f"{timeout:g} s ({self.rejected} refused): is the robot's driver running, on "
                f"this ROS_DOMAIN_ID, with joints {list(self.joint_names)}?"
            )
        raise RuntimeError(
            f"RosRobot: no safety node status on {self.topics['safety_status']} within "
            f"{timeout:g} s: targets go through the safety node (python -m "
            f"xembody.real.ros.safety, input {self.topics['command']}); require_safety=false "
            "sends them without it"
        )

    def _spin(self, condition, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            if self.safety.get("mode") == "estop":
                raise RuntimeError(f"RosRobot: the safety node is e-stopped: {self._safety_line()}")
            if condition():
                return True
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.002)

    def _safety_line(self) -> str:
        if not self.safety:
            return "no status heard"
        return f"mode {self.safety.get('mode')} ({self.safety.get('reason', '')})"
