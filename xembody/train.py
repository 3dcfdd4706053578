"""`xembody train`: PPO (rsl-rl) on one task and body, on the CPU (the loop and its config:
`models.training`).

Writes runs/<task>-<body>/<stamp>/ with run.json (resolved configs), the body, TensorBoard
logs and checkpoints every `--save-interval` iterations; `--resume CKPT` continues a run
(weights, optimizer state and iteration) in a new folder.
"""

from __future__ import annotations

import argparse

from xembody.config import add_arguments, from_args
from xembody.models.training import TrainConfig, train


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a PPO policy on a task (rsl-rl, CPU)")
    add_arguments(p, TrainConfig)
    p.add_argument("--list-tasks", action="store_true", help="list the tasks and exit")
    p.set_defaults(run=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    if args.list_tasks:
        from xembody.sim import tasks

        for name in tasks.names():
            entry = tasks.get(name)
            print(f"{name:<10} body: {entry.default_body:<10} {entry.summary}")
        return 0
    train(from_args(TrainConfig, args))
    return 0
