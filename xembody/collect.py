"""`xembody collect`: record safe exploratory motion of a robot into a dataset (resumable).

    xembody collect --robot arm --minutes 5 --out data/arm_train.zarr
    xembody collect --robot quadruped --minutes 2 --seed 1 --out data/quad_test.zarr
    xembody collect --robot my_robot.json ...        # a saved RobotConfig (see --write-robot)

`--robot` is a body class or body file (the real-proxy with default effects; suffix
":nominal" for the nominal simulator) or a robot config JSON. Running the command again on
the same --out appends episodes until the dataset holds --minutes of data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xembody.config import add_arguments, from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    from xembody.real.collect import CollectConfig

    p = sub.add_parser("collect", help="record exploratory robot data (real-proxy or sim)")
    p.add_argument("--robot", required=True, help="body class/file[:nominal] or robot JSON")
    p.add_argument("--out", required=True, help="dataset folder (.zarr); resumed if present")
    p.add_argument("--write-robot", default=None, help="also write the robot config JSON here")
    add_arguments(p, CollectConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from xembody.real.collect import CollectConfig, collect
    from xembody.real.proxy import RobotConfig

    cfg = from_args(CollectConfig, args)
    robot = RobotConfig.load(args.robot)
    if args.write_robot:
        Path(args.write_robot).write_text(json.dumps(robot.to_dict(), indent=2))
    summary = collect(robot, cfg, args.out)
    print(json.dumps(summary))
    return 0
