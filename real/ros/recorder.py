"""Recorder node: chosen topics into an xembody zarr dataset (`xembody.real.dataset`).

    python -m xembody.real.ros.recorder --ros-args -p dataset:=demos.zarr -p body:=arm \\
        -p cameras:="['left:/camera/left/image_raw:image:640x480']" -p teleop_topic:=/teleop/command

Streams and their features (a topic parameter left empty is not recorded):
- `joint_state_topic` (sensor_msgs/JointState, by name, the body's joint order):
  joint_pos, joint_vel, joint_effort (nj,; 0 where no effort is measured: empty or NaN);
- `command_topic` (std_msgs/Float64MultiArray): command (nj,);
- `imu_topic` (sensor_msgs/Imu): imu (10,) quat w,x,y,z, gyro, acc;
- `odom_topic` (nav_msgs/Odometry): base_pose (x, y, z, qw, qx, qy, qz), base_twist (vx,
  vy, vz, wx, wy, wz, base frame);
- `teleop_topic` (geometry_msgs/TwistStamped, or Twist with `teleop_stamped:=false`; by
  convention /teleop/command, what `xembody teleop --ros` sends): cmd_twist (6,) linear
  then angular, as the teleop session's cmd_twist; `gripper_topic` (std_msgs/Float64, by
  convention /teleop/gripper, 0 closed .. 1 open): cmd_gripper (1,);
- `cameras`, entries `name:topic:kind:WxH` with kind `image` (sensor_msgs/Image: rgb8,
  bgr8, mono8) or `compressed` (sensor_msgs/CompressedImage: jpeg, png, decoded with
  Pillow): rgb_<name> (H, W, 3) uint8 RGB. Other encodings, sizes other than WxH and
  pictures that do not decode are rejected with an error naming them, counted in `rejected`.
- every frame: stamp (1,) float64, the tick's time (s) on this node's clock.

Alignment to the recorder's clock. Every 1 / `fps` s a tick at time t (its scheduled time
on this node's clock: frames are stamped k / fps apart) builds one frame; per stream it
takes
1. the latest message stamped at or before t (latest-before; a message stamped after t
   waits for a later tick). A stream's stamps are its header's (cameras, teleop: the
   publisher's clock must be this machine's or synchronised with it), or its receipt time
   on this node's clock for the streams in `receipt_stamps` (default: joint_states, imu,
   odom, the robot's state: the sim robot node stamps simulated time, which falls behind
   the wall clock when its physics does; [] aligns every stream on its header) and for
   messages without a header (Float64MultiArray, Float64, Twist). A JointState split over
   several messages is as old as its least recently stamped (or received) joint.
2. If that message is older than its stream's `max_age_s` (t - stamp; 0: never too old;
   `stream_max_age_s` entries `stream:seconds` set it per stream: joint_states, command,
   imu, odom, teleop, gripper, rgb_<name>), the stream is stale; with no message at or
   before t it is missing. Either drops the whole frame (no frame is recorded with old
   data), counted as dropped for that reason (missing before stale) and per stream.
3. A complete frame goes to `Recorder`, a writer thread: the callback never waits for the
   disk, and a frame it cannot queue (`max_queue` frames behind) is dropped as "queue"
   (one the dataset refuses, a non-finite reading, as "invalid", with an error log).
4. A tick the timer never ran (the node too busy: rclpy skips the periods it missed) is a
   frame lost as "late", counted from the scheduled times of the ticks that did run.
An episode begins with its first complete frame: ticks before it (streams not yet
arrived) are counted as `waiting`, not as dropped.

Episodes: ~/start and ~/stop (std_srvs/Trigger; stop commits the episode), ~/discard;
`autostart` starts one at launch. An episode in flight at shutdown is committed with
`complete: false`. The episode's metadata holds dropped_frames (queue), dropped_stale,
dropped_missing, dropped_late and stale_streams. ~/status (String, JSON, 1 Hz):
recording, frames, dropped (total) and dropped_queue / _stale / _missing / _late /
_invalid, stale and missing per stream, waiting, age_max_ms per stream (since the last
status), messages received per stream, episodes, rejected per kind.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.timer import TimerInfo
from sensor_msgs.msg import CompressedImage, Image, Imu, JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import Trigger

from xembody.real.dataset import Dataset, Feature, Recorder, write_meta
from xembody.real.recording import (
    DROP_REASONS,
    RECEIPT_STAMPED,
    Stream,
    decode_rgb,
    image_rgb,
    parse_max_ages,
)
from xembody.real.ros.camera import CameraSpec, declare_cameras
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


def with_timer_info(fn: Callable[[TimerInfo], None]) -> Callable[[TimerInfo], None]:
    """`fn` as a timer callback that rclpy hands its TimerInfo (scheduled and actual call
    time): rclpy looks for a parameter annotated TimerInfo, which postponed annotations
    (`from __future__ import annotations`) would hide."""

    def call(info: TimerInfo) -> None:
        fn(info)

    call.__annotations__ = {"info": TimerInfo, "return": None}
    return call


# --- the node -------------------------------------------------------------------------------
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
        self.max_age = declare(
            self, "max_age_s", 0.1, "s: a stream older than this drops the frame (0: no limit)",
            low=0.0, high=3600.0,
        )  # fmt: skip
        overrides = declare(self, "stream_max_age_s", [], "per stream 'stream:seconds'", items=str)
        self.teleop_stamped = declare(self, "teleop_stamped", True, "TwistStamped on teleop_topic")
        topics = {
            "joint_state_topic": "/joint_states",
            "command_topic": "/joint_commands",
            "imu_topic": "",
            "odom_topic": "",
            "teleop_topic": "",
            "gripper_topic": "",
        }
        self.topic = declare_topics(self, topics, "; empty: not recorded")
        self.cameras = declare_cameras(self, [], ("image", "compressed"))

        self.emb = declare_body(self)
        features = self._features()
        names = ["joint_states"] + [
            s for s, k in (("command", "command_topic"), ("imu", "imu_topic"),
                           ("odom", "odom_topic"), ("teleop", "teleop_topic"),
                           ("gripper", "gripper_topic")) if self.topic[k]
        ] + [f"rgb_{c.name}" for c in self.cameras]  # fmt: skip
        ages = parse_max_ages(overrides, self.max_age, names)
        receipt = declare(self, "receipt_stamps", list(RECEIPT_STAMPED), "streams aligned on "
                          "their receipt time, not their header stamp")  # fmt: skip
        self.receipt = {e for e in receipt or [] if e}
        known = {"joint_states", "command", "imu", "odom", "teleop", "gripper", *names}
        if self.receipt - known:
            raise ValueError(f"receipt_stamps {sorted(self.receipt - known)}: expected some "
                             f"of {sorted(known)}")  # fmt: skip
        self.streams = {n: Stream(n, ages[n]) for n in names}
        self.dataset = self._open(features, ages)
        self.recorder = Recorder(self.dataset, max_queue=self.max_queue)
        self.check = JointStateCheck(self.emb.joint_names, velocity="off")
        self.reporter = Reporter(self)  # rejected input
        self.drop_log = Reporter(self)  # dropped and waiting frames
        self.dropped: Counter[str] = Counter()  # by reason, since launch
        self.stale: Counter[str] = Counter()  # by stream
        self.missing: Counter[str] = Counter()
        self.ages: dict[str, float] = {}  # largest age per stream since the last status
        self.waiting = 0
        self.start()  # the episode counters
        self.recording = False

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
        if t["teleop_topic"]:
            kind = TwistStamped if self.teleop_stamped else Twist
            self.create_subscription(kind, t["teleop_topic"], self.on_teleop, COMMAND_QOS)
        if t["gripper_topic"]:
            self.create_subscription(Float64, t["gripper_topic"], self.on_gripper, COMMAND_QOS)
        for cam in self.cameras:
            kind = Image if cam.kind == "image" else CompressedImage
            self.create_subscription(
                kind, cam.topic, lambda m, c=cam: self.on_camera(c, m), SENSOR_QOS
            )
        self.create_service(Trigger, "~/start", self.on_start)
        self.create_service(Trigger, "~/stop", self.on_stop)
        self.create_service(Trigger, "~/discard", self.on_discard)
        self.period_ns, self.last_tick_ns = round(1e9 / self.fps), 0
        self.create_timer(1.0 / self.fps, with_timer_info(self.tick))
        self.create_timer(1.0, self.report)
        if self.autostart:
            self.start()
        self.get_logger().info(f"recording {sorted(features)} at {self.fps:g} fps into {self.path}")

    def _features(self) -> dict[str, Feature]:
        nj = len(self.emb.joint_names)
        features = {k: Feature((nj,)) for k in ("joint_pos", "joint_vel", "joint_effort")}
        if self.topic["command_topic"]:
            features["command"] = Feature((nj,))
        if self.topic["imu_topic"]:
            features["imu"] = Feature((10,))
        if self.topic["odom_topic"]:
            features["base_pose"], features["base_twist"] = Feature((7,)), Feature((6,))
        if self.topic["teleop_topic"]:
            features["cmd_twist"] = Feature((6,))
        if self.topic["gripper_topic"]:
            features["cmd_gripper"] = Feature((1,))
        for cam in self.cameras:
            features[f"rgb_{cam.name}"] = Feature((cam.height, cam.width, 3), "uint8", image=True)
        features["stamp"] = Feature((1,), "float64")
        return features

    def _open(self, features: dict[str, Feature], ages: dict[str, float]) -> Dataset:
        if not Path(self.path).exists():
            meta = write_meta(
                self.emb, source="ros2 recorder", topics=self.topic, max_age_s=ages,
                cameras=[asdict(c) for c in self.cameras], receipt_stamps=sorted(self.receipt),
            )  # fmt: skip
            return Dataset.create(self.path, features, fps=self.fps, meta=meta)
        ds = Dataset.open(self.path, mode="a")
        differ = sorted(
            k for k in set(features) | set(ds.features) if features.get(k) != ds.features.get(k)
        )
        if differ:
            raise ValueError(f"{self.path}: its features differ from this node's in {differ}")
        return ds

    # --- streams ------------------------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def stamp_of(self, stream: str, header: Any) -> float:
        return self.now() if stream in self.receipt else stamp_seconds(header.stamp)

    def on_joints(self, msg: JointState) -> None:
        now = self.now()
        header = "joint_states" not in self.receipt
        stamp, ahead = stamp_seconds(msg.header.stamp), now if header else None
        try:
            q, dq, tau = self.check(msg.name, msg.position, msg.velocity, msg.effort, stamp,
                                    ahead, now)  # fmt: skip
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        oldest = float(self.check.stamp.min()) if header else self.check.oldest
        tau[np.isnan(tau)] = 0.0  # no effort measured (empty or NaN, as broadcasters send)
        self.streams["joint_states"].push(
            oldest, {"joint_pos": q, "joint_vel": dq, "joint_effort": tau}
        )

    def on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != len(self.emb.joint_names):
            return self.reporter.reject(
                "lengths",
                f"command has {len(msg.data)} values, expected {len(self.emb.joint_names)}",
            )
        self.streams["command"].push(self.now(), {"command": np.asarray(msg.data)})

    def on_imu(self, msg: Imu) -> None:
        o, g, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        imu = np.array([o.w, o.x, o.y, o.z, g.x, g.y, g.z, a.x, a.y, a.z])
        self.streams["imu"].push(self.stamp_of("imu", msg.header), {"imu": imu})

    def on_odom(self, msg: Odometry) -> None:
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        v, w = msg.twist.twist.linear, msg.twist.twist.angular
        self.streams["odom"].push(
            self.stamp_of("odom", msg.header),
            {"base_pose": np.array([p.x, p.y, p.z, o.w, o.x, o.y, o.z]),
             "base_twist": np.array([v.x, v.y, v.z, w.x, w.y, w.z])},
        )  # fmt: skip

    def on_teleop(self, msg: Twist | TwistStamped) -> None:
        tw = msg.twist if isinstance(msg, TwistStamped) else msg
        cmd = np.array(
            [tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z]
        )
        if not np.isfinite(cmd).all():
            return self.reporter.reject("nonfinite", f"teleop command {cmd.tolist()} rejected")
        stamp = self.stamp_of("teleop", msg.header) if isinstance(msg, TwistStamped) else self.now()
        self.streams["teleop"].push(stamp, {"cmd_twist": cmd})

    def on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            return self.reporter.reject("nonfinite", f"gripper command {msg.data} rejected")
        self.streams["gripper"].push(self.now(), {"cmd_gripper": np.array([msg.data])})

    def on_camera(self, cam: CameraSpec, msg: Image | CompressedImage) -> None:
        size = (cam.width, cam.height)
        try:
            if isinstance(msg, Image):
                rgb = image_rgb(
                    cam.name, msg.encoding, msg.height, msg.width, msg.step, msg.data, size
                )
            else:
                rgb = decode_rgb(cam.name, msg.format, msg.data, size)
        except InputError as err:
            return self.reporter.reject(err.kind, str(err))
        name = f"rgb_{cam.name}"
        self.streams[name].push(self.stamp_of(name, msg.header), {name: rgb})

    # --- episodes -----------------------------------------------------------------------
    def start(self) -> None:
        self.recording, self.began, self.episode_frames = True, False, 0
        self.episode_drops: Counter[str] = Counter()
        self.episode_stale: Counter[str] = Counter()
        self.t_start = time.time()

    def stop(self, complete: bool = True) -> str:
        if not self.recording:
            return "not recording"
        self.recording = False
        if self.episode_frames == 0:
            return "episode empty: nothing committed"
        self.recorder.end_episode(
            complete=complete, started=self.t_start, frames=self.episode_frames,
            dropped_stale=self.episode_drops["stale"],
            dropped_missing=self.episode_drops["missing"],
            dropped_late=self.episode_drops["late"],
            stale_streams=dict(self.episode_stale),
        )  # fmt: skip
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

    # --- the frame clock ----------------------------------------------------------------
    def tick(self, info: TimerInfo) -> None:
        t_ns = info.expected_call_time.nanoseconds  # the tick's scheduled time
        skipped = round((t_ns - self.last_tick_ns) / self.period_ns) - 1
        self.last_tick_ns = t_ns
        if not self.recording:
            return
        if self.began and skipped > 0:  # rclpy skips the periods a busy executor missed
            self.dropped["late"] += skipped
            self.episode_drops["late"] += skipped
        t = t_ns * 1e-9
        frame: dict[str, np.ndarray] = {}
        bad: dict[str, tuple[str, float]] = {}
        for name, stream in self.streams.items():
            status, values, age = stream.pick(t)
            if values is None:
                bad[name] = (status, age)
                continue
            frame.update(values)
            self.ages[name] = max(self.ages.get(name, 0.0), age)
        if bad:
            return self.drop(bad)
        self.began = True
        frame["stamp"] = np.array([t])
        try:
            if self.recorder.add_frame(frame):  # else dropped: counted by the Recorder
                self.episode_frames += 1
        except ValueError as err:  # a frame the dataset refuses (NaN in a reading)
            self.dropped["invalid"] += 1
            self.drop_log.reject("invalid", f"frame dropped: {err}")

    def drop(self, bad: dict[str, tuple[str, float]]) -> None:
        """A tick without a complete frame: waiting (before the episode's first frame) or
        dropped, missing before stale."""
        what = ", ".join(
            f"{n} {s}" + (f" ({1e3 * a:.0f} ms old, max {1e3 * self.streams[n].max_age:g})"
                          if s == "stale" else "")
            for n, (s, a) in bad.items()
        )  # fmt: skip
        if not self.began:
            self.waiting += 1
            return self.drop_log.reject("waiting", f"no frame yet: waiting for {what}")
        reason = "missing" if any(s == "missing" for s, _ in bad.values()) else "stale"
        self.dropped[reason] += 1
        self.episode_drops[reason] += 1
        for name, (status, _) in bad.items():
            (self.missing if status == "missing" else self.stale)[name] += 1
            if status == "stale":
                self.episode_stale[name] += 1
        self.drop_log.reject(reason, f"frame dropped: {what}")

    def report(self) -> None:
        stats = self.recorder.stats()
        self.dropped["queue"] = stats.pop("dropped")
        publish_json(self.pub_status, {
            "recording": self.recording, **stats,
            "dropped": sum(self.dropped.values()),
            **{f"dropped_{k}": self.dropped[k] for k in DROP_REASONS},
            "stale": dict(self.stale), "missing": dict(self.missing), "waiting": self.waiting,
            "age_max_ms": {k: round(1e3 * v, 1) for k, v in self.ages.items()},
            "received": {k: s.received for k, s in self.streams.items()},
            "rejected": dict(self.reporter.counts),
        })  # fmt: skip
        self.ages = {}

    def close(self) -> None:
        self.stop(complete=False)
        self.recorder.close()


def main(args: list[str] | None = None) -> None:
    run(RecorderNode, args, events=True)


if __name__ == "__main__":
    main()
