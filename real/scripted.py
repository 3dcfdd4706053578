"""Scripted teachers: devices that know the task's goal, for demonstrations without a human.

`ReachTeacher` (device id "teacher") commands the reach task's target pose
(`SessionState.target_pos/target_quat`) as the end-effector goal; the session's DLS IK
turns it into joint targets. The goal is the target plus `ki` x the integral of the
measured end-effector error (position in m, orientation as a rotation vector; limited to
`max_correction`; it runs only within 5 cm / 0.2 rad of the goal, so it does not wind up
on the way), which removes what the servos' gravity offset leaves, plus `gain` x the
current error (clipped to 5 cm per axis): aiming past the target by a multiple of the
error makes the demonstrated correction steep near the goal, so a cloned policy's small
action errors leave proportionally smaller position errors.

For demonstrations that behaviour cloning learns well, run the session with IK started
from the measured joints and few iterations per control step (`SessionConfig(
ik_from_measured=True, ik_iterations=2, ik_max_step=0.1)`, `xembody teleop
--ik-from-measured --ik-iterations 2 --ik-max-step 0.1`): each joint target is then the
measured joints plus a bounded DLS step toward the goal, a local function of what the
reach observation holds (joint angles, pose error), and mistakes are corrected through the
measured state instead of piling up. Add `action_noise=0.3` (executed, not recorded: DART)
so the demonstrations also show recoveries; docs/TELEOP.md has the measured effect.
"""

from __future__ import annotations

import mujoco
import numpy as np

from xembody.real.teleop.command import Command, Device, SessionState
from xembody.real.teleop.registry import register


class ReachTeacher(Device):
    name = "teacher"

    def __init__(
        self, ki: float = 2.0, max_correction: float = 0.1, dt: float = 0.02, gain: float = 0.0
    ):
        if ki < 0 or max_correction < 0 or dt <= 0 or gain < 0:
            raise ValueError(
                f"teacher ki={ki}, max_correction={max_correction}, dt={dt}, gain={gain}: "
                "expected ki, max_correction, gain >= 0 and dt > 0"
            )
        self.ki, self.max_correction, self.dt, self.gain = ki, max_correction, dt, gain
        self.near = 0.05  # m (rad / 4): the integral runs only this close to the goal
        self._goal: tuple | None = None
        self._corr = np.zeros(6)

    def get_command(self, state: SessionState | None = None) -> Command:
        if state is None or state.target_pos is None or state.target_quat is None:
            raise ValueError("teacher: the session gives no task target (use a reach task)")
        goal = (tuple(np.round(state.target_pos, 9)), tuple(np.round(state.target_quat, 9)))
        if goal != self._goal or state.t == 0.0:  # a new episode: forget the integral
            self._goal, self._corr = goal, np.zeros(6)
        err = np.zeros(6)
        err[:3] = state.target_pos - state.ee_pos
        err[3:] = _rotvec(state.target_quat, state.ee_quat)
        if np.linalg.norm(err[:3]) < self.near and np.linalg.norm(err[3:]) < 4 * self.near:
            step = self._corr + self.ki * self.dt * err  # integrate only once close
            self._corr = np.clip(step, -self.max_correction, self.max_correction)
        corr = self._corr + self.gain * np.clip(err, -self.near, self.near)
        pos = state.target_pos + corr[:3]
        quat = _rotate(state.target_quat, corr[3:])
        return Command(ee_pose=(pos, quat), gripper=1.0)


def _rotvec(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (world frame, rad) taking `current` to `target` (w-x-y-z quats)."""
    inv, rel = np.zeros(4), np.zeros(4)
    mujoco.mju_negQuat(inv, current)
    mujoco.mju_mulQuat(rel, target, inv)
    vel = np.zeros(3)
    mujoco.mju_quat2Vel(vel, rel, 1.0)
    return vel


def _rotate(quat: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """`quat` turned by the world-frame rotation vector `rotvec` (rad)."""
    angle = np.linalg.norm(rotvec)
    if angle < 1e-12:
        return np.asarray(quat, float).copy()
    dq, out = np.zeros(4), np.zeros(4)
    mujoco.mju_axisAngle2Quat(dq, rotvec / angle, angle)
    mujoco.mju_mulQuat(out, dq, quat)
    return out


register("teacher", ReachTeacher, "scripted reach teacher: the task target through IK")
