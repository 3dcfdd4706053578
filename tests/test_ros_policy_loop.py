"""The policy node's own loop (real rclpy, its own process): it answers each joint state with a
command that carries that state's stamp, reports the time of each stage on ~/status, and stops
cleanly on Ctrl-C and on SIGTERM (it spins rclpy's EventsExecutor, which rclpy's own signal
handling does not stop)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from rosgraph import Graph
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS, load_body

POLICY = Path(__file__).parent / "assets" / "policies" / "reach"
EE_TARGET = [0.9429, -0.446, 0.4246, 0.623, 0.1396, 0.739, -0.2151]
STAGES = ("check", "observation", "inference", "publish")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_policy_node_answers_each_state_reports_its_stages_and_stops_on_a_signal(tmp_path, sig):
    if not (POLICY / "policy.json").is_file():
        pytest.skip(f"{POLICY}: no exported policy (bash tests/assets/make_policies.sh reach)")
    emb = load_body("", 0, str(POLICY))
    names, q0 = list(emb.joint_names), [float(x) for x in emb.default_pose]
    with Graph(tmp_path) as g:
        proc = g.start("policy", policy=POLICY, ee_target=EE_TARGET, command_type="trajectory")
        probe = g.probe()
        probe.listen("/policy/commands", JointTrajectory, COMMAND_QOS)
        probe.listen("/policy/status", String, COMMAND_QOS)
        pub = probe.node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        sent = []
        stamp_ns = 10**9
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(probe.msgs["/policy/commands"]) < 60:
            stamp_ns += 20_000_000  # the node's 50 Hz: every state is due a command
            msg = JointState(name=names, position=q0, velocity=[0.0] * len(names))
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            pub.publish(msg)
            sent.append(stamp_ns)
            probe.spin_for(0.02)
        commands = [m for _, m in probe.msgs["/policy/commands"]]
        assert len(commands) >= 60, g.log("policy")
        answered = [c.header.stamp.sec * 10**9 + c.header.stamp.nanosec for c in commands]
        assert set(answered) <= set(sent)
        assert len(set(answered)) == len(answered)  # one command per state
        assert all(len(c.points[0].positions) == len(names) for c in commands)
        assert probe.spin_until(
            lambda: "inference_p50_us" in json.loads(probe.last("/policy/status").data), 5
        )
        report = json.loads(probe.last("/policy/status").data)
        for stage in STAGES:
            assert 0 < report[f"{stage}_p50_us"] <= report[f"{stage}_p99_us"] < 1e6, report
        t0 = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=10)
        assert time.monotonic() - t0 < 5
        assert rc == 0, g.log("policy")
        assert "Traceback" not in g.log("policy")
