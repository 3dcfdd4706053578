"""Teleoperation: one command type (`TeleopCommand`), the `Device` interface and a registry
of devices (keyboard, gamepad, spacemouse, browser, scripted, teacher); `session` runs a
device against a body in sim and records into a dataset."""

from .command import EVENTS, Device, DeviceNotFoundError, SessionState, TeleopCommand
from .registry import get, make, names, register

__all__ = [
    "EVENTS", "Device", "DeviceNotFoundError", "SessionState", "TeleopCommand",
    "get", "make", "names", "register",
]  # fmt: skip
