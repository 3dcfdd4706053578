"""Scripted teachers: devices that know the task's goal, for demonstrations without a human.

`ReachTeacher` (device id "teacher") commands the end-effector pose of the reach task's
target (`SessionState.target_pos/target_quat`); the session's DLS IK turns it into joint
targets. PD position control sags under gravity, so the teacher adds an integral term: the
commanded pose is the target plus `ki` x the integral of the measured end-effector error
(position in m, orientation as a rotation vector), limited to `max_correction`.
"""

from __future__ import annotations

import mujoco
import numpy as np

from xembody.real.teleop.command import Command, Device, SessionState
from xembody.real.teleop.registry import register


class ReachTeacher(Device):
    name = "teacher"

    def __init__(self, ki: float = 2.0, max_correction: float = 0.1, dt: float = 0.02):
        if ki < 0 or max_correction < 0 or dt <= 0:
            raise ValueError(
                f"teacher ki={ki}, max_correction={max_correction}, dt={dt}: expected "
                "ki >= 0, max_correction >= 0, dt > 0"
            )
        self.ki, self.max_correction, self.dt = ki, max_correction, dt
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
        self._corr = np.clip(self._corr + self.ki * self.dt * err, -self.max_correction,
                             self.max_correction)  # fmt: skip
        pos = state.target_pos + self._corr[:3]
        dq = np.zeros(4)
        mujoco.mju_axisAngle2Quat(dq, _unit(self._corr[3:]), np.linalg.norm(self._corr[3:]))
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, dq, state.target_quat)
        return Command(ee_pose=(pos, quat), gripper=1.0)


def _rotvec(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (world frame, rad) taking `current` to `target` (w-x-y-z quats)."""
    inv, rel = np.zeros(4), np.zeros(4)
    mujoco.mju_negQuat(inv, current)
    mujoco.mju_mulQuat(rel, target, inv)
    vel = np.zeros(3)
    mujoco.mju_quat2Vel(vel, rel, 1.0)
    return vel


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-12 else np.array([1.0, 0.0, 0.0])


register("teacher", ReachTeacher, "scripted reach teacher: the task target through IK")
