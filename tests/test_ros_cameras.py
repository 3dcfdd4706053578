"""Cameras through the recorder node over real rclpy: the sim robot node, the camera
publisher (real/ros/camera.py, pictures that encode their frame counter) and the recorder
as separate processes; what lands in the dataset is checked against what was published."""

from __future__ import annotations

import json

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rosgraph import Graph
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from xembody.real.ros.camera import read_counter
from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS, stamp_seconds

W, H = 64, 48
MAX_AGE = 0.1
# two cameras at 30 Hz: one raw bgr8 (the recorder swaps it to RGB), one jpeg
PUBLISHED = [f"left:/cam/left/image_raw:bgr8:{W}x{H}", f"wrist:/cam/wrist/compressed:jpeg:{W}x{H}"]
RECORDED = [f"left:/cam/left/image_raw:image:{W}x{H}", f"wrist:/cam/wrist/compressed:compressed:{W}x{H}"]  # noqa: E501  # fmt: skip


def strings(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def status(probe, topic: str) -> dict:
    msg = probe.last(topic)
    return json.loads(msg.data) if msg is not None else {}


def start_graph(g: Graph, path, fps: float, **params):
    g.start("sim_robot", body="arm")
    g.start("camera", rate_hz=30.0, cameras=strings(PUBLISHED))
    # the sim robot's timer stalls for 100 ms now and then on the busy 2-core machine
    g.start("recorder", body="arm", dataset=str(path), fps=fps, command_topic="",
            cameras=strings(RECORDED), max_age_s=MAX_AGE,
            stream_max_age_s="['joint_states:0.25']", **params)  # fmt: skip
    probe = g.probe()
    probe.listen("/recorder/status", String, COMMAND_QOS)
    probe.listen("/cam/left/image_raw", Image, SENSOR_QOS)
    probe.listen("/cam/wrist/compressed", CompressedImage, SENSOR_QOS)
    frames = lambda: status(probe, "/recorder/status").get("frames", 0)  # noqa: E731
    assert probe.spin_until(lambda: frames() > 0, 40), g.log("recorder") + g.log("camera")
    return probe


def published_stamps(probe) -> dict[int, float]:
    """{frame counter: stamp} of the raw camera's messages the probe saw."""
    out = {}
    for _, msg in probe.msgs["/cam/left/image_raw"]:
        img = np.frombuffer(msg.data, np.uint8).reshape(H, W, 3)[..., ::-1]
        out[read_counter(img)] = stamp_seconds(msg.header.stamp)
    return out


def silent_ticks(stamps: dict[int, float], fps: float) -> int:
    """Recorder ticks that fall where the camera published nothing for longer than
    MAX_AGE (a frame missed by the probe only makes the bound looser)."""
    over = np.diff(np.sort(list(stamps.values()))) - MAX_AGE
    return int(np.ceil(fps * over[over > 0]).sum()) + int((over > 0).sum())


def test_two_cameras_are_recorded_aligned_without_drops(tmp_path):
    from xembody.real.dataset import Dataset

    path = tmp_path / "cams.zarr"
    with Graph(tmp_path) as g:
        probe = g.probe()  # plays the teleop device: TwistStamped, linear.x counting up
        pub = probe.node.create_publisher(TwistStamped, "/teleop/command", COMMAND_QOS)
        grip = probe.node.create_publisher(Float64, "/teleop/gripper", COMMAND_QOS)
        sent = [0]

        def teleop() -> None:
            sent[0] += 1
            msg = TwistStamped()
            msg.header.stamp = probe.node.get_clock().now().to_msg()
            msg.twist.linear.x, msg.twist.angular.z = float(sent[0]), -1.0
            pub.publish(msg)
            grip.publish(Float64(data=0.25))

        probe.node.create_timer(0.02, teleop)
        probe = start_graph(g, path, fps=50.0, teleop_topic="/teleop/command",
                            gripper_topic="/teleop/gripper")  # fmt: skip
        probe.spin_for(4.0)
        stop = probe.call(Trigger, "/recorder/stop", Trigger.Request())
        assert stop.success and "committed" in stop.message, stop.message
        probe.spin_until(lambda: not status(probe, "/recorder/status").get("recording"), 3)
        report = status(probe, "/recorder/status")
        stamps = published_stamps(probe)
    ds = Dataset.open(path)
    assert ds.num_episodes == 1
    ep = ds.episode(0)
    n = len(ep["stamp"])
    assert n >= 0.6 * 50 * 4.0, n
    assert ep["joint_pos"].shape[0] == n and np.isfinite(ep["joint_pos"]).all()
    cmd = ep["cmd_twist"]
    assert (cmd[:, 0] >= 1).all() and (np.diff(cmd[:, 0]) >= 0).all() and (cmd[:, 5] == -1).all()
    assert (ep["cmd_gripper"] == 0.25).all()
    t = ep["stamp"][:, 0]
    for cam in ("left", "wrist"):
        rgb = ep[f"rgb_{cam}"]
        assert rgb.shape == (n, H, W, 3) and rgb.dtype == np.uint8
        counters = np.array([read_counter(img) for img in rgb])
        assert counters[0] > 0 and (np.diff(counters) >= 0).all(), counters
        # a 30 Hz camera sampled at 50 Hz: most frames are new, none is skipped twice over
        assert counters[-1] - counters[0] >= 0.6 * 30 * (t[-1] - t[0]), counters
        blue = rgb[:, : 2 * H // 3, :, 2]  # the counter cells' blue is 0: RGB order kept
        assert (blue == 0).all() if cam == "left" else blue.mean() < 20, blue.mean()
    # latest-before, within max_age: every recorded picture was stamped before its tick
    left = np.array([read_counter(img) for img in ep["rgb_left"]])
    seen = [(k, stamps[c]) for k, c in enumerate(left) if c in stamps]
    assert len(seen) > n // 2
    ages = np.array([t[k] - s for k, s in seen])
    assert (ages >= 0).all() and (ages <= MAX_AGE).all(), ages
    # stamped exactly one period apart, except where a tick was dropped
    gaps = np.round(np.diff(t) * 50.0).astype(int)
    assert (gaps >= 1).all() and (gaps - 1).sum() <= report["dropped"], gaps
    # On a quiet machine no frame is dropped. On the shared 2-core CI machine two stalls
    # show: the camera's own timer (a gap in its stamps longer than max_age: the ticks in it
    # are dropped as stale) and the recorder's (periods its timer skipped: "late"). Bound:
    # the ticks in the camera's gaps plus 2 % of the frames for the recorder's stalls.
    meta, info = ds.episodes[0], json.dumps({"episode": ds.episodes[0], "status": report})
    assert meta["dropped_frames"] == meta["dropped_missing"] == report["dropped_missing"] == 0
    assert meta["dropped_stale"] + meta["dropped_late"] == report["dropped"], info
    assert report["dropped"] <= silent_ticks(stamps, 50.0) + max(2, 0.02 * n), info
    assert report["frames"] == n and not report["rejected"], report


def test_a_silent_camera_drops_frames_as_stale(tmp_path):
    from xembody.real.dataset import Dataset

    path = tmp_path / "stale.zarr"
    with Graph(tmp_path) as g:
        probe = start_graph(g, path, fps=30.0)
        probe.spin_for(1.5)
        stamps = published_stamps(probe)
        g.kill("camera")
        probe.msgs["/recorder/status"].clear()
        probe.spin_for(2.5)
        report = status(probe, "/recorder/status")
        assert probe.call(Trigger, "/recorder/stop", Trigger.Request()).success
        stamps.update(published_stamps(probe))
    assert report["dropped_stale"] >= 30, report
    assert report["stale"]["rgb_left"] > 0 and report["stale"]["rgb_wrist"] > 0, report
    assert report["dropped_queue"] == 0, report
    ds = Dataset.open(path)
    ep, meta = ds.episode(0), ds.episodes[0]
    assert meta["dropped_stale"] >= report["dropped_stale"], meta  # and those until ~/stop
    t = ep["stamp"][:, 0]
    last = max(stamps.values())  # the camera's last picture (the probe saw it or one close)
    assert t[-1] <= last + MAX_AGE + 0.05  # nothing recorded with old pictures
    counters = np.array([read_counter(img) for img in ep["rgb_left"]])
    assert (np.diff(counters) >= 0).all()


# --- without ROS traffic: the conversions and the alignment rule ---------------------------
def test_pictures_convert_to_rgb_and_bad_ones_are_named():
    from xembody.real.recording import decode_rgb, image_rgb
    from xembody.real.ros.camera import encode, parse_cameras, pattern
    from xembody.real.validate import InputError

    img = pattern(77, H, W)
    for enc in ("rgb8", "bgr8", "mono8"):
        data, step = encode(img, enc)
        out = image_rgb("c", enc, H, W, step, bytes(data), (W, H))
        assert out.shape == (H, W, 3) and read_counter(out) == 77
        assert np.array_equal(out, img) if enc != "mono8" else (out[..., 1] == img[..., 0]).all()
    padded = np.zeros((H, 3 * W + 8), np.uint8)  # rows padded beyond width x 3 (step)
    padded[:, : 3 * W] = img.reshape(H, -1)
    assert np.array_equal(image_rgb("c", "rgb8", H, W, 3 * W + 8, padded.tobytes(), (W, H)), img)
    for fmt in ("jpeg", "png"):
        assert read_counter(decode_rgb("c", fmt, bytes(encode(img, fmt)[0]), (W, H))) == 77
    bad = [
        (lambda: image_rgb("c", "rgba8", H, W, 4 * W, bytes(4 * W * H), (W, H)), "'rgba8'"),
        (lambda: image_rgb("c", "rgb8", H, W, 3 * W, bytes(data)[:10], (W, H)), "step"),
        (lambda: image_rgb("c", "rgb8", H, W, 3 * W, bytes(3 * W * H), (W + 1, H)), "65x48"),
        (lambda: decode_rgb("c", "16UC1; compressedDepth png", b"x", (W, H)), "compressedDepth"),
        (lambda: decode_rgb("c", "jpeg", b"not a picture", (W, H)), "does not decode"),
    ]
    for call, words in bad:
        with pytest.raises(InputError, match=words):
            call()
    with pytest.raises(ValueError, match="name:topic:kind:WxH"):
        parse_cameras(["left:/cam:image"], ("image", "compressed"))
    with pytest.raises(ValueError, match="kind one of"):
        parse_cameras(["left:/cam:rgb8:64x48"], ("image", "compressed"))


def test_latest_before_and_max_age():
    from xembody.real.recording import Stream, parse_max_ages

    s = Stream("cam", max_age=0.1)
    assert s.pick(1.0)[0] == "missing"
    for stamp in (0.90, 0.95, 1.05):  # the last one is stamped after the tick at 1.0
        s.push(stamp, {"v": np.array([stamp])})
    status, values, age = s.pick(1.0)
    assert status == "ok" and values["v"][0] == 0.95 and age == pytest.approx(0.05)
    assert s.pick(1.10)[1]["v"][0] == 1.05
    assert s.pick(1.2)[0] == "stale" and s.pick(0.5)[0] == "missing"
    assert Stream("t", max_age=0.0, keep=2).pick(0)[0] == "missing"
    ages = parse_max_ages(["teleop:0.5", "rgb_left:0"], 0.1, ["joint_states", "teleop", "rgb_left"])
    assert ages == {"joint_states": 0.1, "teleop": 0.5, "rgb_left": 0.0}
    with pytest.raises(ValueError, match="rgb_right"):
        parse_max_ages(["rgb_right:1"], 0.1, ["joint_states"])
