"""Test helpers for the ROS 2 nodes: node processes on a private ROS_DOMAIN_ID and a probe
node in the test process (real rclpy over Fast DDS on loopback).

    with Graph(tmp_path) as g:
        g.start("sim_robot", body="arm")
        probe = g.probe()
        probe.listen("/joint_states", JointState, SENSOR_QOS)
        probe.spin_until(lambda: probe.last("/joint_states") is not None, 20)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

_ids = itertools.count()


def fresh_domain_id() -> int:
    """A ROS_DOMAIN_ID (5..94) that differs per test and, very likely, per pytest process."""
    return 5 + (os.getpid() * 7 + next(_ids) * 13) % 90


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param(v) for v in value) + "]"
    if value == "":
        return "''"
    return str(value)


class Probe:
    """A node in the test process: records (receipt time, message) per topic."""

    def __init__(self, context: Context):
        self.node = Node("probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.msgs: dict[str, list[tuple[float, Any]]] = {}
        self.subs: dict[str, Any] = {}

    def listen(self, topic: str, kind: type, qos: Any) -> None:
        self.msgs[topic] = []
        self.subs[topic] = self.node.create_subscription(
            kind, topic, lambda m, t=topic: self.msgs[t].append((time.monotonic(), m)), qos
        )

    def matched(self, *topics: str, timeout: float = 20.0) -> bool:
        """Spin until each listened topic's subscription has matched a publisher: DDS
        discovery can take seconds on a loaded machine, and a volatile publisher's messages
        sent before the match never reach this node."""
        return self.spin_until(
            lambda: all(self.subs[t].get_publisher_count() > 0 for t in topics), timeout
        )

    def last(self, topic: str) -> Any:
        return self.msgs[topic][-1][1] if self.msgs.get(topic) else None

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.005)

    @contextlib.contextmanager
    def spinning(self):
        """Spin in a thread for the duration of the block: a test that blocks (a whole
        session run) still takes every message as it arrives, instead of leaving them to
        the DDS caches, which lose samples when the machine is busy."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.executor.spin_once(timeout_sec=0.005)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            self.executor.spin_once(timeout_sec=0.005)
        return condition()

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any:
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} did not appear")
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        return future.result()


class Graph:
    """Node processes (`python -m xembody.real.ros.<node>`) sharing one fresh domain."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.domain = fresh_domain_id()
        self.env = {
            **os.environ,
            "ROS_DOMAIN_ID": str(self.domain),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "ROS_HOME": str(self.log_dir / "ros"),  # the safety node's e-stop latch file too
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.args: dict[str, tuple[str, dict]] = {}
        self.context: Context | None = None
        self._probe: Probe | None = None

    def start(self, name: str, node: str | None = None, **params: Any) -> subprocess.Popen:
        node = node or name
        self.args[name] = (node, params)
        cmd = [sys.executable, "-m", f"xembody.real.ros.{node}", "--ros-args"]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={_param(value)}"]
        log = open(self.log_dir / f"{name}.log", "a")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def restart(self, name: str) -> subprocess.Popen:
        node, params = self.args[name]
        return self.start(name, node, **params)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(timeout=10)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text()

    def probe(self) -> Probe:
        if self._probe is None:
            self.context = Context()
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
            rclpy.init(context=self.context, domain_id=self.domain)
            self._probe = Probe(self.context)
        return self._probe

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._probe is not None:
            self._probe.executor.shutdown()
            self._probe.node.destroy_node()
            rclpy.try_shutdown(context=self.context)
