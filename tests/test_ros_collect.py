"""Autonomous collection through ROS: `RosRobot` against the sim robot node over DDS, with
the safety node between them, records data that fits a dynamics model about as well as data
collected in process (the sim robot node runs the same nominal MuJoCo arm)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from rosgraph import Graph
from std_msgs.msg import Float64MultiArray, String

from xembody.cli import main
from xembody.models.dataset import Dataset
from xembody.models.dynamics import DynamicsConfig, fit, load_frames
from xembody.models.dynamics_eval import model_rollout, rollout_errors
from xembody.real.collect import CollectConfig, collect
from xembody.real.proxy import RobotConfig
from xembody.real.robot import target_limits
from xembody.real.ros.common import COMMAND_QOS

# The ROS-collected model's held-out 10-step error may be at most this many times the
# in-process one's: the ROS loop adds a few ms of transport between reading and command.
FACTOR = 2.0
MINUTES = 0.4  # 1200 frames, 24 s of robot time, the same for both
CFG = CollectConfig(minutes=MINUTES, episode_s=8.0)


def test_collect_through_ros_fits_like_in_process(tmp_path):
    torch.set_num_threads(1)
    with Graph(tmp_path) as g:
        g.start("sim_robot", body="arm")
        g.start("safety", body="arm")
        probe = g.probe()  # (also puts the discovery range in this process's environment)
        probe.listen("/joint_commands", Float64MultiArray, COMMAND_QOS)
        probe.listen("/safety/status", String, COMMAND_QOS)
        params = tmp_path / "robot.yaml"  # a ROS 2 parameter file, as for the nodes
        params.write_text(f"xembody_robot:\n  ros__parameters:\n    body: arm\n"
                          f"    domain_id: {g.domain}\n")  # fmt: skip
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["collect", "--robot", "ros", "--params", str(params),
                         "--minutes", str(MINUTES), "--episode-s", "8",
                         "--out", str(tmp_path / "ros.zarr")])  # fmt: skip
        assert code == 0
        summary = json.loads(out.getvalue())
        probe.spin_for(0.3)
        status = json.loads(probe.last("/safety/status").data)
        sent = np.array([m.data for _, m in probe.msgs["/joint_commands"]])
    assert summary["frames"] == 1200 and "RosRobot" in summary["robot"]
    print(f"safety node: {status}")
    assert status["rejected"] == {} and status["mode"] in ("active", "hold"), status  # none refused
    # the safety node bounded what reached the robot ("limited": the effort bound on the
    # target's distance from the joint, as the robot's own actuators would saturate)
    assert status["limited"] > 0
    lo, hi = target_limits(RobotConfig(body="arm").embodiment())
    ds = Dataset.open(tmp_path / "ros.zarr")
    inside = lambda x, tol: ((x >= lo - tol) & (x <= hi + tol)).all()  # noqa: E731
    assert len(sent) and inside(sent, 1e-9) and inside(ds.read("target"), 1e-6)
    assert inside(ds.read("q"), 0.02)  # the joints stayed inside their ranges
    assert ds.meta["robot_id"]["class"] == "xembody.real.ros.robot_client:RosRobot"

    local = RobotConfig(body="arm", proxy=None)  # what the sim robot node steps
    collect(local, CFG, tmp_path / "local.zarr")
    collect(local, CollectConfig(minutes=0.2, seed=1), tmp_path / "test.zarr")
    test, _ = load_frames(tmp_path / "test.zarr")
    dyn = DynamicsConfig(steps=400)
    emb = local.embodiment()
    errors = {}
    for name in ("ros", "local"):
        episodes, _ = load_frames(tmp_path / f"{name}.zarr")
        model = fit("jointwise", emb, episodes, dyn)
        predict = lambda *a, model=model: model_rollout(model, *a)  # noqa: E731
        errors[name] = rollout_errors(predict, test, dyn.history, 10, 500)["rollout10_rmse"]
    print(f"10-step held-out RMSE: through ROS {errors['ros']:.4f}, in process "
          f"{errors['local']:.4f} rad")  # fmt: skip
    assert errors["ros"] < FACTOR * errors["local"], errors


def test_ros_robot_refuses_to_run_without_the_safety_node(tmp_path):
    with Graph(tmp_path) as g:
        g.start("sim_robot", body="arm")
        g.probe()
        robot = RobotConfig.load("ros", {"body": "arm", "domain_id": g.domain,
                                         "connect_timeout_s": 5.0})  # fmt: skip
        with pytest.raises(RuntimeError, match="no safety node status"):
            robot.make()
