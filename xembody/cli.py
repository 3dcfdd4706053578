"""`xembody` command line: one module per verb, each with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import importlib
import sys

VERBS = {
    "demo": "xembody.demo",
    "bodies": "xembody.bodies",
    "train": "xembody.train",
    "export": "xembody.export",
    "eval": "xembody.evaluate",
    "play": "xembody.play",
    "launch": "xembody.launch",
    "teleop": "xembody.teleop",
    "data": "xembody.data",
    "train-bc": "xembody.train_bc",
    "collect": "xembody.collect",
    "dynamics": "xembody.dynamics",
    "generalist": "xembody.generalist",
    "scan": "xembody.scan",
    "cousins": "xembody.cousins",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xembody",
        description="Sim-to-real stack for embodiment-agnostic control.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in VERBS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as err:
        # Bad input: one clear line, no traceback.
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"xembody {args.verb}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
