"""What every xembody ROS 2 node shares: QoS profiles, parameter declaration with
descriptors and ranges, the body a node runs, message <-> array conversions, throttled
error reports and the one `main`.

Only `xembody.real.ros` imports rclpy; the work itself is in ROS-free modules of
`xembody.real` (safety, observation, validate, timing, robot, dataset).
"""

from __future__ import annotations

import gc
import json
import re
import signal
import time
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from xembody.sim.bodies.embodiment import Embodiment

# Sensor streams: best effort, keep the latest few (sensor-data QoS).
SENSOR_QOS = QoSProfile(
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
)
# Commands and status: reliable.
COMMAND_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
)


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    items: type = float,
) -> Any:
    """Declare parameter `name` (a descriptor; a range when `low`/`high` are given) and
    return its value (from YAML or the command line, else `default`). An empty list default
    declares an array of `items` (float or str) that may stay unset (`[]`)."""
    desc = ParameterDescriptor(description=description)
    if low is not None and high is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        elif isinstance(default, float):
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
    if isinstance(default, list) and not default:
        from rclpy.exceptions import ParameterUninitializedException
        from rclpy.parameter import Parameter

        kind = Parameter.Type.STRING_ARRAY if items is str else Parameter.Type.DOUBLE_ARRAY
        node.declare_parameter(name, kind, desc)
        try:
            return list(node.get_parameter(name).value)
        except ParameterUninitializedException:
            return []
    return node.declare_parameter(name, default, desc).value


def declare_topics(node: Node, defaults: dict[str, str], note: str = "") -> dict[str, str]:
    """Declare one parameter per topic (`defaults`: parameter name -> default topic) and
    return {parameter name: topic}."""
    return {k: declare(node, k, v, f"topic ({k}{note})") for k, v in defaults.items()}


def declare_body(
    node: Node, policy_help: str = "export folder: the body of its sidecar"
) -> Embodiment:
    """Declare the parameters that choose a node's body (`body`, `body_seed`, `policy`)
    and load it (`load_body`)."""
    body = declare(node, "body", "arm", "body class or body file")
    seed = declare(node, "body_seed", 0, "seed of a sampled body", low=0, high=2**31)
    return load_body(body, seed, declare(node, "policy", "", policy_help))


def load_body(body: str, seed: int, policy: str = "") -> Embodiment:
    """The Embodiment a node runs: with `policy` (an export folder), the body bundled in it
    (body.xml and its facts, format /2; asset files resolved beside it) or, for an export
    without the bundle (/1), the one its sidecar's body.source names; else `body` (a body
    class sampled with `seed`, or a body file)."""
    from xembody.sim import bodies

    if policy:
        from xembody.models.exported import export_body

        return export_body(policy)
    if body in bodies.names():
        return bodies.sample(body, seed=seed)
    path = Path(body)
    if path.with_suffix(path.suffix + ".json").is_file():
        return Embodiment.read(path)
    if path.is_file():
        from xembody.sim.bodies.loader import load_body as load_file

        return load_file(path)
    raise FileNotFoundError(
        f"body {body!r}: neither a body class ({', '.join(bodies.names())}) nor a body file"
    )


def stamp_seconds(stamp: Time) -> float:
    return stamp.sec + 1e-9 * stamp.nanosec


class Reporter:
    """Logs a rejected input as an error naming the problem (the same problem, numbers
    aside, at most once per `every_s`, with a count), and keeps counts per kind for the
    status topic."""

    def __init__(self, node: Node, every_s: float = 1.0):
        self.node = node
        self.every_s = every_s
        self.counts: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def reject(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        key = re.sub(r"[-+.\deE]+", "#", message)  # the same problem with other numbers
        if now - self._last.get(key, -1e9) >= self.every_s:
            self._last[key] = now
            self.node.get_logger().error(f"{message} [{kind}: {self.counts[kind]} rejected]")


def publish_json(pub: Any, payload: dict[str, Any]) -> None:
    pub.publish(String(data=json.dumps(payload, default=float)))


def float_array(values: np.ndarray) -> Any:
    from std_msgs.msg import Float64MultiArray

    # array('d') is taken as is; a list would be type-checked entry by entry
    return Float64MultiArray(data=array("d", np.asarray(values, dtype=np.float64).tobytes()))


def run(
    node_factory: Callable[[], Node],
    args: list[str] | None = None,
    *,
    events: bool = False,
    quiet_gc: bool = False,
) -> None:
    """The `main` of every node: init, spin until Ctrl-C or SIGTERM, clean up.

    `events`: spin rclpy's EventsExecutor (C++) instead of the Python one, which builds a
    wait set over every subscription, timer and service at each wake-up. `quiet_gc`: after
    start-up, move everything alive to the permanent generation (`gc.freeze`) and turn
    automatic collection off; the node then collects the young generations itself when it
    knows it has time (the policy node does, just after each 50th command).
    """
    # the EventsExecutor neither stops on rclpy's signal handlers nor lets them run
    # (its spin holds the main thread in C++): it spins in short slices here and Python's
    # own handlers end the loop
    options = SignalHandlerOptions.NO if events else SignalHandlerOptions.ALL
    rclpy.init(args=args, signal_handler_options=options)
    node = None
    try:
        node = node_factory()
        if quiet_gc:
            gc.collect()
            gc.freeze()
            gc.disable()
        if events:
            signal.signal(signal.SIGINT, _interrupt)
            signal.signal(signal.SIGTERM, _interrupt)
            executor = EventsExecutor()
            executor.add_node(node)
            while True:
                executor.spin_once(timeout_sec=0.25)
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise  # a real failure; a publish racing the shutdown is not
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
