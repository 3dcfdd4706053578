"""Gamepads and SpaceMice through the Linux input subsystem (evdev), without extra packages.

Devices are found in /proc/bus/input/devices (name, USB ids, capability bitmaps, the
/dev/input/eventN handler) and read as raw `struct input_event` records (time, type, code,
value) from /dev/input/eventN, non-blocking. Axis ranges come from the EVIOCGABS ioctl.

Gamepad (any device with BTN_GAMEPAD/BTN_SOUTH and ABS_X), Xbox-style layout:
    left stick   x/y translation        right stick   yaw / pitch
    triggers     z down (LT) / up (RT)  A             gripper open <-> closed
    START        save episode           BACK/SELECT   discard     MODE/guide   quit   B  home
SpaceMouse (3Dconnexion USB ids or name): six axes (EV_REL or EV_ABS codes 0-5) give the
six-axis twist (device +y points to the operator, +z down); left button toggles the
gripper, right button saves the episode.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .command import Device, DeviceNotFoundError, SessionState, TeleopCommand
from .registry import register

PROC_DEVICES = Path("/proc/bus/input/devices")
EVENT = struct.Struct("llHHi")  # struct input_event: timeval (2 longs), type, code, value
ABSINFO = struct.Struct("6i")  # value, minimum, maximum, fuzz, flat, resolution
EV_SYN, EV_KEY, EV_REL, EV_ABS = 0x00, 0x01, 0x02, 0x03
ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = range(6)
BTN_0, BTN_1 = 0x100, 0x101
BTN_SOUTH, BTN_EAST, BTN_SELECT, BTN_START, BTN_MODE = 0x130, 0x131, 0x13A, 0x13B, 0x13C
SPACEMOUSE_VENDORS = {0x256F}  # 3Dconnexion; older models use Logitech's id with these:
SPACEMOUSE_LOGITECH = range(0xC603, 0xC630)


@dataclass
class InputDevice:
    """One entry of /proc/bus/input/devices."""

    name: str
    vendor: int = 0
    product: int = 0
    handlers: list[str] = field(default_factory=list)
    bits: dict[str, int] = field(default_factory=dict)  # "KEY", "ABS", "REL" bitmaps

    @property
    def event_path(self) -> Path | None:
        ev = [h for h in self.handlers if h.startswith("event")]
        return Path("/dev/input") / ev[0] if ev else None

    def has(self, kind: str, code: int) -> bool:
        return bool(self.bits.get(kind, 0) >> code & 1)


def parse_proc_devices(text: str) -> list[InputDevice]:
    """Parse the text of /proc/bus/input/devices (blank-line separated blocks)."""
    out = []
    for block in text.strip().split("\n\n"):
        dev = InputDevice(name="")
        for line in block.splitlines():
            if line.startswith("I:"):
                m = re.search(r"Vendor=([0-9a-fA-F]+) Product=([0-9a-fA-F]+)", line)
                if m:
                    dev.vendor, dev.product = int(m[1], 16), int(m[2], 16)
            elif line.startswith("N:"):
                dev.name = line.split("=", 1)[1].strip().strip('"')
            elif line.startswith("H:"):
                dev.handlers = line.split("=", 1)[1].split()
            elif line.startswith("B:"):
                key, value = line[2:].strip().split("=", 1)
                words = value.split()  # the kernel prints 64-bit words, most significant first
                dev.bits[key] = sum(int(w, 16) << (64 * i) for i, w in enumerate(reversed(words)))
        if dev.name or dev.handlers:
            out.append(dev)
    return out


def is_gamepad(d: InputDevice) -> bool:
    return d.has("KEY", BTN_SOUTH) and d.has("ABS", ABS_X)


def is_spacemouse(d: InputDevice) -> bool:
    by_id = d.vendor in SPACEMOUSE_VENDORS or (
        d.vendor == 0x046D and d.product in SPACEMOUSE_LOGITECH
    )
    return by_id or bool(re.search(r"3dconnexion|spacemouse|spacenavigator", d.name, re.I))


def parse_events(buf: bytes) -> list[tuple[int, int, int]]:
    """Raw bytes read from /dev/input/eventN -> [(type, code, value), ...]."""
    n = len(buf) // EVENT.size
    return [EVENT.unpack_from(buf, i * EVENT.size)[2:] for i in range(n)]


def pack_event(etype: int, code: int, value: int, t: float = 0.0) -> bytes:
    """One raw input_event record (what the kernel writes; used to replay recordings)."""
    return EVENT.pack(int(t), int((t % 1) * 1e6), etype, code, value)


class EvdevDevice(Device):
    """Shared part: find the device, read events non-blocking, keep axis and button state."""

    kind = "device"
    looked_for = ""

    def __init__(self, speed: float = 0.15, angular_speed: float = 0.6, deadzone: float = 0.1,
                 path: str = ""):  # fmt: skip
        self.scale = np.array([speed] * 3 + [angular_speed] * 3)
        self.deadzone = deadzone
        self.path = path
        self.axes: dict[tuple[int, int], float] = {}  # (type, code) -> -1..1
        self.ranges: dict[int, tuple[int, int]] = {}  # abs code -> (min, max)
        self.buttons: set[int] = set()
        self.pressed: list[int] = []  # presses since the last command
        self.gripper = 1.0
        self._fd: int | None = None

    # --- finding and opening ------------------------------------------------------------
    def matches(self, d: InputDevice) -> bool:
        raise NotImplementedError

    def find(self, proc_text: str | None = None) -> Path:
        if self.path:
            return Path(self.path)
        if proc_text is None:
            if not PROC_DEVICES.exists():
                raise DeviceNotFoundError(
                    f"{self.kind}: no Linux input subsystem here ({PROC_DEVICES} is missing); "
                    f"looked for {self.looked_for}"
                )
            proc_text = PROC_DEVICES.read_text()
        devices = parse_proc_devices(proc_text)
        found = [d for d in devices if self.matches(d) and d.event_path]
        if not found:
            seen = ", ".join(repr(d.name) for d in devices) or "none"
            raise DeviceNotFoundError(
                f"{self.kind}: none connected (looked in {PROC_DEVICES} for {self.looked_for}; "
                f"input devices present: {seen})"
            )
        return found[0].event_path

    def connect(self) -> None:
        path = self.find()
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise DeviceNotFoundError(f"{self.kind}: {path} does not exist") from None
        except PermissionError:
            raise DeviceNotFoundError(
                f"{self.kind}: cannot read {path} (permission denied; add your user to the "
                "'input' group or add a udev rule)"
            ) from None
        for code in range(6):
            try:
                raw = fcntl.ioctl(self._fd, _eviocgabs(code), bytes(ABSINFO.size))
                _, lo, hi = ABSINFO.unpack(raw)[:3]
                if hi > lo:
                    self.ranges[code] = (lo, hi)
            except OSError:
                pass

    def disconnect(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> list[tuple[int, int, int]]:
        buf = b""
        while self._fd is not None:
            try:
                chunk = os.read(self._fd, EVENT.size * 64)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.ENODEV:
                    raise DeviceNotFoundError(f"{self.kind}: unplugged") from None
                raise
            if not chunk:
                break
            buf += chunk
        return parse_events(buf)

    # --- state --------------------------------------------------------------------------
    def feed(self, events: list[tuple[int, int, int]]) -> None:
        for etype, code, value in events:
            if etype == EV_KEY:
                if value:
                    self.buttons.add(code)
                    self.pressed.append(code)
                else:
                    self.buttons.discard(code)
            elif etype in (EV_ABS, EV_REL):
                self.axes[(etype, code)] = self.normalise(etype, code, value)

    def normalise(self, etype: int, code: int, value: int) -> float:
        lo, hi = self.ranges.get(code, (-32768, 32767)) if etype == EV_ABS else (-350, 350)
        x = float(np.clip((2 * value - lo - hi) / (hi - lo), -1, 1))
        return 0.0 if abs(x) < self.deadzone else x

    def axis(self, code: int, etype: int = EV_ABS) -> float:
        return self.axes.get((etype, code), 0.0)

    def get_command(self, state: SessionState | None = None) -> TeleopCommand:
        self.feed(self.read())
        return self.command()

    def command(self) -> TeleopCommand:
        raise NotImplementedError


class GamepadDevice(EvdevDevice):
    name = kind = "gamepad"
    looked_for = "an evdev device with BTN_GAMEPAD (0x130) and ABS_X"
    EVENTS = {BTN_START: "save", BTN_SELECT: "discard", BTN_MODE: "quit", BTN_EAST: "reset"}

    def matches(self, d: InputDevice) -> bool:
        return is_gamepad(d)

    def normalise(self, etype: int, code: int, value: int) -> float:
        if etype == EV_ABS and code in (ABS_Z, ABS_RZ):  # triggers: 0 released .. 1 pulled
            lo, hi = self.ranges.get(code, (0, 255))
            x = (value - lo) / (hi - lo)
            return 0.0 if x < self.deadzone else float(np.clip(x, 0, 1))
        return super().normalise(etype, code, value)

    def command(self) -> TeleopCommand:
        twist = np.array([
            -self.axis(ABS_Y), -self.axis(ABS_X), self.axis(ABS_RZ) - self.axis(ABS_Z),
            0.0, -self.axis(ABS_RY), -self.axis(ABS_RX),
        ])  # fmt: skip
        events = {self.EVENTS[b] for b in self.pressed if b in self.EVENTS}
        if BTN_SOUTH in self.pressed:
            self.gripper = 0.0 if self.gripper > 0.5 else 1.0
        self.pressed = []
        return TeleopCommand(ee_twist=twist * self.scale, gripper=self.gripper, events=events)


class SpaceMouseDevice(EvdevDevice):
    name = kind = "spacemouse"
    looked_for = "a 3Dconnexion device (USB vendor 256f, or 046d:c603-c62f, or that name)"

    def matches(self, d: InputDevice) -> bool:
        return is_spacemouse(d)

    def feed(self, events: list[tuple[int, int, int]]) -> None:
        # the six axes arrive as EV_REL on some kernels and EV_ABS on others: keep one view
        super().feed([(EV_ABS if t == EV_REL else t, c, v) for t, c, v in events])

    def normalise(self, etype: int, code: int, value: int) -> float:
        lo, hi = self.ranges.get(code, (-350, 350))
        x = float(np.clip((2 * value - lo - hi) / (hi - lo), -1, 1))
        return 0.0 if abs(x) < self.deadzone else x

    def command(self) -> TeleopCommand:
        a = [self.axis(c) for c in range(6)]  # x right, y toward the operator, z down
        twist = np.array([-a[1], -a[0], -a[2], -a[4], -a[3], -a[5]])
        events = {"save"} if BTN_1 in self.pressed else set()
        if BTN_0 in self.pressed:
            self.gripper = 0.0 if self.gripper > 0.5 else 1.0
        self.pressed = []
        return TeleopCommand(ee_twist=twist * self.scale, gripper=self.gripper, events=events)


def _eviocgabs(code: int) -> int:
    """EVIOCGABS(code) = _IOR('E', 0x40 + code, struct input_absinfo)."""
    return (2 << 30) | (ABSINFO.size << 16) | (ord("E") << 8) | (0x40 + code)


register("gamepad", GamepadDevice, "Linux evdev gamepad (Xbox layout): twist, gripper, events")
register("spacemouse", SpaceMouseDevice, "3Dconnexion SpaceMouse over evdev: six-axis twist")
