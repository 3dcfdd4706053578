"""The one command type every teleoperation device produces, and the device interface.

A `TeleopCommand` says what the operator wants *now* (the policy's command, a twist or a
goal, is `xembody.real.observation.Command`):
- `ee_twist` (6,): end-effector velocity in the world frame, (vx, vy, vz) m/s then
  (wx, wy, wz) rad/s; or
- `ee_pose`: an absolute end-effector target, position (3,) m and quaternion (4,) w-x-y-z
  in the world frame (a WebXR controller, a scripted teacher); it wins over `ee_twist`;
- `base_twist` (3,): mobile-base velocity in the base frame, (vx, vy) m/s and wz rad/s;
- `gripper`: 0 closed .. 1 open, or None to leave it as it is;
- `events`: one-shot requests, a subset of EVENTS ("save": end the episode and keep it,
  "discard": end it and drop it, "quit": stop the session, "reset": go back home).

A device (LeRobot style: connect, read, disconnect) implements `Device`. Devices whose
hardware or interface is missing raise `DeviceNotFoundError` from `connect()`, naming the
device and what was looked for; the CLI prints that one line, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EVENTS = ("save", "discard", "quit", "reset")


class DeviceNotFoundError(FileNotFoundError):
    """A device's hardware or interface is not there; the message says what was looked for."""


def _vector(name: str, value: Any, size: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (size,) or not np.isfinite(arr).all():
        raise ValueError(f"command {name}={value!r}: expected {size} finite numbers")
    return arr


@dataclass(frozen=True, kw_only=True)
class TeleopCommand:
    ee_twist: np.ndarray = field(default_factory=lambda: np.zeros(6))
    ee_pose: tuple[np.ndarray, np.ndarray] | None = None
    base_twist: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gripper: float | None = None
    events: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ee_twist", _vector("ee_twist", self.ee_twist, 6))
        object.__setattr__(self, "base_twist", _vector("base_twist", self.base_twist, 3))
        if self.ee_pose is not None:
            pos = _vector("ee_pose position", self.ee_pose[0], 3)
            quat = _vector("ee_pose quaternion", self.ee_pose[1], 4)
            norm = np.linalg.norm(quat)
            if not 0.5 < norm < 2.0:
                raise ValueError(
                    f"command ee_pose quaternion {quat.tolist()}: norm {norm:.3g}, expected a "
                    "unit quaternion (w, x, y, z)"
                )
            object.__setattr__(self, "ee_pose", (pos, quat / norm))
        if self.gripper is not None and not 0.0 <= self.gripper <= 1.0:
            raise ValueError(f"command gripper={self.gripper!r}: expected 0 (closed) .. 1 (open)")
        bad = set(self.events) - set(EVENTS)
        if bad:
            raise ValueError(f"command events {sorted(bad)}: expected a subset of {EVENTS}")
        object.__setattr__(self, "events", frozenset(self.events))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeleopCommand:
        """From JSON-like data (the browser device posts this); unknown keys are an error."""
        known = {"ee_twist", "ee_pose", "base_twist", "gripper", "events"}
        extra = set(d) - known
        if extra:
            raise ValueError(f"command keys {sorted(extra)}: expected some of {sorted(known)}")
        pose = d.get("ee_pose")
        if pose is not None:
            if not isinstance(pose, dict) or set(pose) != {"pos", "quat"}:
                raise ValueError(f"command ee_pose={pose!r}: expected {{'pos': [3], 'quat': [4]}}")
            pose = (pose["pos"], pose["quat"])
        return cls(
            ee_twist=d.get("ee_twist", np.zeros(6)),
            ee_pose=pose,
            base_twist=d.get("base_twist", np.zeros(3)),
            gripper=None if d.get("gripper") is None else float(d["gripper"]),
            events=frozenset(d.get("events", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        pose = self.ee_pose
        return {
            "ee_twist": self.ee_twist.tolist(),
            "ee_pose": None
            if pose is None
            else {"pos": pose[0].tolist(), "quat": pose[1].tolist()},
            "base_twist": self.base_twist.tolist(),
            "gripper": self.gripper,
            "events": sorted(self.events),
        }


Command = TeleopCommand  # the old name, until real/scripted.py and tests/test_dataset.py move


@dataclass
class SessionState:
    """What a session tells a device each step (devices that script against the scene,
    such as the teacher, read it; human devices ignore it). Positions in m, world frame."""

    t: float  # s since the episode began
    ee_pos: np.ndarray  # (3,)
    ee_quat: np.ndarray  # (4,) w-x-y-z
    target_pos: np.ndarray | None = None  # (3,) the task's goal, when it has one
    target_quat: np.ndarray | None = None  # (4,)


class Device:
    """Base class of teleoperation devices. `name` is the registry id."""

    name = "device"

    def connect(self) -> None:
        """Open the hardware or interface; raise DeviceNotFoundError when it is missing."""

    def get_command(self, state: SessionState | None = None) -> TeleopCommand:
        """The operator's command now (never blocks)."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Release the hardware or interface."""

    def help(self) -> str:
        """One or more lines telling the operator how to drive the device."""
        return ""

    def __enter__(self) -> Device:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
