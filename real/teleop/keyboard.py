"""Keyboard teleoperation in the terminal (no window, no extra package).

Keys (a terminal sends key presses only, with auto-repeat while held; each press keeps its
axis moving for `hold_s`, so a held key moves smoothly and a released one stops soon):

    w / s   +x / -x        i / k   pitch + / -   (about world y)
    a / d   +y / -y        j / l   yaw + / -     (about world z)
    r / f   +z / -z        u / o   roll + / -    (about world x)
    space   gripper open <-> closed
    enter   save the episode        backspace   discard it
    h       back to the home pose   q           quit
"""

from __future__ import annotations

import os
import select
import sys
import time

import numpy as np

from .command import Device, DeviceNotFoundError, SessionState, TeleopCommand
from .registry import register

AXES = {  # key -> (index in ee_twist, sign)
    "w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1),
    "u": (3, 1), "o": (3, -1), "i": (4, 1), "k": (4, -1), "j": (5, 1), "l": (5, -1),
}  # fmt: skip
EVENT_KEYS = {"\n": "save", "\r": "save", "\x7f": "discard", "\b": "discard", "q": "quit",
              "h": "reset"}  # fmt: skip


class KeyMapper:
    """Key presses (characters with times in s) -> Commands; pure, so it is unit-tested."""

    def __init__(self, speed: float = 0.15, angular_speed: float = 0.6, hold_s: float = 0.6):
        if speed <= 0 or angular_speed <= 0 or hold_s <= 0:
            raise ValueError(
                f"keyboard speed={speed}, angular_speed={angular_speed}, hold_s={hold_s}: "
                "expected > 0"
            )
        self.scale = np.array([speed] * 3 + [angular_speed] * 3)
        self.hold_s = hold_s
        self.until = np.full(6, -np.inf)  # each axis moves until this time
        self.sign = np.zeros(6)
        self.gripper = 1.0
        self.pending: set[str] = set()
        self.unknown: list[str] = []

    def press(self, key: str, t: float) -> None:
        key = key.lower() if key.isalpha() else key
        if key in AXES:
            i, sign = AXES[key]
            self.sign[i], self.until[i] = sign, t + self.hold_s
        elif key == " ":
            self.gripper = 0.0 if self.gripper > 0.5 else 1.0
        elif key in EVENT_KEYS:
            self.pending.add(EVENT_KEYS[key])
        else:
            self.unknown.append(key)

    def command(self, t: float) -> TeleopCommand:
        active = self.until >= t
        events, self.pending = frozenset(self.pending), set()
        return TeleopCommand(
            ee_twist=np.where(active, self.sign * self.scale, 0.0),
            gripper=self.gripper,
            events=events,
        )


class KeyboardDevice(Device):
    name = "keyboard"

    def __init__(self, speed: float = 0.15, angular_speed: float = 0.6, stdin=None):
        self.mapper = KeyMapper(speed, angular_speed)
        self.stdin = stdin or sys.stdin
        self._saved = None

    def connect(self) -> None:
        try:
            fd = self.stdin.fileno()
            tty_ok = os.isatty(fd)
        except (AttributeError, ValueError, OSError):
            tty_ok = False
        if not tty_ok:
            raise DeviceNotFoundError(
                "keyboard: standard input is not a terminal (looked for a TTY on stdin); run "
                "`xembody teleop` in a terminal, or use --device browser"
            )
        import termios
        import tty

        self._fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)  # key by key, no echo; Ctrl-C still interrupts

    def get_command(self, state: SessionState | None = None) -> TeleopCommand:
        now = time.monotonic()
        while select.select([self._fd], [], [], 0)[0]:
            data = os.read(self._fd, 64).decode(errors="ignore")
            if not data:
                break
            for ch in data:
                self.mapper.press(ch, now)
        return self.mapper.command(now)

    def disconnect(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def help(self) -> str:
        return (__doc__ or "").split("\n\n", 1)[1].split('"""')[0]


register("keyboard", KeyboardDevice, "keys in the terminal: end-effector twist, gripper, events")
