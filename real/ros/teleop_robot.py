"""`RosSide`: the robot side of a teleoperation session on a ROS 2 robot (the contract is in
`xembody.real.teleop.side`).

    side = RosSide(emb, session_cfg)                 # checks /joint_states, connects
    TeleopSession(emb, device, "demos.zarr", session_cfg, side=side).run()

The robot is a `RosRobot` (`xembody.real.ros.robot_client`): joint states in (by name),
joint targets out as std_msgs/Float64MultiArray on `command_topic`, the safety node's input
(/policy/commands; the safety node bounds them and forwards them to the robot's controller,
and the robot refuses to start without it). A step is one control period of the robot's
own time (its joint state stamps); `late_steps` counts the session's steps that came more
than two control periods after the previous one (a loop starved of CPU: the robot held
that action longer than one period, which a replay in sim does not). Each episode begins
with the robot moved slowly to the home pose (`RosRobot.reset`, to within `home_tolerance`
rad) and held there until the safety node has finished its soft start (its ~/status mode
"active"). With `recorder` (a recorder node's name, e.g. /recorder) the recorder node's
episodes follow the session's: ~/start once the robot is home, ~/stop when the episode is
saved, ~/discard when it is discarded or the session ends in the middle of one
(std_srvs/Trigger).

The task (default `reach`) is the same as in sim but its physics is not stepped: its env
draws each episode's target (the teacher device reads it), lays out the policy observation
(`ObservationBuilder`, built from the measured joints as the policy node builds it) and maps
the action to joint targets (`ActionMap`: the task's joints at default + action_scale *
clip(a), the others, e.g. the gripper, at their default), so a recording replays in sim and
trains a policy like one recorded in sim. Success is the task's: the end effector (forward
kinematics of the measured joints) within the task's tolerances of the target for
`success_hold_s`.

Before connecting, the joint names heard on the joint state topic are checked against the
body's: a body joint the robot does not publish is an error naming the missing and the
extra joints; extra joints alone (a gripper the body leaves out) are logged.

Every step the device's command is published: its end-effector twist on `teleop_topic`
(/teleop/command) as a geometry_msgs/TwistStamped (linear m/s, angular rad/s, world frame
"world", stamped with this node's clock when sent), which the recorder node records as
`cmd_twist` (its `teleop_topic` parameter), and its gripper opening on `gripper_topic`
(/teleop/gripper, std_msgs/Float64, 0 closed .. 1 open; 1 when the device gives none, as
the session records `cmd_gripper`; empty: not published). Absolute pose commands (the
teacher, a WebXR controller) are not on these topics; the session's dataset has the
target they set (`ee_target_pos`, `ee_target_quat`).
"""

from __future__ import annotations

import time
from typing import Any

import mujoco
import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from xembody.real.observation import ActionMap, Command, ObservationBuilder, follow_joint_equalities
from xembody.real.robot import RobotState
from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS
from xembody.real.ros.robot_client import RosRobot
from xembody.real.teleop.command import TeleopCommand
from xembody.real.teleop.side import Reading, check_joint_names, task_config
from xembody.sim.bodies.embodiment import Embodiment


class RosSide:
    paced = True  # a step waits for the robot's next control period

    def __init__(
        self,
        emb: Embodiment,
        cfg: Any,
        *,
        joint_state_topic: str = "/joint_states",
        command_topic: str = "/policy/commands",
        teleop_topic: str = "/teleop/command",
        gripper_topic: str = "/teleop/gripper",
        domain_id: int | None = None,
        connect_timeout_s: float = 20.0,
        home_tolerance: float = 0.03,
        home_timeout_s: float = 10.0,
        recorder: str = "",
    ):
        """`cfg`: the session's SessionConfig (task, episode length, seed). `recorder`: a
        recorder node's name (/recorder), whose episodes then follow the session's."""
        from xembody.models.export import policy_contract
        from xembody.sim import tasks

        heard = heard_joint_names(joint_state_topic, domain_id, connect_timeout_s)
        extra = check_joint_names(emb.joint_names, heard, joint_state_topic)
        self.emb = emb
        self.home_timeout_s = home_timeout_s
        self.task_cfg = task_config(cfg)
        self.env = tasks.make_env(cfg.task, emb, 1, cfg=self.task_cfg, seed=cfg.seed, num_threads=1)
        contract = policy_contract(self.env)
        self.observe = ObservationBuilder(contract, emb)
        self.actions = ActionMap(contract, emb)
        self.topics = {"joint_state": joint_state_topic, "command": command_topic,
                       "teleop": teleop_topic, "gripper": gripper_topic}  # fmt: skip
        m = self.env.sim.model
        self._data = mujoco.MjData(m)
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in emb.joint_names])
        self._site = m.site(emb.sensors.ee_site).id
        self.robot = None
        try:
            self.robot = RosRobot(
                emb, control_dt=1.0 / self.task_cfg.control_hz,
                joint_state_topic=joint_state_topic, command_topic=command_topic,
                domain_id=domain_id, connect_timeout_s=connect_timeout_s,
                home_tolerance=home_tolerance, home_timeout_s=home_timeout_s,
            )  # fmt: skip
            self._connect(extra, recorder, connect_timeout_s)
        except BaseException:
            if self.robot is not None:
                self.robot.close()
            self.env.close()
            raise
        self._episodes = 0
        self.late_steps = 0  # session steps that took more than two control periods
        self._max_steps = int(self.env.max_episode_length)
        self._hold_steps = round(self.task_cfg.success_hold_s * self.task_cfg.control_hz)

    # --- the robot-side contract ----------------------------------------------------------
    def begin(self) -> None:
        """Home the robot (slowly, through the safety node) and hold it there until the
        safety node's soft start is over (its mode "active"), so that the episode's commands
        reach the robot unramped; then start the recorder node's episode."""
        if self._episodes:
            self.env.reset()  # the task's next target (the first was drawn when it was made)
        self._episodes += 1
        self.robot.reset()
        deadline = time.monotonic() + self.home_timeout_s
        while self.robot.safety.get("mode") != "active" and time.monotonic() < deadline:
            self.robot.send(self.emb.default_pose)
            self.robot.step()
        self.steps = self.held = 0
        self.success = False
        self.last_action = np.zeros(self.env.num_actions)
        if self._clients:
            if not self._recorder_call("start").success:  # recording since its launch
                self._recorder_call("discard")
                self._recorder_call("start")
            self._recording = True

    def read(self) -> Reading:
        s = self.robot.read()
        pos, quat = self.target()
        cmd = Command(target_pos=pos, target_quat=quat)
        obs = self.observe(s, cmd, self.last_action)
        return Reading(self._qpos(s), s.q, s.dq, obs)

    def observations(self):
        import torch
        from tensordict import TensorDict

        obs = torch.from_numpy(self.read().obs)[None]
        return TensorDict({"policy": obs}, batch_size=[1])

    def target(self) -> tuple[np.ndarray, np.ndarray]:
        task = self.env.task
        return task.target_pos[0].numpy().astype(float), task.target_quat[0].numpy().astype(float)

    def publish(self, cmd: TeleopCommand) -> None:
        msg, (vx, vy, vz, wx, wy, wz) = self._twist, (float(x) for x in cmd.ee_twist)
        msg.header.stamp = self.robot.node.get_clock().now().to_msg()
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = vx, vy, vz
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = wx, wy, wz
        self.pub_twist.publish(msg)
        if self.pub_gripper is not None:
            self.pub_gripper.publish(Float64(data=1.0 if cmd.gripper is None else cmd.gripper))

    def step(self, action: np.ndarray) -> dict[str, bool] | None:
        clip = self.actions.clip
        self.last_action = np.clip(np.asarray(action, dtype=float), -clip, clip)
        self.robot.send(self.actions.targets(self.last_action))
        overruns = self.robot.overruns
        s = self.robot.step()
        self.late_steps += self.robot.overruns - overruns
        self.steps += 1
        self.held = self.held + 1 if self._in_tolerance(s) else 0
        self.success |= self.held >= self._hold_steps
        if self.steps < self._max_steps:
            return None
        return {"success": self.success}  # time-out: the robot holds until `end`, `begin`

    def end(self, keep: bool) -> bool:
        if self._recording:
            self._recorder_call("stop" if keep else "discard")
            self._recording = False
        return self.success

    def meta(self) -> dict[str, Any]:
        return {"source": "ros", "robot": "xembody.real.ros.robot_client:RosRobot",
                "topics": dict(self.topics)}  # fmt: skip

    def close(self) -> None:
        """Drop the recorder node's episode in flight (the session drops its own), stop
        commanding (the safety node then holds the robot) and leave ROS."""
        try:
            if self._recording:
                self._recorder_call("discard")
        finally:
            self.robot.close()
            self.env.close()

    # --- pieces ---------------------------------------------------------------------------
    def _connect(self, extra: list[str], recorder: str, timeout: float) -> None:
        """The teleop topics and the recorder node's services on the robot's node."""
        node = self.robot.node
        if extra:
            node.get_logger().warn(
                f"{self.topics['joint_state']} also has joints {extra}, which the body lacks: "
                "not driven"
            )
        self.pub_twist = node.create_publisher(TwistStamped, self.topics["teleop"], COMMAND_QOS)
        self.pub_gripper = None
        if self.topics["gripper"]:
            self.pub_gripper = node.create_publisher(Float64, self.topics["gripper"], COMMAND_QOS)
        self._twist = TwistStamped()
        self._twist.header.frame_id = "world"
        self.recorder, self._clients, self._recording = recorder, {}, False
        for service in ("start", "stop", "discard") if recorder else ():
            client = node.create_client(Trigger, f"{recorder}/{service}")
            if not client.wait_for_service(timeout_sec=timeout):
                raise RuntimeError(
                    f"no service {recorder}/{service} within {timeout:g} s: is the recorder "
                    "node (python -m xembody.real.ros.recorder) running under that name?"
                )
            self._clients[service] = client

    def _recorder_call(self, service: str):
        """Call the recorder node's ~/<service> (std_srvs/Trigger) and wait for its answer."""
        future = self._clients[service].call_async(Trigger.Request())
        end = time.monotonic() + 5.0
        while not future.done() and time.monotonic() < end:
            self.robot.executor.spin_once(timeout_sec=0.005)
        if not future.done():
            raise RuntimeError(f"{self.recorder}/{service} did not answer within 5 s")
        return future.result()

    def _qpos(self, s: RobotState) -> np.ndarray:
        """The task model's qpos at the measured joints (tied joints follow their leader)."""
        m, d = self.env.sim.model, self._data
        d.qpos[:] = m.qpos0
        d.qpos[self._qadr] = s.q
        follow_joint_equalities(m, d)
        return d.qpos.copy()

    def _in_tolerance(self, s: RobotState) -> bool:
        """The end effector within the task's success tolerances of the target."""
        m, d = self.env.sim.model, self._data
        d.qpos[:] = self._qpos(s)
        mujoco.mj_kinematics(m, d)
        pos, quat = self.target()
        ee_quat, inv, rel, rotvec = np.zeros(4), np.zeros(4), np.zeros(4), np.zeros(3)
        mujoco.mju_mat2Quat(ee_quat, d.site_xmat[self._site])
        mujoco.mju_negQuat(inv, ee_quat)
        mujoco.mju_mulQuat(rel, quat, inv)
        mujoco.mju_quat2Vel(rotvec, rel, 1.0)
        cfg = self.task_cfg
        pos_err = np.linalg.norm(pos - d.site_xpos[self._site])
        return bool(pos_err < cfg.success_pos and np.linalg.norm(rotvec) < cfg.success_rot)


def heard_joint_names(
    topic: str, domain_id: int | None, timeout_s: float, window_s: float = 0.3
) -> set[str]:
    """The joint names published on `topic` (sensor_msgs/JointState) within `window_s` of
    the first message (ros2_control may split the joints over several messages);
    RuntimeError when nothing arrives within `timeout_s`."""
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = Node("xembody_teleop_joint_names", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    names: set[str] = set()
    first: list[float] = []

    def on_joints(msg: JointState) -> None:
        names.update(msg.name)
        if not first:
            first.append(time.monotonic())

    try:
        node.create_subscription(JointState, topic, on_joints, SENSOR_QOS)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not (first and time.monotonic() - first[0] > window_s):
            executor.spin_once(timeout_sec=0.01)
    finally:
        executor.shutdown(timeout_sec=0.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    if not names:
        raise RuntimeError(
            f"no joint state on {topic} within {timeout_s:g} s: is the robot's driver (or "
            "python -m xembody.real.ros.sim_robot) running, on this ROS_DOMAIN_ID?"
        )
    return names
