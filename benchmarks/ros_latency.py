"""State-message-to-command latency and control-period jitter of the ROS 2 policy node
(and, with `--node safety`, command-to-output latency of the safety node).

    .venv/bin/python benchmarks/ros_latency.py                  # 50 and 500 Hz, prints JSON
    .venv/bin/python benchmarks/ros_latency.py --rates 50 --seconds 20
    .venv/bin/python benchmarks/ros_latency.py --node safety --joints 29

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

`--node safety --joints 29`: the safety node (`python -m xembody.real.ros.safety`) on a
29-joint humanoid-like body (`benchmarks/safety_checks.py: write_body29`, an MJCF with
position actuators loaded by the project's file loader, written with its facts to a
temporary folder and passed as `body:=`). Each period this process publishes /joint_states
(29 joints) and then a command on /policy/commands (Float64MultiArray); the node passes
each command on to /joint_commands at once. Latency: receipt of the output minus
publication of the command that caused it. The command carries its sequence number in the
first joint's target (default + k x 1e-7 rad, well inside every bound, so the filter passes
it unchanged and the output names its command); the node's own timer outputs repeat the
last number and are not counted. Node parameters: `rate_hz` = the rate (or `--output-hz`),
`ramp_s:=0` (no soft start), `max_command_hz:=2000`, `latch_file:=none`, the rest default.
The baseline answers each Float64MultiArray command with it at once on /joint_commands, on
the same executor (rclpy's default) and QoS, and subscribes to /joint_states doing nothing.
`--node-commit 17bb18e` runs the node's code as of that commit (before the checks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
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


def _spin(node: Node, ctx) -> Callable[[], None]:
    """Spin `node` on a background thread with the C++ events executor (the receive path
    does no Python wait-set building, and a callback's first act is to read the clock);
    returns the function that stops it."""
    stop = threading.Event()
    executor = EventsExecutor(context=ctx)
    executor.add_node(node)

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()

    def stop_spinning() -> None:
        stop.set()
        spinner.join(1)
        executor.shutdown()

    return stop_spinning


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


def safety_echo_node() -> None:
    """The safety baseline: pass each Float64MultiArray command on at once to
    /joint_commands (the safety node's types, QoS and executor, none of its work); joint
    states are received and dropped."""
    from std_msgs.msg import Float64MultiArray

    from xembody.real.ros.common import run

    def factory() -> Node:
        node = Node("safety")
        pub = node.create_publisher(Float64MultiArray, "/joint_commands", COMMAND_QOS)
        node.create_subscription(Float64MultiArray, "/policy/commands", pub.publish, COMMAND_QOS)
        node.create_subscription(JointState, "/joint_states", lambda m: None, SENSOR_QOS)
        return node

    run(factory)


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
    stop_spinning = _spin(node, ctx)
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
        stop_spinning()
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


TAG = 1e-7  # rad per command number, on the first joint's target


def package_tree(commit: str, dest: Path) -> Path:
    """The xembody package as of `commit`, laid out for import from `dest` (put it first on
    PYTHONPATH): `git archive` of the commit, linked as pyproject's package-dir maps it."""
    import tomllib

    src = dest / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    setup = tomllib.loads((src / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in sorted(setup["package-dir"].items()):
        target = dest / "pkg" / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for f in (src / folder).glob("*.py"):
            (target / f.name).symlink_to(f)
    return dest / "pkg"


def measure_safety(
    rate: float, seconds: float, domain: int, body: Path, rt_priority: int = 0,
    echo: bool = False, node_path: Path | None = None, output_hz: float = 0.0,
) -> dict:  # fmt: skip
    """Command-to-output latency of the safety node (or its echo) at `rate` (see the top);
    `node_path`: the node's code from there (`package_tree`), not this tree; `output_hz`:
    the node's `rate_hz` (its timer output; 0: `rate`)."""
    from std_msgs.msg import Float64MultiArray

    from xembody.sim.bodies.embodiment import Embodiment

    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    if node_path is not None and not echo:
        env["PYTHONPATH"] = os.pathsep.join([str(node_path), env.get("PYTHONPATH", "")])
    if echo:
        cmd = [sys.executable, __file__, "--echo-node", "safety"]
    else:
        cmd = [sys.executable, "-m", "xembody.real.ros.safety", "--ros-args",
               "-p", f"body:={body}", "-p", f"rate_hz:={output_hz or rate}",
               "-p", "ramp_s:=0.0",
               "-p", "max_command_hz:=2000.0", "-p", "latch_file:=none"]  # fmt: skip
    if rt_priority:
        cmd = ["chrt", "-f", str(rt_priority), *cmd]
    cwd = node_path if node_path is not None and not echo else None  # `-m` imports from cwd
    node_proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = Node("latency_bench", context=ctx)
    emb = Embodiment.read(body)
    names, q0 = list(emb.joint_names), emb.default_pose
    received: list[tuple[float, float]] = []  # (receipt time, first joint's target)
    sent: dict[int, float] = {}  # command number -> publication time
    status: list[str] = []
    pub_state = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
    pub_cmd = node.create_publisher(Float64MultiArray, "/policy/commands", COMMAND_QOS)
    node.create_subscription(
        Float64MultiArray, "/joint_commands",
        lambda m: received.append((time.monotonic(), m.data[0])), COMMAND_QOS,
    )  # fmt: skip
    node.create_subscription(String, "/safety/status", lambda m: status.append(m.data), COMMAND_QOS)
    stop_spinning = _spin(node, ctx)
    rng = np.random.default_rng(0)
    period = 1.0 / rate
    target = q0.copy()
    k = 0

    def step() -> None:  # one period: a joint state, then a command numbered k
        nonlocal k
        k += 1
        msg = JointState(name=names, position=(q0 + rng.normal(0, 0.002, len(q0))).tolist(),
                         velocity=[0.0] * len(names))  # fmt: skip
        msg.header.stamp = node.get_clock().now().to_msg()
        pub_state.publish(msg)
        target[0] = q0[0] + k * TAG
        out = Float64MultiArray(data=array("d", target.tobytes()))
        sent[k] = time.monotonic()
        pub_cmd.publish(out)

    try:
        t_end = time.monotonic() + 60
        while not received and time.monotonic() < t_end:  # until the node answers
            step()
            time.sleep(0.02)
        if not received:
            raise RuntimeError(f"the node never answered: {node_proc.stderr.read1()!r}")
        time.sleep(0.5)
        t_next = time.monotonic()
        k0, t_stop = k, t_next + 1.0 + seconds
        while t_next < t_stop:
            while (wait := t_next - time.monotonic()) > 0:
                time.sleep(max(wait - 0.0005, 0.0) if wait > 0.001 else 0.0)
            step()
            t_next += period
        time.sleep(0.5 + 1.2)  # the last outputs and one more status report
    finally:
        stop_spinning()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        node_proc.send_signal(signal.SIGINT)
        node_proc.wait(timeout=20)
    first: dict[int, float] = {}  # command number -> first receipt of an output carrying it
    for t, v in received:
        n = round((v - q0[0]) / TAG)
        if abs(v - q0[0] - n * TAG) < 1e-3 * TAG and n not in first:
            first[n] = t
    sent_t = np.array([sent[n] for n in sorted(sent) if n > k0])
    warm = sent_t[0] + 1.0
    measured = [n for n in sent if n > k0 and sent[n] >= warm]
    pairs = [(first[n], sent[n]) for n in measured if n in first]
    latency = np.array([t - s for t, s in pairs])
    return {
        "node": "echo (baseline)" if echo else "safety",
        "rate_hz": rate,
        "node_rate_hz": None if echo else output_hz or rate,
        "joints": len(names),
        "commands_sent": len(measured),
        "outputs_matched": len(pairs),
        "outputs_received": sum(1 for t, _ in received if t >= warm),
        "rt_priority": rt_priority,
        "latency": stats(latency),
        "command_publish_period": stats(np.diff(sent_t[sent_t >= warm]), period),
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
    parser.add_argument(
        "--domain-id", type=int, default=97,
        help="ROS_DOMAIN_ID, outside 5..94 and 99 (the tests' domains: tests/rosgraph.py)",
    )  # fmt: skip
    parser.add_argument(
        "--rt-priority", type=int, default=0,
        help="run the node (and this process) SCHED_FIFO at this priority (chrt; 0: normal)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", action=argparse.BooleanOptionalAction, default=True,
        help="also measure the echo node at each rate, alternating with the policy node",
    )  # fmt: skip
    parser.add_argument(
        "--node", choices=("policy", "safety"), default="policy",
        help="the node under test: policy (state -> command) or safety (command -> output)",
    )  # fmt: skip
    parser.add_argument(
        "--joints", type=int, choices=(29,), default=29,
        help="safety node: the body's joint count (the 29-joint humanoid-like MJCF)",
    )  # fmt: skip
    parser.add_argument(
        "--node-commit", default="",
        help="safety node: run the node's code as of this commit (e.g. 17bb18e, before the "
        "checks); the echo and this process stay on the working tree",
    )  # fmt: skip
    parser.add_argument(
        "--output-hz", type=float, default=0.0,
        help="safety node: its rate_hz, the timer output besides the output on each command "
        "(0: the rate under test)",
    )  # fmt: skip
    parser.add_argument("--echo-node", nargs="?", const="policy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_node:
        return safety_echo_node() if args.echo_node == "safety" else echo_node()
    if args.rt_priority:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt_priority))
    if args.node == "safety":
        return main_safety(args)
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


def main_safety(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from safety_checks import write_body29

    results = []
    with tempfile.TemporaryDirectory(prefix="xembody-bench-") as tmp:
        body, notes = write_body29(tmp)
        node_path = package_tree(args.node_commit, Path(tmp)) if args.node_commit else None
        for rate in args.rates:
            for echo in (False, True) if args.baseline else (False,):
                results.append(measure_safety(rate, args.seconds, args.domain_id, body,
                                              args.rt_priority, echo, node_path,
                                              args.output_hz))  # fmt: skip
                results[-1]["load_avg_after"] = os.getloadavg()
            if args.baseline:  # what the safety node adds over the echo, at p50 and p99
                safety, echo = results[-2]["latency"], results[-1]["latency"]
                results[-2]["over_baseline_ms"] = {
                    k: safety[k] - echo[k] for k in ("p50_ms", "p99_ms")
                }
    print(json.dumps({
        "benchmark": "ros_latency", "node": "safety", "body": notes,
        "node_code": args.node_commit or "working tree",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg": os.getloadavg()},
        "command": " ".join(["benchmarks/ros_latency.py", *sys.argv[1:]]),
        "results": results,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
