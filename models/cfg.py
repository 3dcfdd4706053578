"""Config fields with help text: the one piece of the CLI's config handling that library
configs need. The CLI's config module turns these fields into command-line options."""

from __future__ import annotations

import dataclasses
from typing import Any


def help_field(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with `default` (lists, dicts and sets copied per instance) and a
    help string in its metadata (`metadata["help"]`)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)
