"""The launch side of the ROS 2 graph: parameter files that only set declared parameters,
real ROS 2 launch files for every body class, the colcon workspace, and `xembody launch`
bringing the mobile-base graph up from its parameter file until the base reaches the goal,
recording the drive."""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from nav_msgs.msg import Odometry
from rosgraph import Graph

from xembody.real.dataset import Dataset
from xembody.real.ros.common import SENSOR_QOS

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("arm", "mobile_base", "quadruped", "humanoid")


def declared(node: str) -> set[str]:
    """Parameter names a node declares (`declare(self, "name", ...)`, topic dicts, and the
    body parameters that `declare_body` of common.py declares for it)."""
    tree = ast.parse((ROOT / "real" / "ros" / f"{node}.py").read_text())
    names = _declares(tree)
    calls = {getattr(c.func, "id", "") for c in ast.walk(tree) if isinstance(c, ast.Call)}
    if "declare_body" in calls:
        common = ast.parse((ROOT / "real" / "ros" / "common.py").read_text())
        (fn,) = [f for f in common.body if getattr(f, "name", "") == "declare_body"]
        names |= _declares(fn)
    return names


def _declares(tree: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "declare":
            if isinstance(call.args[1], ast.Constant):
                names.add(call.args[1].value)
        if isinstance(call, ast.Assign) and getattr(call.targets[0], "id", "") == "topics":
            names |= {k.value for k in call.value.keys if isinstance(k, ast.Constant)}
    return names


@pytest.mark.parametrize("body_class", CLASSES)
def test_parameter_files_set_only_declared_parameters(body_class):
    doc = yaml.safe_load((ROOT / "launch" / "config" / f"{body_class}.yaml").read_text())
    shared = set(doc.pop("/**")["ros__parameters"])
    assert {"sim_robot", "policy", "safety", "recorder"} == set(doc)
    for node, section in doc.items():
        unknown = (set(section["ros__parameters"]) | shared) - declared(node)
        assert not unknown, f"{body_class}.yaml sets undeclared {node} parameters {unknown}"
    launch_file = ROOT / "launch" / f"{body_class}.launch.py"
    tree = ast.parse(launch_file.read_text())
    assert any(
        isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description"
        for f in tree.body
    )
    assert f'graph("{body_class}")' in launch_file.read_text()


def test_colcon_builds_the_workspace_into_console_scripts(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed (pip install -e .[dev])")
    out = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths",
         str(ROOT / "ros2_ws" / "src"), "--build-base", str(tmp_path / "build"),
         "--install-base", str(tmp_path / "install")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    pkg = tmp_path / "install" / "xembody_ros"
    scripts = pkg / "lib" / "xembody_ros"
    assert {p.name for p in scripts.iterdir()} == {
        "policy_node", "safety_node", "sim_robot_node", "recorder_node", "camera_node",
    }  # fmt: skip
    for c in CLASSES:
        assert (pkg / "share" / "xembody_ros" / "launch" / f"{c}.launch.py").is_file()
        assert (pkg / "share" / "xembody_ros" / "launch" / "config" / f"{c}.yaml").is_file()
    # the installed executable is the xembody node: it names what is missing
    site = next(pkg.glob("lib/python*/site-packages"))  # what install/setup.bash adds
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, str(scripts / "policy_node")], capture_output=True, text=True,
        timeout=60, env={**os.environ, "ROS_DOMAIN_ID": "99", "PYTHONPATH": path},
    )  # fmt: skip
    assert run.returncode != 0 and "parameter 'policy' is empty" in run.stderr


def test_xembody_launch_runs_the_mobile_base_graph_from_its_parameter_file(tmp_path):
    goal = yaml.safe_load((ROOT / "launch" / "config" / "mobile_base.yaml").read_text())
    goal = np.array(goal["policy"]["ros__parameters"]["goal"])
    with Graph(tmp_path) as g:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xembody.cli", "launch", "mobile_base", "--log-dir",
             str(tmp_path / "logs"), "--duration", "60", "--record", str(tmp_path / "b.zarr")],
            env=g.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            probe = g.probe()
            probe.listen("/odom", Odometry, SENSOR_QOS)

            def distance() -> float:
                m = probe.last("/odom")
                p = m.pose.pose.position if m else None
                return float(np.hypot(*(goal - [p.x, p.y]))) if p else float("inf")

            assert probe.spin_until(lambda: distance() < 0.3, 50), (
                f"{distance():.2f} m from the goal; "
                + (tmp_path / "logs" / "policy.log").read_text()
            )
        finally:
            proc.send_signal(signal.SIGINT)
            output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    pids = [int(x) for x in re.findall(r"pid (\d+)", output)]
    assert len(pids) == 4 and "all nodes stopped" in output
    ds = Dataset.open(tmp_path / "b.zarr")  # Ctrl-C committed the recorder's episode
    assert ds.num_episodes == 1 and ds.episodes[0]["complete"] is False
    pose = ds.read("base_pose")
    assert np.hypot(*(goal - pose[-1, :2])) < 0.5 < np.hypot(*(goal - pose[0, :2]))
    for pid in pids:  # no orphans
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_stop_kills_nodes_that_ignore_ctrl_c_within_one_deadline():
    from xembody.launch import stop

    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    procs = {f"n{i}": subprocess.Popen([sys.executable, "-c", stubborn]) for i in range(3)}
    time.sleep(1.0)  # let them install the handler
    t0 = time.monotonic()
    stop(procs, timeout=1.0)
    assert time.monotonic() - t0 < 3.0  # one deadline for all, not one per node
    assert all(p.returncode == -signal.SIGKILL for p in procs.values())


def test_launch_stops_on_ctrl_c_even_when_its_parent_ignores_sigint(tmp_path):
    # a parent that ignores SIGINT passes that on through exec; the launcher restores it
    launcher = (
        "import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "sys.exit(subprocess.call([sys.executable, '-m', 'xembody.cli', 'launch', 'arm', "
        f"'--log-dir', {str(tmp_path)!r}, '--duration', '60']))"
    )
    with Graph(tmp_path) as g:
        parent = subprocess.Popen([sys.executable, "-c", launcher], env=g.env)
        time.sleep(8.0)  # the nodes are up
        kids = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        os.kill(int(kids[0]), signal.SIGINT)  # Ctrl-C to the launcher itself
        t0 = time.monotonic()
        assert parent.wait(timeout=30) == 0
        assert time.monotonic() - t0 < 15
