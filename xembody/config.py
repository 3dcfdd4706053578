"""Typed dataclass configs <-> argparse, so every CLI verb exposes its config's fields.

A field `num_envs: int = 16` becomes `--num-envs 16`; its help text comes from the field's
`metadata["help"]` (`help_field`, from `xembody.models.cfg`, where library configs
get it). Booleans become `--flag/--no-flag`. The resolved config is written
next to outputs with `save_config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from xembody.models.cfg import help_field

T = TypeVar("T")

field = help_field  # the CLI modules' name for it


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_ = f"{f.metadata.get('help', '')} (default: {default})"
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
            kind = next(a for a in args if a is not type(None))  # X | None: unset is None
            origin, args = typing.get_origin(kind), typing.get_args(kind)
        if kind is bool:  # --x / --no-x (a bool | None left unset: None, the task's default)
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_
            )
        elif origin in (list, tuple):
            parser.add_argument(flag, type=args[0], nargs="+", default=default, help=help_)
        else:
            parser.add_argument(flag, type=kind, default=default, help=help_)


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if typing.get_origin(hints[name]) is tuple and isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def save_config(cfg: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(cfg), indent=2, default=str))
    return path
