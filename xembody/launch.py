"""`xembody launch <class>`: the ROS 2 node graph of a body class without `ros2 launch`.

    xembody launch arm                                   # sim robot + safety + policy
    xembody launch mobile_base --policy deploy/nav --record recordings/base.zarr
    xembody launch quadruped --no-sim                    # a robot driver is already running
    xembody launch arm --duration 30 --log-dir logs/     # stop by itself after 30 s

Starts the same nodes as launch/<class>.launch.py (`python -m xembody.real.ros.<node>`,
each with `--params-file` the class's parameter file), one process each, logs to
`<log-dir>/<node>.log`. The parameter files ship with the package (real/ros/config/ in the
source tree, xembody/real/ros/config/ in a wheel; launch/config links there), so an
installed xembody launches without a source checkout. Ctrl-C (or --duration) stops them
all; if one node dies, the others are stopped and its log's tail is printed. Pip-installed
ROS 2 has no `launch` package, so this is how such machines bring the graph up.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from xembody.config import add_arguments, field, from_args

ROOT = Path(__file__).resolve().parents[1]  # the source checkout, when there is one
CONFIG_PACKAGE = "xembody.real.ros"  # its config/ folder holds <class>.yaml
CLASSES = {"arm": "arm", "mobile_base": "mobile_base", "wheeled": "mobile_base",
           "quadruped": "quadruped", "humanoid": "humanoid"}  # fmt: skip


@dataclass(kw_only=True)
class LaunchConfig:
    body_class: str = field("arm", "arm, mobile_base (or wheeled), quadruped or humanoid")
    policy: str = field("", "export folder (default: the parameter file's)")
    params: str = field("", "ROS 2 parameter file (default: the packaged <class>.yaml)")
    record: str = field("", "record into this zarr dataset (starts the recorder node)")
    sim: bool = field(True, "start the sim robot node (--no-sim: a robot driver is running)")
    log_dir: str = field("launch_logs", "folder for the nodes' logs")
    duration: float = field(0.0, "stop after this many seconds (0: run until Ctrl-C)")

    def __post_init__(self) -> None:
        if self.body_class not in CLASSES:
            raise ValueError(f"body_class={self.body_class!r}, expected one of {sorted(CLASSES)}")
        if self.duration < 0:
            raise ValueError(f"duration={self.duration}, expected >= 0")
        if self.params and not Path(self.params).is_file():
            raise FileNotFoundError(f"--params {self.params}: no such file")
        if self.policy and not (Path(self.policy) / "policy.json").is_file():
            raise FileNotFoundError(f"--policy {self.policy}: no policy.json there")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("launch", help="start the ROS 2 nodes of a body class (no ros2 launch)")
    p.add_argument("class_", metavar="CLASS", choices=sorted(CLASSES), help="body class")
    add_arguments(p, LaunchConfig)
    for action in p._actions:  # the positional CLASS sets it
        if action.dest == "body_class":
            action.help = argparse.SUPPRESS
    p.set_defaults(run=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    args.body_class = args.class_
    return launch(from_args(LaunchConfig, args))


def node_commands(cfg: LaunchConfig, overrides: Path) -> dict[str, list[str]]:
    """{node name: command line} of the graph; writes the command-line choices (policy,
    dataset) to the parameter file `overrides`, read after the class's file so they win
    (a plain `-p` is weaker than a node's own section in a parameter file)."""
    import yaml

    params = Path(cfg.params) if cfg.params else class_params(cfg.body_class, overrides.parent)
    nodes = (
        (["sim_robot"] if cfg.sim else [])
        + ["safety", "policy"]
        + (["recorder"] if cfg.record else [])
    )
    policy = cfg.policy or _policy_from(params)
    if not policy:
        raise ValueError(
            f"{params} names no policy: pass --policy DIR (train one with `xembody train`, "
            "then `xembody export`)"
        )
    chosen = {n: {"ros__parameters": {"policy": str(policy)}} for n in nodes}
    if cfg.record:
        chosen["recorder"]["ros__parameters"]["dataset"] = cfg.record
    overrides.write_text(yaml.safe_dump(chosen))
    return {
        node: [sys.executable, "-m", f"xembody.real.ros.{node}", "--ros-args",
               "--params-file", str(params), "--params-file", str(overrides)]
        for node in nodes
    }  # fmt: skip


def class_params(body_class: str, folder: Path) -> Path:
    """The packaged parameter file of `body_class` (a body class or an alias such as
    `wheeled`), found with importlib.resources; copied into `folder` when the package is
    not on disk (a zip import), since the nodes read it by path."""
    res = resources.files(CONFIG_PACKAGE) / "config" / f"{CLASSES[body_class]}.yaml"
    if isinstance(res, Path):
        return res
    copy = folder / res.name
    copy.write_text(res.read_text())
    return copy


def _policy_from(params: Path) -> str:
    """The `policy` of the file's `/**` section, resolved against the source checkout when it
    is relative and not found from here; an error naming the fix when found nowhere (the
    packaged files name the test policies of the source tree, which a wheel lacks)."""
    import yaml

    doc = yaml.safe_load(params.read_text()) or {}
    value = str(doc.get("/**", {}).get("ros__parameters", {}).get("policy", "") or "")
    if value and not Path(value).exists():
        if not (ROOT / value).exists():
            raise FileNotFoundError(
                f"{params} names policy {value!r}, found neither here nor in a source "
                "checkout: pass --policy DIR (an `xembody export` folder)"
            )
        value = str(ROOT / value)
    return value


def launch(cfg: LaunchConfig) -> int:
    """Run the graph until Ctrl-C, `duration` or a node's death; 0 on a clean stop."""
    logs = Path(cfg.log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    commands = node_commands(cfg, logs / "overrides.yaml")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stoppable()
    procs: dict[str, subprocess.Popen] = {}
    print(f"xembody launch {cfg.body_class}: ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}")
    for name, cmd in commands.items():
        with open(logs / f"{name}.log", "w") as log:
            procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        print(f"  {name:<10} pid {procs[name].pid:<8} log {logs / f'{name}.log'}")
    print("Ctrl-C stops all nodes.")
    code, end = 0, time.monotonic() + cfg.duration if cfg.duration else float("inf")
    try:
        while time.monotonic() < end:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                name = dead[0]
                tail = (logs / f"{name}.log").read_text().splitlines()[-15:]
                print(f"node {name} exited with {procs[name].returncode}:", file=sys.stderr)
                print("\n".join(f"  | {line}" for line in tail), file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    stop(procs)
    return code


def stoppable() -> None:
    """Make Ctrl-C (SIGINT) and SIGTERM stop this process and the nodes it starts, whatever
    the caller left: an ignored or blocked SIGINT is inherited across exec (a parent that
    ignores it, a test runner's thread), and then neither the launcher nor its nodes would
    ever see one."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def stop(procs: dict[str, subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGINT every node (they close cleanly: the recorder commits), then kill the ones
    still running `timeout` s later (one deadline for all, so a stop takes at most that)."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    end = time.monotonic() + timeout
    for name, p in procs.items():
        try:
            p.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"node {name} did not stop in {timeout:g} s: killed", file=sys.stderr)
            p.kill()
            p.wait()
    print("all nodes stopped")
