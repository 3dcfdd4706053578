"""Recorder node: chosen topics into an xembody zarr dataset (`xembody.real.dataset`).

    python -m xembody.real.ros.recorder --ros-args -p dataset:=demos.zarr -p body:=arm

At `fps` it takes the latest message of each recorded stream into one frame:
joint_pos / joint_vel / joint_effort (from /joint_states, by name, the body's joint order),
command (Float64MultiArray on `command_topic`, if not empty), imu (quat w,x,y,z, gyro, acc:
10 values, if `imu_topic`), base_pose (x, y, z, qw, qx, qy, qz) and base_twist (vx, vy, vz,
wx, wy, wz, base frame) from `odom_topic`. Frames go through `Recorder`, a writer thread:
the callback never waits for the disk and frames it cannot queue are counted as dropped.
Episodes: ~/start and ~/stop (std_srvs/Trigger; stop commits the episode), ~/discard;
`autostart` starts one at launch. An episode in flight at shutdown is committed with
`complete: false`. ~/status (String, JSON, 1 Hz): recording, frames, dropped, episodes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from xembody.real.dataset import Dataset, Feature, Recorder, write_meta
from xembody.real.ros.common import (
    COMMAND_QOS,
    SENSOR_QOS,
    Reporter,
    declare,
    declare_body,
    declare_topics,
    publish_json,
    run,
    stamp_seconds,
)
from xembody.real.validate import InputError, JointStateCheck


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.path = declare(
            self, "dataset", "recording.zarr", "dataset folder (created or appended)"
        )
        self.fps = declare(self, "fps", 50.0, "frames per second", low=1.0, high=1000.0)
        self.autostart = declare(self, "autostart", True, "start an episode at launch")
        self.max_queue = declare(
            self, "max_queue", 256, "frames queued before dropping", low=1, high=100000
        )
        topics = {
            "joint_state_topic": "/joint_states",
            "command_topic": "/joint_commands",
            "imu_topic": "",
            "odom_topic": "",
        }
        self.topic = declare_topics(self, topics, "; empty: not recorded")

        self.emb = declare_body(self)
        nj = len(self.emb.joint_names)
        features = {
            k: Feature(shape=(nj,), dtype="float32")
            for k in ("joint_pos", "joint_vel", "joint_effort")
        }
        if self.topic["command_topic"]:
            features["command"] = Feature(shape=(nj,), dtype="float32")
        if self.topic["imu_topic"]:
            features["imu"] = Feature(shape=(10,), dtype="float32")
        if self.topic["odom_topic"]:
            features["base_pose"] = Feature(shape=(7,), dtype="float32")
            features["base_twist"] = Feature(shape=(6,), dtype="float32")
        if Path(self.path).exists():
            self.dataset = Dataset.open(self.path, mode="a")
        else:
            meta = write_meta(self.emb, source="ros2 recorder", topics=self.topic)
            self.dataset = Dataset.create(self.path, features, fps=self.fps, meta=meta)
        missing = set(features) ^ set(self.dataset.features)
        if missing:
            raise ValueError(
                f"{self.path}: its features differ from this node's in {sorted(missing)}"
            )
        self.recorder = Recorder(self.dataset, max_queue=self.max_queue)
        self.check = JointStateCheck(self.emb.joint_names, velocity="off")
        self.reporter = Reporter(self)
        self.latest: dict[str, np.ndarray] = {}
        self.recording = False
        self.episode_frames = 0
        self.t_start = 0.0

        self.pub_status = self.create_publisher(String, "~/status", COMMAND_QOS)
        t = self.topic
        self.create_subscription(JointState, t["joint_state_topic"], self.on_joints, SENSOR_QOS)
        if t["command_topic"]:
            self.create_subscription(
                Float64MultiArray, t["command_topic"], self.on_command, COMMAND_QOS
            )
        if t["imu_topic"]:
            self.create_subscription(Imu, t["imu_topic"], self.on_imu, SENSOR_QOS)
        if t["odom_topic"]:
            self.create_subscription(Odometry, t["odom_topic"], self.on_odom, SENSOR_QOS)
        self.create_service(Trigger, "~/start", self.on_start)
        self.create_service(Trigger, "~/stop", self.on_stop)
        self.create_service(Trigger, "~/discard", self.on_discard)
        self.create_timer(1.0 / self.fps, self.tick)
        self.create_timer(1.0, self.report)
        if self.autostart:
            self.start()
        self.get_logger().info(f"recording {sorted(features)} at {self.fps:g} fps into {self.path}")

    # --- streams ------------------------------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        try:
            q, dq, tau = self.check(
                msg.name, msg.position, msg.velocity, msg.effort, stamp_seconds(msg.header.stamp)
            )
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        self.latest.update(joint_pos=q, joint_vel=dq, joint_effort=tau)

    def on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != len(self.emb.joint_names):
            return self.reporter.reject(
                "lengths",
                f"command has {len(msg.data)} values, expected {len(self.emb.joint_names)}",
            )
        self.latest["command"] = np.asarray(msg.data)

    def on_imu(self, msg: Imu) -> None:
        o, g, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        self.latest["imu"] = np.array([o.w, o.x, o.y, o.z, g.x, g.y, g.z, a.x, a.y, a.z])

    def on_odom(self, msg: Odometry) -> None:
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        v, w = msg.twist.twist.linear, msg.twist.twist.angular
        self.latest["base_pose"] = np.array([p.x, p.y, p.z, o.w, o.x, o.y, o.z])
        self.latest["base_twist"] = np.array([v.x, v.y, v.z, w.x, w.y, w.z])

    # --- episodes -----------------------------------------------------------------------
    def start(self) -> None:
        self.recording, self.episode_frames, self.t_start = True, 0, time.time()

    def stop(self, complete: bool = True) -> str:
        if not self.recording:
            return "not recording"
        self.recording = False
        if self.episode_frames == 0:
            return "episode empty: nothing committed"
        self.recorder.end_episode(
            complete=complete, started=self.t_start, frames=self.episode_frames
        )
        return f"episode of {self.episode_frames} frames committed"

    def on_start(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        if self.recording:
            resp.success, resp.message = False, "already recording (call ~/stop first)"
        else:
            self.start()
            resp.success, resp.message = True, "recording"
        return resp

    def on_stop(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        was = self.recording
        resp.message = self.stop()
        resp.success = was
        self.recorder.flush()
        return resp

    def on_discard(self, req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        self.recorder.discard_episode()
        self.recording = False
        resp.success, resp.message = True, "episode discarded"
        return resp

    def tick(self) -> None:
        if not self.recording:
            return
        missing = [k for k in self.dataset.features if k not in self.latest]
        if missing:
            return self.reporter.reject("waiting", f"no frame yet: waiting for {missing}")
        if self.recorder.add_frame(self.latest):
            self.episode_frames += 1

    def report(self) -> None:
        publish_json(self.pub_status, {"recording": self.recording, **self.recorder.stats()})

    def close(self) -> None:
        self.stop(complete=False)
        self.recorder.close()


def main(args: list[str] | None = None) -> None:
    run(RecorderNode, args)


if __name__ == "__main__":
    main()
