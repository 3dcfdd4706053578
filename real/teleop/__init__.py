"""Teleoperation: one command type (`TeleopCommand`), the `Device` interface and a registry
of devices (keyboard, gamepad, spacemouse, browser, scripted, teacher); `session` runs a
device against a robot side (`side`: the sim's env, or a ROS robot through the safety node,
`xembody.real.ros.teleop_robot`) and records into a dataset."""

from .command import EVENTS, Device, DeviceNotFoundError, SessionState, TeleopCommand
from .registry import get, make, names, register

__all__ = [
    "EVENTS", "Device", "DeviceNotFoundError", "SessionState", "TeleopCommand",
    "get", "make", "names", "register",
]  # fmt: skip
