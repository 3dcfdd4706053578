"""The zarr dataset: round trip, validation, commit point, resume, the non-blocking recorder."""

import json
import threading

import numpy as np
import pytest

from xembody.models.dataset import FORMAT, Dataset, Feature
from xembody.models.recorder import Recorder

FEATURES = {
    "joint_pos": Feature((3,), "float32"),
    "rgb": Feature((8, 10, 3), "uint8", image=True),
}


def frame(t: int) -> dict:
    return {
        "joint_pos": np.full(3, t, np.float32),
        "rgb": np.full((8, 10, 3), t % 256, np.uint8),
    }


def write_episodes(ds: Dataset, lengths: list[int], t0: int = 0) -> int:
    t = t0
    for n in lengths:
        for _ in range(n):
            ds.add_frame(frame(t))
            t += 1
        ds.save_episode(success=True)
    return t


def test_round_trip_keeps_frames_boundaries_and_metadata(tmp_path):
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30, meta={"body": "arm_s0"})
    write_episodes(ds, [4, 6])
    back = Dataset.open(tmp_path / "d.zarr")
    assert back.num_episodes == 2 and back.num_frames == 10
    assert back.episode_ends.tolist() == [4, 10]
    assert back.meta == {"body": "arm_s0"} and back.fps == 30
    ep = back.episode(1)
    assert ep["joint_pos"][:, 0].tolist() == [4, 5, 6, 7, 8, 9]
    assert ep["rgb"].shape == (6, 8, 10, 3) and ep["rgb"][0, 0, 0, 0] == 4
    assert back.episodes[1]["success"] is True and back.episodes[1]["length"] == 6
    # The diffusion-policy style boundary array is on disk too.
    assert Dataset.open(tmp_path / "d.zarr")._root["meta/episode_ends"][:].tolist() == [4, 10]
    root_attrs = json.loads((tmp_path / "d.zarr" / "zarr.json").read_text())["attributes"]
    assert root_attrs["format"] == FORMAT


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"joint_pos": np.zeros(3)}, "missing \\['rgb'\\]"),
        ({**frame(0), "extra": 1}, "unknown \\['extra'\\]"),
        ({**frame(0), "joint_pos": np.zeros(4)}, "shape \\(4,\\), expected \\(3,\\)"),
        ({**frame(0), "joint_pos": np.array([0, np.nan, 0])}, "joint_pos.*NaN"),
        ({**frame(0), "rgb": np.zeros((8, 10, 3))}, "rgb.*float64, expected uint8"),
    ],
)
def test_bad_frames_are_refused_with_the_key_named(tmp_path, bad, message):
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    with pytest.raises(ValueError, match=message):
        ds.add_frame(bad)
    assert ds.frames_in_flight == 0


def test_uncommitted_frames_are_invisible_and_cut_on_resume(tmp_path):
    path = tmp_path / "d.zarr"
    ds = Dataset.create(path, FEATURES, fps=30)
    t = write_episodes(ds, [5])
    for _ in range(7):  # an episode in flight, flushed to disk but never committed
        ds.add_frame(frame(t))
        t += 1
    ds._flush()
    assert ds._arrays["joint_pos"].shape[0] == 12  # the frames are on disk ...
    reader = Dataset.open(path)
    assert reader.num_frames == 5 and reader.read("joint_pos").shape == (5, 3)  # ... not visible
    resumed = Dataset.open(path, mode="a")  # a new process resumes: the tail is cut away
    assert resumed._arrays["joint_pos"].shape[0] == 5
    write_episodes(resumed, [3], t0=100)
    final = Dataset.open(path)
    assert final.episode_ends.tolist() == [5, 8]
    assert final.episode(1)["joint_pos"][:, 0].tolist() == [100, 101, 102]


def test_read_only_and_missing_stores_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset there"):
        Dataset.open(tmp_path / "nothing.zarr")
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    write_episodes(ds, [2])
    with pytest.raises(ValueError, match="read-only"):
        Dataset.open(tmp_path / "d.zarr").add_frame(frame(0))
    with pytest.raises(FileExistsError):
        Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    with pytest.raises(ValueError, match="image Feature"):
        Feature((4, 4, 3), "float32", image=True)


def test_recorder_writes_in_the_background_and_counts_drops(tmp_path):
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    with Recorder(ds, max_queue=1000) as rec:
        for t in range(20):
            assert rec.add_frame(frame(t))
        rec.end_episode(notes="first")
        rec.flush()
        assert rec.stats()["frames"] == 20 and rec.stats()["episodes"] == 1
    back = Dataset.open(tmp_path / "d.zarr")
    assert back.episodes[0]["notes"] == "first" and back.episodes[0]["dropped_frames"] == 0

    # A writer stalled on a slow disk: the queue fills, later frames are dropped and counted.
    ds = Dataset.open(tmp_path / "d.zarr", mode="a")
    release = threading.Event()
    write = ds.add_frame

    def slow_add_frame(f):
        release.wait(10)
        write(f)

    ds.add_frame = slow_add_frame
    rec = Recorder(ds, max_queue=2)
    results = [rec.add_frame(frame(t)) for t in range(6)]
    assert not all(results) and rec.dropped == results.count(False) >= 3
    release.set()
    rec.end_episode()
    rec.close()
    assert rec.frames + rec.dropped == 6
    back = Dataset.open(tmp_path / "d.zarr")
    assert back.num_episodes == 2
    assert back.episodes[1]["dropped_frames"] == rec.dropped
    assert back.episodes[1]["length"] == rec.frames


# --- crash safety, resume and replay (issue 7) -----------------------------------------------

KILL_WRITER = r"""
import sys
import numpy as np
from xembody.models.dataset import Dataset, Feature
from xembody.models.recorder import Recorder

ds = Dataset.create(sys.argv[1], {
    "joint_pos": Feature((7,), "float32"),
    "rgb_front": Feature((480, 640, 3), "uint8", image=True),
}, fps=30.0, meta={"body": "arm_s0"})
rec = Recorder(ds, max_queue=64)

def frame(ep, t):
    img = np.zeros((480, 640, 3), np.uint8)
    img[:, :, 0], img[t % 480, :, 1] = ep, 255
    return {"joint_pos": np.full(7, 1000 * ep + t, np.float32), "rgb_front": img}

for ep in range(3):
    for t in range(20 + 5 * ep):
        rec.add_frame(frame(ep, t))
    rec.end_episode(success=True, notes=f"episode {ep}")
rec.flush()
t = 0
while True:  # episode 3 never ends: frames keep being flushed to disk until the kill
    rec.add_frame(frame(3, t))
    t += 1
    if t == 60:
        rec.flush()
        print("READY", flush=True)
"""


def test_sigkill_mid_episode_keeps_every_committed_episode_and_the_store_reopens(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import zarr

    path = tmp_path / "killed.zarr"
    proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.5)  # the writer thread is busy flushing image chunks of episode 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # the kill came mid-episode: the arrays hold frames past the committed end
    raw = zarr.open_group(str(path), mode="r")
    assert raw["data/joint_pos"].shape[0] > 20 + 25 + 30

    ds = Dataset.open(path, mode="r")
    assert ds.num_episodes == 3 and ds.episode_ends.tolist() == [20, 45, 75]
    assert [e["notes"] for e in ds.episodes] == ["episode 0", "episode 1", "episode 2"]
    for ep in range(3):
        data = ds.episode(ep)
        n = 20 + 5 * ep
        np.testing.assert_array_equal(data["joint_pos"][:, 0], 1000 * ep + np.arange(n))
        assert (data["rgb_front"][:, :, :, 0] == ep).all()
        rows = data["rgb_front"][:, :, 0, 1].argmax(axis=1)
        np.testing.assert_array_equal(rows, np.arange(n) % 480)

    # resume: the partial episode is cut away, a new one appends after the committed ones;
    # no temporary file of a killed write is left (more edges: tests/test_dataset_crash.py)
    ds = Dataset.open(path, mode="a")
    assert zarr.open_group(str(path), mode="r")["data/joint_pos"].shape[0] == 75
    assert list(path.rglob("*.partial")) == []
    for t in range(10):
        ds.add_frame({"joint_pos": np.full(7, 9000 + t, np.float32),
                      "rgb_front": np.full((480, 640, 3), 9, np.uint8)})  # fmt: skip
    assert ds.save_episode(success=False) == 3
    ds = Dataset.open(path)
    assert ds.episode_ends.tolist() == [20, 45, 75, 85]
    np.testing.assert_array_equal(ds.episode(3)["joint_pos"][:, 0], 9000 + np.arange(10))
    np.testing.assert_array_equal(ds.episode(2)["joint_pos"][:, 0], 2000 + np.arange(30))


def test_replay_reproduces_the_recorded_joint_trajectories(tmp_path):
    from xembody.real.teleop.command import Command
    from xembody.real.teleop.replay import replay_episode
    from xembody.real.teleop.scripted import ScriptedDevice
    from xembody.real.teleop.session import SessionConfig, TeleopSession
    from xembody.sim import bodies

    emb = bodies.sample("arm", seed=1)
    script = [
        (20, Command(ee_twist=[0.0, 0.15, 0.1, 0.0, 0.0, 0.5])),
        (15, Command(ee_twist=[-0.1, 0.0, 0.0, 0.3, 0.0, 0.0], gripper=0.0)),
        (1, Command(events={"save"})),
        (30, Command(ee_twist=[0.1, -0.1, -0.05, 0.0, 0.4, 0.0])),
        (1, Command(events={"save"})),
    ]  # fmt: skip
    out = tmp_path / "demos.zarr"
    cfg = SessionConfig(realtime=False, episode_seconds=10.0)
    TeleopSession(emb, ScriptedDevice(script), out, cfg).run()
    ds = Dataset.open(out)
    assert ds.num_episodes == 2
    for index in range(2):
        result = replay_episode(ds, index)
        moved = np.abs(result.recorded - result.recorded[0]).max()
        assert moved > 0.1  # the joints did move (rad)
        assert result.max_error < 1e-5, (index, result.max_error)
    # replaying different actions diverges: the comparison can fail
    result.recorded = result.recorded + 0.01
    assert result.max_error > 0.009


def test_data_cli_info_plot_and_replay(tmp_path, capsys):
    from xembody.cli import main
    from xembody.real.teleop.command import Command
    from xembody.real.teleop.scripted import ScriptedDevice
    from xembody.real.teleop.session import SessionConfig, TeleopSession
    from xembody.sim import bodies

    out = tmp_path / "demos.zarr"
    script = [(12, Command(ee_twist=[0, 0, 0.1, 0, 0, 0])), (1, Command(events={"save"}))]
    cfg = SessionConfig(realtime=False)
    TeleopSession(bodies.sample("arm", seed=0), ScriptedDevice(script), out, cfg).run()
    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 1 and info["frames"] == 13 and info["meta"]["device"] == "scripted"
    assert main(["data", "plot", str(out), "--keys", "joint_pos", "ee_pos",
                 "--out", str(tmp_path / "p.png")]) == 0  # fmt: skip
    from PIL import Image

    assert Image.open(tmp_path / "p.png").size == (720, 360)
    strip = tmp_path / "r.png"
    assert main(["data", "replay", str(out), "--out", str(strip), "--fps", "25",
                 "--width", "64", "--height", "48"]) == 0  # fmt: skip
    assert "largest joint difference" in capsys.readouterr().out and strip.is_file()
    # the recorded end-effector path, retargeted to another generated arm
    assert main(["data", "retarget", str(out), "--to", "arm", "--to-seed", "2"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["to"] == "arm_s2" and moved["steps"] == 13 and moved["pos_error_max_m"] < 0.01
    assert main(["data", "replay", str(out), "--episode", "5"]) == 2
    assert "has 1 episodes" in capsys.readouterr().err


# --- every writer stores the one meta schema (`write_meta`) -----------------------------------
def assert_meta_schema(meta: dict, emb) -> None:
    from xembody.models.dataset_meta import dataset_body, read_meta, write_meta

    assert read_meta(meta) == meta  # nothing for a reader of older datasets to convert
    assert meta["body"] == write_meta(emb)["body"]  # the body whole
    assert dataset_body(meta).joint_names == emb.joint_names


def test_teacher_demos_store_the_meta_schema(tmp_path):
    import torch

    from xembody.models.export import obs_layout
    from xembody.models.generalist import record_demos
    from xembody.sim import bodies, tasks

    emb = bodies.sample("arm", seed=0)
    cfg = tasks.make_config("reach", episode_seconds=0.1)
    env = tasks.make_env("reach", emb, 2, cfg=cfg, randomize=False, num_threads=1)
    ds = record_demos(env, lambda obs: torch.zeros(2, env.num_actions), tmp_path / "d.zarr", 2)
    assert_meta_schema(ds.meta, emb)
    assert ds.meta["task"] == "reach" and ds.meta["obs_layout"] == obs_layout(env)
    env.close()


def test_teleop_session_stores_the_meta_schema(tmp_path):
    from xembody.real.teleop.command import TeleopCommand
    from xembody.real.teleop.scripted import ScriptedDevice
    from xembody.real.teleop.session import SessionConfig, TeleopSession
    from xembody.sim import bodies

    emb = bodies.sample("arm", seed=0)
    script = [(3, TeleopCommand(gripper=0.0)), (1, TeleopCommand(events={"save"}))]
    cfg = SessionConfig(realtime=False)
    TeleopSession(emb, ScriptedDevice(script), tmp_path / "d.zarr", cfg).run()
    meta = Dataset.open(tmp_path / "d.zarr").meta
    assert_meta_schema(meta, emb)
    assert meta["task"] == "reach" and [t["name"] for t in meta["obs_layout"]]


def test_collect_stores_the_meta_schema(tmp_path):
    from xembody.real.collect import CollectConfig, collect
    from xembody.real.proxy import RobotConfig

    robot = RobotConfig(body="arm")
    collect(robot, CollectConfig(minutes=0.01, episode_s=0.3), tmp_path / "d.zarr")
    meta = Dataset.open(tmp_path / "d.zarr").meta
    assert_meta_schema(meta, robot.make().embodiment)
    assert set(meta["robot_id"]) == {"class", "config", "hash"}


def test_ros_recorder_stores_the_meta_schema(tmp_path):
    import os

    rclpy = pytest.importorskip("rclpy")
    from xembody.real.ros.recorder import RecorderNode
    from xembody.sim import bodies

    path = tmp_path / "d.zarr"
    params = {"dataset": str(path), "body": "arm", "body_seed": "1", "autostart": "false"}
    args = ["--ros-args", *[a for k, v in params.items() for a in ("-p", f"{k}:={v}")]]
    rclpy.init(args=args, domain_id=200 + os.getpid() % 30)  # a domain of its own
    try:
        node = RecorderNode()
        node.close()
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    meta = Dataset.open(path).meta
    assert_meta_schema(meta, bodies.sample("arm", seed=1))
    assert meta["source"] == "ros2 recorder" and meta["topics"]["joint_state_topic"]
