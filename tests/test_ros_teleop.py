"""Teleoperation of a ROS robot: scripted devices drive the sim robot node through the ROS
graph (real rclpy over Fast DDS), the safety node between the session and the robot; the
session records a dataset whose end effector follows the scripted target and which
replays in sim."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph import Graph
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, String

from xembody.cli import main
from xembody.models.dataset import Dataset
from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS
from xembody.real.ros.teleop_robot import RosSide
from xembody.real.teleop.command import TeleopCommand
from xembody.real.teleop.replay import replay_episode
from xembody.real.teleop.scripted import ScriptedDevice
from xembody.real.teleop.session import SessionConfig, TeleopSession
from xembody.real.teleop.side import check_joint_names
from xembody.sim import bodies

# every teleop command the session publishes, kept until the probe spins after the session
ALL = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                 depth=1000)  # fmt: skip
SPEED = 0.1  # m/s, the scripted end-effector twist
MOVE, SETTLE = 25, 20  # control steps moving, then holding still, per episode
# The safety node's watchdogs count wall-clock time; on a loaded 2-core machine the sim
# robot node runs at a fraction of real time, so a control period of its time can take
# over the default 0.1 s and every such gap would mean a hold and a new 1 s soft start.
WATCHDOG = {"command_timeout_s": 0.5, "state_timeout_s": 0.25}
# measured on the loaded 2-core VM (2026-12-03): see the test's printout
SETTLED_ERROR = 0.005  # m, end effector to target after SETTLE steps still
MOVING_ERROR = 0.025  # m, end effector to target while it moves
# rad, the sim replay's joints against the recorded ones (10 episodes: 0.018-0.034, most
# of it the start pose: homed to 0.03 rad and sagging under gravity, where the replay starts
# exactly at home). The replay steps each action for one control period; a session step
# that came late (the loop starved of CPU: RosSide.late_steps) held its action for longer on
# the robot, and one such run replayed within 0.095 rad: then the bound is 3x.
REPLAY_ERROR = 0.05


def _script() -> list[tuple[int, TeleopCommand]]:
    up = TeleopCommand(ee_twist=[0, 0, SPEED, 0, 0, 0], gripper=1.0)
    forward = TeleopCommand(ee_twist=[SPEED, 0, 0, 0, 0, 0], gripper=0.0)
    still = TeleopCommand()
    return [
        (MOVE, up), (SETTLE, still), (1, TeleopCommand(events={"save"})),  # episode 0
        (10, forward), (1, TeleopCommand(events={"discard"})),  # dropped
        (MOVE, forward), (SETTLE, still), (1, TeleopCommand(events={"save"})),  # episode 1
    ]  # then the script runs out: quit  # fmt: skip


def test_a_scripted_device_teleoperates_the_ros_robot_through_the_safety_node(tmp_path):
    emb = bodies.sample("arm", seed=0)
    out = tmp_path / "teleop.zarr"
    t0 = time.monotonic()
    with Graph(tmp_path) as g:
        g.start("sim_robot", body="arm")
        g.start("safety", body="arm", **WATCHDOG)
        probe = g.probe()
        probe.listen("/teleop/command", TwistStamped, ALL)
        probe.listen("/teleop/gripper", Float64, ALL)
        probe.listen("/safety/status", String, COMMAND_QOS)
        cfg = SessionConfig(episode_seconds=10.0)
        side = RosSide(emb, cfg, domain_id=g.domain)
        assert probe.matched("/teleop/command", "/teleop/gripper")  # else it misses the start
        t1 = time.monotonic()
        with probe.spinning():
            result = TeleopSession(emb, ScriptedDevice(_script()), out, cfg, side=side).run()
        t2 = time.monotonic()
        probe.spin_for(0.5)
        status = json.loads(probe.last("/safety/status").data)
        twists = [m.twist for _, m in probe.msgs["/teleop/command"]]
        grippers = [m.data for _, m in probe.msgs["/teleop/gripper"]]
        # the command line, with the teacher device: one episode of the task's own target
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["teleop", "--ros", "--domain-id", str(g.domain), "--device", "teacher",
                         "--episodes", "1", "--seconds", "3",
                         "--out", str(tmp_path / "t.zarr")])  # fmt: skip
        assert code == 0
        teacher = json.loads(buf.getvalue().strip().splitlines()[-1])
    print(f"start-up {t1 - t0:.1f} s, session {t2 - t1:.1f} s, teacher run "
          f"{time.monotonic() - t2:.1f} s; safety {status}")  # fmt: skip

    episode = MOVE + SETTLE + 1
    assert result["saved"] == 2 and result["discarded"] == 1 and result["dropped"] == 0, result
    # none refused; after the session stopped commanding, the safety node holds the robot
    assert status["rejected"] == {} and status["mode"] == "hold", status
    # the device's command went out on /teleop/command and /teleop/gripper, every step
    assert len(twists) == len(grippers) == result["steps"], (len(twists), result["steps"])
    assert twists[0].linear.z == pytest.approx(SPEED) and grippers[0] == 1.0
    assert twists[-MOVE - SETTLE - 2].linear.x == pytest.approx(SPEED)  # episode 1: forward
    assert grippers[-MOVE - SETTLE - 2] == 0.0

    ds = Dataset.open(out)
    assert ds.num_episodes == 2 and ds.episode_ends.tolist() == [episode, 2 * episode]
    assert ds.meta["source"] == "ros" and ds.meta["body"]["name"] == "arm_s0"
    assert [e["end_reason"] for e in ds.episodes] == ["operator", "operator"]
    for k, axis in enumerate((2, 0)):  # up, then forward
        ep = ds.episode(k)
        target, ee = ep["ee_target_pos"], ep["ee_pos"]
        err = np.linalg.norm(ee - target, axis=1)
        moved = ee[-1, axis] - ee[0, axis]
        print(f"episode {k}: target moved {target[-1, axis] - target[0, axis]:.4f} m, hand "
              f"{moved:.4f} m; error moving max {err[:MOVE].max():.4f} m, settled "
              f"{err[-1]:.4f} m")  # fmt: skip
        # the target moved SPEED for MOVE steps (frame t holds the target after its command)
        dt = 1.0 / ds.fps
        assert target[MOVE - 1, axis] - target[0, axis] == pytest.approx(
            (MOVE - 1) * SPEED * dt, abs=1e-5
        )
        assert moved > 0.8 * MOVE * SPEED * dt  # the hand followed it ...
        assert err[:MOVE].max() < MOVING_ERROR and err[-1] < SETTLED_ERROR  # ... closely
        replay = replay_episode(ds, k)
        print(f"episode {k}: replay in sim, largest joint difference {replay.max_error:.4f} "
              f"rad ({side.late_steps} late steps)")  # fmt: skip
        assert replay.max_error < REPLAY_ERROR * (3 if side.late_steps else 1)

    t = Dataset.open(tmp_path / "t.zarr")
    assert teacher["saved"] == 1 and t.num_episodes == 1 and t.meta["device"] == "teacher"
    info = t.episodes[0]
    ep = t.episode(0)
    final = np.linalg.norm(ep["ee_pos"][-1] - np.array(info["target_pos"]))
    print(f"teacher: {len(ep['action'])} steps, success {info['success']}, final {final:.4f} m")
    assert len(ep["action"]) == 150 and info["end_reason"] == "time_out"
    assert final < 0.02 and info["success"]


def test_a_body_whose_joints_the_robot_lacks_is_refused_naming_them(tmp_path):
    with pytest.raises(ValueError, match=r"joints \['joint7'\] are not on /joint_states.*extra "
                       r"there: \['finger'\]"):  # fmt: skip
        check_joint_names(["joint1", "joint7"], ["joint1", "finger"], "/joint_states")
    assert check_joint_names(["joint1"], ["joint1", "finger"], "/joint_states") == ["finger"]
    with Graph(tmp_path) as g:
        g.start("sim_robot", body="arm", body_seed=1)  # 6 arm joints; arm_s0 has 7
        g.probe()
        with pytest.raises(ValueError, match=r"body's joints \['joint7'\] are not on "
                           r"/joint_states \(it publishes \['gripper', 'joint1'"):  # fmt: skip
            RosSide(bodies.sample("arm", seed=0), SessionConfig(), domain_id=g.domain)
        # the command line says it in one line, exit code 2, as for any bad input
        code, err = _cli(["--domain-id", str(g.domain), "--out", str(tmp_path / "x.zarr")])
        assert code == 2 and "body's joints ['joint7'] are not on /joint_states" in err, err
    # no robot at all: one line too
    code, err = _cli(["--domain-id", str(g.domain), "--connect-timeout", "1",
                      "--out", str(tmp_path / "x.zarr")])  # fmt: skip
    assert code == 2 and "no joint state on /joint_states within 1 s" in err, err
    assert "Traceback" not in err and not (tmp_path / "x.zarr").exists()


def _cli(args: list[str]) -> tuple[int, str]:
    """`xembody teleop --ros --device teacher ARGS`: exit code and standard error."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["teleop", "--ros", "--device", "teacher", *args])
    return code, err.getvalue()


def _strings(values: list[str]) -> str:
    """A ROS string-array parameter on the command line (the entries hold colons)."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def test_teleop_with_two_cameras_and_the_recorder_node_in_the_graph(tmp_path):
    """The issue's combined check: the scripted device drives the sim robot (safety node in
    the loop) while the recorder node records two 30 Hz camera topics (real/ros/camera.py),
    the joint states, the safety node's output and the teleop command, its episodes
    following the session's (--recorder)."""
    from xembody.real.ros.camera import read_counter

    size = "64x48"
    published = [f"left:/cam/left/image_raw:rgb8:{size}",
                 f"wrist:/cam/wrist/compressed:jpeg:{size}"]  # fmt: skip
    recorded = [f"left:/cam/left/image_raw:image:{size}",
                f"wrist:/cam/wrist/compressed:compressed:{size}"]  # fmt: skip
    emb = bodies.sample("arm", seed=0)
    out, cams = tmp_path / "teleop.zarr", tmp_path / "cams.zarr"
    load = os.getloadavg()[0]
    with Graph(tmp_path) as g:
        g.start("sim_robot", body="arm")
        g.start("safety", body="arm", **WATCHDOG)
        g.start("camera", rate_hz=30.0, cameras=_strings(published))
        # the sim robot stamps simulated time, behind the wall clock when its physics is:
        # its joint states are aligned on their receipt (as tests/test_ros_cameras.py does)
        g.start("recorder", body="arm", dataset=str(cams), fps=30.0, autostart=False,
                teleop_topic="/teleop/command", cameras=_strings(recorded),
                receipt_stamps="['joint_states']",
                stream_max_age_s="['joint_states:0.25', 'teleop:0.25']")  # fmt: skip
        probe = g.probe()
        probe.listen("/recorder/status", String, COMMAND_QOS)
        probe.listen("/cam/left/image_raw", Image, SENSOR_QOS)
        # the cameras first: an episode begins with the recorder's first complete frame
        assert probe.spin_until(lambda: probe.last("/cam/left/image_raw") is not None, 40)
        cfg = SessionConfig(episode_seconds=10.0)
        side = RosSide(emb, cfg, domain_id=g.domain, recorder="/recorder")
        with probe.spinning():
            result = TeleopSession(emb, ScriptedDevice(_script()), out, cfg, side=side).run()
        status = lambda: json.loads(probe.last("/recorder/status").data)  # noqa: E731
        done = lambda: status()["episodes"] == 2 and not status()["recording"]  # noqa: E731
        probe.spin_until(lambda: probe.last("/recorder/status") is not None and done(), 5)
        report = status()
    print(f"load {load:.1f}; recorder {report}")
    assert result["saved"] == 2 and result["discarded"] == 1, result
    ds = Dataset.open(cams)
    assert ds.num_episodes == 2, (ds.episodes, report)  # the saved two; the discarded one not
    assert {"rgb_left", "rgb_wrist", "joint_pos", "command", "cmd_twist"} <= set(ds.features)
    frames = np.diff([0, *ds.episode_ends.tolist()])
    assert (frames >= 25).all(), frames  # 46 control steps (0.92 s) at 30 fps, or more
    for k, axis in enumerate((2, 0)):  # the twist the device sent, recorded in its episode
        ep = ds.episode(k)
        assert np.isclose(ep["cmd_twist"][:, axis], SPEED).sum() >= 10, ep["cmd_twist"]
        counters = [read_counter(img) for img in ep["rgb_left"]]
        assert np.all(np.diff(counters) >= 0) and counters[-1] > counters[0]
    # the writer kept up and every stream arrived; a frame is dropped only when a stream
    # stalled past its max age: never on a machine that is not overloaded (nor in 9 of 11
    # runs at a load average of 4.5-7 on 2 cores; 2 and 8 stale frames of ~100 in the others)
    assert report["dropped"] == report["dropped_stale"] and report["rejected"] == {}, report
    assert report["dropped"] <= (0 if load < os.cpu_count() else 0.15 * report["frames"]), report
    replay = replay_episode(Dataset.open(out), 1)
    assert replay.max_error < REPLAY_ERROR
