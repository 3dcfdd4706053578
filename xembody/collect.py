"""`xembody collect`: record safe exploratory motion of a robot into a dataset (resumable).

    xembody collect --robot arm --minutes 5 --out data/arm_train.zarr
    xembody collect --robot quadruped --minutes 2 --seed 1 --out data/quad_test.zarr
    xembody collect --robot my_robot.json ...        # a saved RobotConfig (see --write-robot)
    xembody collect --robot quad.urdf --card quad.yaml --minutes 2 --out data/quad.zarr
    xembody collect --robot mypkg.robots:MyRobot --robot-config '{"body": "arm", "k": 1}' ...
    xembody collect --robot ros --params robot.yaml --minutes 2 --out data/real.zarr

`--robot` is a body class or body file (the real-proxy with default effects; suffix
":nominal" for the nominal simulator), a robot config JSON, or a robot class of your own
("module:Class", or the registered id "ros": `xembody.real.ros_robot.RosRobot`, a robot
behind ROS topics and the safety node). Such a class takes its keyword arguments from
`--robot-config` (alias `--params`): inline JSON, or a JSON or YAML file (a ROS parameter
file `<node>: {ros__parameters: {...}}` too); keys that name robot config fields (body,
body_seed, seed, control_dt, suspended, proxy) set those. A robot file takes its body
card (`--card`, else `<robot>.yaml` beside it) and the card options as `train` does; the
body so loaded is written beside the dataset (`<out>.body.xml` + `.json`) and the robot
config names it, so a resumed run (or `--write-robot`) uses the same body. Running the
command again on the same --out appends episodes until the dataset holds --minutes of data;
a dataset of another robot (its meta's identity) is refused with both robots named.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xembody.config import add_arguments, from_args

CARD_OPTIONS = ("card", "body_class", "base", "ee", "feet", "package_path")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from xembody.real.collect import CollectConfig

    p = sub.add_parser("collect", help="record exploratory robot data (real-proxy or sim)")
    p.add_argument("--robot", required=True,
                   help="body class/file[:nominal], robot JSON, 'ros' or module:Class")  # fmt: skip
    add_robot_config(p)
    p.add_argument("--out", required=True, help="dataset folder (.zarr); resumed if present")
    p.add_argument("--write-robot", default=None, help="also write the robot config JSON here")
    p.add_argument("--card", default="", help="body card (YAML) of a robot file")
    p.add_argument("--body-class", default="", help="class of a robot file (card: class)")
    p.add_argument("--base", default="", help="base of a robot file: fixed|floating (card: base)")
    p.add_argument("--ee", default="", help="end-effector link or site (card: ee)")
    p.add_argument("--feet", nargs="+", default=(), help="foot links or sites (card: feet)")
    p.add_argument("--package-path", nargs="+", default=(), help="folders holding ROS packages")
    add_arguments(p, CollectConfig)
    p.set_defaults(run=run)


def add_robot_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot-config", "--params", dest="robot_config", default=None,
                   help="options of a robot class: JSON, or a .json/.yaml file")  # fmt: skip


def robot_options(value: str | None) -> dict:
    """The options of `--robot-config`: inline JSON, or a JSON or YAML file (a ROS 2
    parameter file's one node's `ros__parameters` are taken as they are)."""
    if not value:
        return {}
    path = Path(value)
    if path.suffix in (".json", ".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"--robot-config {value}: no such file")
        import yaml

        doc = (
            yaml.safe_load(path.read_text())
            if path.suffix != ".json"
            else json.loads(path.read_text())
        )
    else:
        try:
            doc = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"--robot-config {value!r}: not JSON ({err})") from None
    if isinstance(doc, dict) and len(doc) == 1:
        (inner,) = doc.values()
        if isinstance(inner, dict) and set(inner) == {"ros__parameters"}:
            doc = inner["ros__parameters"]
    if not isinstance(doc, dict):
        raise ValueError(f"--robot-config {value}: expected a mapping of options, got {doc!r}")
    return doc


def run(args: argparse.Namespace) -> int:
    import sys

    from xembody.real.collect import CollectConfig, collect
    from xembody.real.proxy import RobotConfig

    cfg = from_args(CollectConfig, args)
    robot = RobotConfig.load(args.robot, robot_options(args.robot_config))
    options = {k: getattr(args, k) for k in CARD_OPTIONS if getattr(args, k)}
    if options:  # the body with its card options, written once beside the dataset
        import dataclasses

        from xembody.sim.bodies.for_training import load_for_training

        emb = load_for_training(robot.body, robot.body_seed, **options)
        written = Path(f"{str(args.out).rstrip('/')}.body.xml")
        emb.write(written)
        robot = dataclasses.replace(robot, body=str(written.resolve()))
    if args.write_robot:
        Path(args.write_robot).write_text(json.dumps(robot.to_dict(), indent=2))
    summary = collect(robot, cfg, args.out)
    if summary["note"]:
        print(summary["note"], file=sys.stderr)
    print(json.dumps(summary))
    return 0
