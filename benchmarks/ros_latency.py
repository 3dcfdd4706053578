"""State-message-to-command latency and control-period jitter of the ROS 2 policy node.

    .venv/bin/python benchmarks/ros_latency.py                  # 50 and 500 Hz, prints JSON
    .venv/bin/python benchmarks/ros_latency.py --rates 50 --seconds 20

The policy node runs in its own process (`python -m xembody.real.ros.policy`) with the
exported reach policy (an MLP 256-256-128 on the CPU through onnxruntime, one thread) and
`control_hz` set to the rate under test. This process plays the robot: it publishes
/joint_states at that rate (best-effort sensor QoS) and receives /policy/commands
(reliable; `command_type:=trajectory`, so each command carries the stamp of the state it
answers). Latency: command receipt minus publication of that state, both on this
process's monotonic clock, so it covers DDS both ways plus the node's work
(validation, observation, inference, publication). Jitter: the spread of the periods
between consecutive commands as received, and, separately, of this process's own state
publications (so the node's share can be told apart), plus the node's own report from its
~/status. The first second is warm-up and is not counted.

Each rate is also measured against a baseline in the same run (`--baseline`, on by
default): an echo node that answers each state with the same JointTrajectory at once (no
check, observation or inference), so the result separates what DDS and two Python
processes cost on this machine from what the policy node adds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from array import array
from pathlib import Path

import numpy as np
import rclpy
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS, load_body

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "tests" / "assets" / "policies" / "reach"
EE_TARGET = [0.9429, -0.446, 0.4246, 0.623, 0.1396, 0.739, -0.2151]  # launch/config/arm.yaml


def stats(x: np.ndarray, nominal: float | None = None) -> dict[str, float]:
    ms = 1e3 * np.asarray(x)
    out = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
           "max_ms": float(ms.max()), "n": int(len(ms))}  # fmt: skip
    if nominal is not None:
        dev = np.abs(ms - 1e3 * nominal)
        out.update(std_ms=float(ms.std()), dev_p99_ms=float(np.percentile(dev, 99)))
    return out


def echo_node() -> None:
    """The baseline: answer each /joint_states at once with a prefilled JointTrajectory
    carrying its stamp (the policy node's message, QoS and executor, none of its work)."""
    from xembody.real.ros.common import run

    def factory() -> Node:
        node = Node("policy")
        names = list(load_body("", 0, str(POLICY)).joint_names)
        point = JointTrajectoryPoint(positions=array("d", bytes(8 * len(names))))
        msg = JointTrajectory(joint_names=names, points=[point])
        pub = node.create_publisher(JointTrajectory, "/policy/commands", COMMAND_QOS)

        def answer(state: JointState) -> None:
            msg.header.stamp = state.header.stamp
            pub.publish(msg)

        node.create_subscription(JointState, "/joint_states", answer, SENSOR_QOS)
        return node

    run(factory, events=True, quiet_gc=True)


def measure(
    rate: float, seconds: float, domain: int, rt_priority: int = 0, echo: bool = False
) -> dict:
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    if echo:
        cmd = [sys.executable, __file__, "--echo-node"]
    else:
        cmd = [sys.executable, "-m", "xembody.real.ros.policy", "--ros-args",
               "-p", f"policy:={POLICY}", "-p", f"control_hz:={rate}",
               "-p", "command_type:=trajectory",
               "-p", f"ee_target:=[{', '.join(map(str, EE_TARGET))}]"]  # fmt: skip
    if rt_priority:
        cmd = ["chrt", "-f", str(rt_priority), *cmd]
    node_proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = Node("latency_bench", context=ctx)
    emb = load_body("", 0, str(POLICY))
    names, q0 = list(emb.joint_names), emb.default_pose
    received: list[tuple[float, int]] = []  # (receipt time, stamp of the state answered, ns)
    sent: dict[int, float] = {}  # stamp (ns) -> publication time
    status: list[str] = []
    pub = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
    node.create_subscription(
        JointTrajectory, "/policy/commands",
        lambda m: received.append(
            (time.monotonic(), m.header.stamp.sec * 10**9 + m.header.stamp.nanosec)
        ), COMMAND_QOS,
    )  # fmt: skip
    node.create_subscription(String, "/policy/status", lambda m: status.append(m.data), COMMAND_QOS)
    # the C++ events executor: the receive path does no Python wait-set building, and the
    # callback's first act is to read the clock
    stop = threading.Event()
    executor = EventsExecutor(context=ctx)
    executor.add_node(node)

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    rng = np.random.default_rng(0)
    period = 1.0 / rate
    try:
        # wait until the node answers, then run the measured stream
        t_end = time.monotonic() + 60
        stamp = node.get_clock().now().nanoseconds
        while not received and time.monotonic() < t_end:
            stamp += 50_000_000
            _publish(pub, names, q0 + rng.normal(0, 0.01, len(q0)), sent, stamp)
            time.sleep(0.05)
        if not received:
            raise RuntimeError(f"the policy node never answered: {node_proc.stderr.read1()!r}")
        time.sleep(0.5)
        received.clear()
        sent.clear()
        t_next = time.monotonic()
        t_stop = t_next + 1.0 + seconds
        while t_next < t_stop:
            while (wait := t_next - time.monotonic()) > 0:
                time.sleep(max(wait - 0.0005, 0.0) if wait > 0.001 else 0.0)
            # stamps on the exact schedule: the node steps on every state (its period check
            # reads stamps); each command carries the stamp of the state it answers
            stamp += round(1e9 * period)
            _publish(pub, names, q0 + rng.normal(0, 0.01, len(q0)), sent, stamp)
            t_next += period
        time.sleep(0.5 + 1.2)  # the last commands and one more status report
    finally:
        stop.set()
        spinner.join(1)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        node_proc.send_signal(signal.SIGINT)
        node_proc.wait(timeout=20)
    sent_t = np.array(sorted(sent.values()))
    warm = sent_t[0] + 1.0
    pairs = [(t, sent[k]) for t, k in received if k in sent and sent[k] >= warm]
    latency = np.array([t - s for t, s in pairs])
    cmd_t = np.array([t for t, _ in pairs])
    return {
        "node": "echo (baseline)" if echo else "policy",
        "rate_hz": rate,
        "states_sent": int((sent_t >= warm).sum()),
        "commands_received": len(pairs),
        "rt_priority": rt_priority,
        "latency": stats(latency),
        "command_period": stats(np.diff(cmd_t), period),
        "state_publish_period": stats(np.diff(sent_t[sent_t >= warm]), period),
        "node_status": json.loads(status[-1]) if status and not echo else None,
    }


def _publish(pub, names, q, sent: dict[int, float], stamp_ns: int) -> None:
    msg = JointState(name=names, position=q.tolist(), velocity=[0.0] * len(names))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    sent[stamp_ns] = time.monotonic()
    pub.publish(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 500.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per rate")
    parser.add_argument("--domain-id", type=int, default=77)
    parser.add_argument(
        "--rt-priority", type=int, default=0,
        help="run the node (and this process) SCHED_FIFO at this priority (chrt; 0: normal)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", action=argparse.BooleanOptionalAction, default=True,
        help="also measure the echo node at each rate, alternating with the policy node",
    )  # fmt: skip
    parser.add_argument("--echo-node", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_node:
        return echo_node()
    if args.rt_priority:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt_priority))
    results = []
    for rate in args.rates:
        for echo in (False, True) if args.baseline else (False,):
            results.append(measure(rate, args.seconds, args.domain_id, args.rt_priority, echo))
        if args.baseline:  # what the policy node adds over the echo, at p50 and p99
            policy, echo = results[-2]["latency"], results[-1]["latency"]
            results[-2]["over_baseline_ms"] = {k: policy[k] - echo[k] for k in ("p50_ms", "p99_ms")}
    print(json.dumps({
        "benchmark": "ros_latency", "policy": str(POLICY.relative_to(ROOT)),
        "network": "MLP 256-256-128, onnxruntime CPU, 1 thread",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg": os.getloadavg()},
        "command": " ".join(["benchmarks/ros_latency.py", *sys.argv[1:]]),
        "results": results,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
