"""Registry of teleoperation devices: id -> factory. Mock and scripted devices are
registered like the real ones, so sessions are tested without hardware.

    dev = make("keyboard")            # a Device, not yet connected
    names()                           # ['browser', 'gamepad', 'keyboard', ...]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .command import Device


@dataclass(frozen=True)
class DeviceEntry:
    name: str
    factory: Callable[..., Device]
    summary: str


_DEVICES: dict[str, DeviceEntry] = {}


def register(name: str, factory: Callable[..., Device], summary: str) -> None:
    if name in _DEVICES:
        raise ValueError(f"teleop device {name!r} is registered twice")
    _DEVICES[name] = DeviceEntry(name, factory, summary)


def get(name: str) -> DeviceEntry:
    _load_builtin()
    try:
        return _DEVICES[name]
    except KeyError:
        raise KeyError(
            f"unknown teleop device {name!r}; expected one of {sorted(_DEVICES)}"
        ) from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_DEVICES)


def make(name: str, **kwargs: Any) -> Device:
    return get(name).factory(**kwargs)


def _load_builtin() -> None:
    from xembody.real import scripted as teachers  # noqa: F401

    from . import browser, evdev, keyboard, scripted  # noqa: F401  (importing registers)
