"""Scripted devices, registered like the hardware ones so whole sessions run in tests.

`ScriptedDevice(script)`: `script` is a list of (steps, TeleopCommand) segments played in order,
one `get_command` call per session control step; a segment's events fire once, on its
first step. Or `script` is a callable `f(state) -> TeleopCommand`. When a list runs out the
device asks the session to quit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .command import Device, SessionState, TeleopCommand
from .registry import register


class ScriptedDevice(Device):
    name = "scripted"

    def __init__(
        self,
        script: Sequence[tuple[int, TeleopCommand]] | Callable[[SessionState], TeleopCommand] = (),
    ):
        if not callable(script):
            for i, seg in enumerate(script):
                if len(seg) != 2 or int(seg[0]) < 1 or not isinstance(seg[1], TeleopCommand):
                    raise ValueError(f"script[{i}]={seg!r}: expected (steps >= 1, TeleopCommand)")
            # one entry per step: the segment's command, its events on the first step only
            self._steps = [
                cmd if k == 0 else TeleopCommand(ee_twist=cmd.ee_twist, ee_pose=cmd.ee_pose,
                                                 base_twist=cmd.base_twist, gripper=cmd.gripper)
                for n, cmd in script for k in range(int(n))
            ]  # fmt: skip
        self.script = script
        self.calls = 0

    def get_command(self, state: SessionState | None = None) -> TeleopCommand:
        self.calls += 1
        if callable(self.script):
            return self.script(state)
        if self.calls > len(self._steps):
            return TeleopCommand(events=frozenset({"quit"}))
        return self._steps[self.calls - 1]


register("scripted", ScriptedDevice, "a fixed command script or a function (tests, demos)")
