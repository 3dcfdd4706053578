"""Sim robot node: a simulated body speaking the topics a ros2_control driver would.

    python -m xembody.real.ros.sim_robot --ros-args -p body:=arm -p body_seed:=0

Steps `xembody.real.robot.SimRobot` (MuJoCo; `robot:=proxy`: the real-proxy
`xembody.real.proxy.ProxyRobot` with its hidden dynamics) in real time, `period_s` per
timer tick (default: one physics step, so a command acts within a step of arriving, as on a
robot with a fast ros2_control loop), and every `publish_period_s` publishes /joint_states,
/imu/data (bodies with an IMU), /odom (floating and wheeled bases) and /scan (wheeled: a
ring of `scan_rays` horizontal rays, as the navigation task's rangefinders). It takes joint
targets on `command_topic` (std_msgs/Float64MultiArray in the body's joint order, a forward
command controller's convention) and, for wheeled bases, a body twist on `cmd_vel_topic`
(geometry_msgs/Twist, or TwistStamped with `cmd_vel_stamped`), converted to wheel speeds.
`obstacles` adds boxes [x, y, hx, hy, ...]. The service ~/set_state_stream
(std_srvs/SetBool) stops and restarts the sensor streams (to test what the rest of the
graph does when a robot goes silent).
"""

from __future__ import annotations

import time

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState, LaserScan
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool

from xembody.real.observation import ring_scan, twist_to_wheels
from xembody.real.robot import RobotState, SimRobot, suspended_spec
from xembody.real.ros.common import (
    COMMAND_QOS,
    SENSOR_QOS,
    Reporter,
    declare,
    declare_body,
    declare_topics,
    publish_json,
    run,
)
from xembody.real.timing import LoopTimer
from xembody.real.validate import InputError, check_vector
from xembody.sim.tasks.math import yaw_of


class SimRobotNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_robot")
        self.period_s = declare(
            self, "period_s", 0.0, "physics per timer tick, s (0: one physics step)",
            low=0.0, high=0.1,
        )  # fmt: skip
        self.publish_period_s = declare(
            self, "publish_period_s", 0.01, "sensor topics every this many s (a multiple "
            "of period_s)", low=0.0, high=1.0,
        )  # fmt: skip
        self.suspended = declare(self, "suspended", False, "hang a legged body on a stand")
        self.robot_kind = declare(self, "robot", "sim", "sim (nominal MuJoCo) or proxy")
        self.robot_seed = declare(self, "robot_seed", 0, "seed of the proxy's hidden effects",
                                  low=0, high=2**31)  # fmt: skip
        self.obstacles = declare(self, "obstacles", [], "boxes [x, y, hx, hy, ...] in m")
        self.scan_rays = declare(self, "scan_rays", 16, "rays of /scan (wheeled)", low=1, high=720)
        self.scan_range = declare(self, "scan_range", 3.0, "m, longest range", low=0.1, high=100.0)
        self.cmd_vel_stamped = declare(self, "cmd_vel_stamped", False, "TwistStamped on cmd_vel")
        topics = {
            "joint_state_topic": "/joint_states",
            "imu_topic": "/imu/data",
            "odom_topic": "/odom",
            "scan_topic": "/scan",
            "command_topic": "/joint_commands",
            "cmd_vel_topic": "/cmd_vel",
        }
        self.topic = declare_topics(self, topics)

        self.emb = declare_body(self, "export folder: run the body of its sidecar")
        scene = self._scene()
        self.period_s = self.period_s or float(scene.opt.timestep)
        self.publish_every = max(1, round(self.publish_period_s / self.period_s))
        self.robot = self._make_robot(scene)
        self.ticks = 0
        self.wheeled = self.emb.body_class == "wheeled"
        self.twist = np.zeros(3)
        self.streaming = True
        self.timer_stats = LoopTimer(self.period_s)
        self.reporter = Reporter(self)
        self.t0 = time.monotonic()
        self.stamp0 = self.get_clock().now().nanoseconds
        if self.wheeled:
            self._setup_scan()

        self.pub_js = self.create_publisher(JointState, self.topic["joint_state_topic"], SENSOR_QOS)
        self.pub_imu = self.create_publisher(Imu, self.topic["imu_topic"], SENSOR_QOS)
        self.pub_odom = self.create_publisher(Odometry, self.topic["odom_topic"], SENSOR_QOS)
        self.pub_scan = self.create_publisher(LaserScan, self.topic["scan_topic"], SENSOR_QOS)
        self.pub_status = self.create_publisher(String, "~/status", COMMAND_QOS)
        self.create_subscription(
            Float64MultiArray, self.topic["command_topic"], self.on_command, COMMAND_QOS
        )
        if self.wheeled:
            kind = TwistStamped if self.cmd_vel_stamped else Twist
            self.create_subscription(kind, self.topic["cmd_vel_topic"], self.on_twist, COMMAND_QOS)
        self.create_service(SetBool, "~/set_state_stream", self.on_set_stream)
        self.create_timer(self.period_s, self.tick)
        self.create_timer(1.0, self.report)
        self.get_logger().info(
            f"{self.emb.name}: {len(self.emb.joint_names)} joints, physics in "
            f"{1e3 * self.period_s:g} ms ticks, sensors every {self.publish_every} ticks"
        )

    # --- setup --------------------------------------------------------------------------
    def _make_robot(self, scene: mujoco.MjModel) -> SimRobot:
        kwargs = dict(model=scene, suspended=self.suspended)
        if self.robot_kind == "sim":
            return SimRobot(self.emb, self.period_s, self.robot_seed, **kwargs)
        if self.robot_kind == "proxy":  # hidden latency, friction, backlash, sensor bias
            from xembody.real.proxy import ProxyConfig, ProxyRobot

            return ProxyRobot(self.emb, ProxyConfig(), self.period_s, self.robot_seed, **kwargs)
        raise ValueError(f"parameter robot={self.robot_kind!r}, expected 'sim' or 'proxy'")

    def _scene(self) -> mujoco.MjModel:
        spec = suspended_spec(self.emb) if self.suspended else self.emb.spec()
        boxes = np.asarray(self.obstacles, dtype=float)
        if boxes.size % 4:
            raise ValueError(f"obstacles has {boxes.size} values, expected 4 per box")
        for k, (x, y, hx, hy) in enumerate(boxes.reshape(-1, 4)):
            spec.worldbody.add_geom(
                name=f"obstacle_{k}", type=mujoco.mjtGeom.mjGEOM_BOX,
                pos=[x, y, 0.25], size=[hx, hy, 0.25],
            )  # fmt: skip
        return spec.compile()

    def _setup_scan(self) -> None:
        from xembody.sim.tasks.navigation import NavigateConfig, NavigateTask

        task = NavigateTask(NavigateConfig(), self.emb)
        self.ring_height = task.ring_height
        self.base_id = self.robot.model.body(self.emb.sensors.base_body).id

    # --- callbacks ----------------------------------------------------------------------
    def on_command(self, msg: Float64MultiArray) -> None:
        try:
            targets = check_vector(msg.data, self.robot.num_joints, "joint command")
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        self.robot.send(targets)

    def on_twist(self, msg: Twist | TwistStamped) -> None:
        t = msg.twist if isinstance(msg, TwistStamped) else msg
        try:
            self.twist = check_vector([t.linear.x, t.linear.y, t.angular.z], 3, "cmd_vel")
        except InputError as err:
            self.reporter.reject(err.kind, str(err))

    def on_set_stream(self, req: SetBool.Request, resp: SetBool.Response) -> SetBool.Response:
        self.streaming = bool(req.data)
        resp.success, resp.message = True, f"state stream {'on' if self.streaming else 'off'}"
        self.get_logger().warn(resp.message)
        return resp

    def tick(self) -> None:
        self.timer_stats.tick(time.monotonic())
        if self.wheeled:
            yaw = yaw_of(self.robot.read().base_quat) if self.emb.params.get("omni") else 0.0
            try:
                self.robot.send(twist_to_wheels(self.emb, self.twist, yaw))
            except ValueError as err:
                self.reporter.reject("cmd_vel", str(err))
        state = self.robot.step()
        self.ticks += 1
        if self.streaming and self.ticks % self.publish_every == 0:
            self.publish(state)

    def publish(self, s: RobotState) -> None:
        # stamps advance with the simulation (start time + simulated time): a policy counts
        # its control periods in them even when the physics falls behind the wall clock
        ns = self.stamp0 + int(round(self.robot.data.time * 1e9))
        stamp = Time(sec=ns // 10**9, nanosec=ns % 10**9)
        js = JointState(name=list(s.joint_names))
        js.header.stamp = stamp
        js.position, js.velocity, js.effort = s.q.tolist(), s.dq.tolist(), s.tau.tolist()
        self.pub_js.publish(js)
        if s.imu_quat is not None:
            imu = Imu()
            imu.header.stamp, imu.header.frame_id = stamp, "imu"
            q = imu.orientation
            q.w, q.x, q.y, q.z = (float(x) for x in s.imu_quat)
            g, a = imu.angular_velocity, imu.linear_acceleration
            g.x, g.y, g.z = (float(x) for x in s.imu_gyro)
            if s.imu_acc is not None:
                a.x, a.y, a.z = (float(x) for x in s.imu_acc)
            self.pub_imu.publish(imu)
        if s.base_pos is not None:
            od = Odometry()
            od.header.stamp, od.header.frame_id, od.child_frame_id = stamp, "odom", "base_link"
            p, q = od.pose.pose.position, od.pose.pose.orientation
            p.x, p.y, p.z = (float(x) for x in s.base_pos)
            q.w, q.x, q.y, q.z = (float(x) for x in s.base_quat)
            v, w = od.twist.twist.linear, od.twist.twist.angular
            v.x, v.y, v.z = (float(x) for x in s.base_lin_vel)
            w.x, w.y, w.z = (float(x) for x in s.base_ang_vel)
            self.pub_odom.publish(od)
            if self.wheeled:
                self.pub_scan.publish(self.scan(stamp))

    def scan(self, stamp) -> LaserScan:
        """The rangefinder ring (`ring_scan`) as a LaserScan in the base frame."""
        ranges = ring_scan(
            self.robot.model, self.robot.data, self.base_id, self.ring_height,
            self.scan_rays, self.scan_range,
        )  # fmt: skip
        msg = LaserScan(ranges=ranges.tolist(), range_min=0.0, range_max=float(self.scan_range))
        msg.header.stamp, msg.header.frame_id = stamp, "base_link"
        msg.angle_min, msg.angle_increment = 0.0, float(2 * np.pi / self.scan_rays)
        msg.angle_max = float(msg.angle_increment * (self.scan_rays - 1))
        return msg

    def report(self) -> None:
        publish_json(
            self.pub_status,
            {
                "sim_time_s": self.robot.data.time,
                "wall_time_s": time.monotonic() - self.t0,
                "streaming": self.streaming,
                **self.timer_stats.report(),
                "rejected": dict(self.reporter.counts),
            },
        )


def main(args: list[str] | None = None) -> None:
    run(SimRobotNode, args)


if __name__ == "__main__":
    main()
