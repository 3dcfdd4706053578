"""Teleoperation: one command type (`Command`), the `Device` interface and a registry of
devices (keyboard, gamepad, spacemouse, browser, scripted, teacher); `session` runs a
device against a body in sim and records into a dataset."""

from .command import EVENTS, Command, Device, DeviceNotFoundError, SessionState
from .registry import get, make, names, register

__all__ = [
    "EVENTS", "Command", "Device", "DeviceNotFoundError", "SessionState",
    "get", "make", "names", "register",
]  # fmt: skip
