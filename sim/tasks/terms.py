"""Observation terms written once, for the sim tasks and the robot side alike.

Each function maps a small state view, tensors with N rows (N envs in simulation; a robot
is N = 1), to a term (N, k). The tasks (`reach`, `velocity`, `navigate`) fill the view
from their sensors and physics state; `xembody.real.observation.ObservationBuilder` fills
it from a robot's readings and forward kinematics of the body's MJCF. The formulas, and
so sim/robot parity, are shared by construction; the exported contract states them in
words (`xembody.models.export.TERM_FORMULAS`).

Each function takes torch tensors (the tasks, float32, any device) or numpy arrays (the
robot side, float64: a row through numpy costs microseconds, through torch tens of them)
and answers in kind. Units SI, quaternions (w, x, y, z).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from ..bodies.embodiment import joint_kp
from .math import (
    Array,
    axis_angle_error,
    cat,
    clamp,
    cross,
    dls_step,
    expand,
    is_torch,
    norm,
    quat_rotate,
    quat_rotate_inverse,
    stack,
)


def _xp(x: Array):
    return torch if is_torch(x) else np


# --- legged ---------------------------------------------------------------------------------
def projected_gravity(imu_quat: Array) -> Array:
    """(N, 3): the unit gravity direction (0, 0, -1) in the IMU frame."""
    if is_torch(imu_quat):
        g = torch.tensor([0.0, 0.0, -1.0], dtype=imu_quat.dtype, device=imu_quat.device)
    else:
        g = np.array([0.0, 0.0, -1.0], dtype=imu_quat.dtype)
    return quat_rotate_inverse(imu_quat, expand(g, imu_quat.shape[0], 3))


def gait_clock(phase: Array) -> Array:
    """(N, 2): sin and cos of 2 pi phase (phase (N,) in periods)."""
    xp = _xp(phase)
    angle = 2 * np.pi * phase
    return stack([xp.sin(angle), xp.cos(angle)], 1)


# --- mobile bases ---------------------------------------------------------------------------
def to_yaw_frame(v: Array, yaw: Array) -> Array:
    """(N, 2): world-frame xy vectors `v` (N, 2) in the frame turned by `yaw` (N,)."""
    xp = _xp(v)
    c, s = xp.cos(yaw), xp.sin(yaw)
    return stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], 1)


def goal_distance(goal_body: Array) -> Array:
    """(N, 1): distance to the goal, given in the base's yaw frame (N, 2)."""
    return norm(goal_body)


def goal_direction(goal_body: Array) -> Array:
    """(N, 2): unit vector towards the goal (cos, sin of its bearing)."""
    return goal_body / clamp(norm(goal_body), 1e-6)


def clipped_ranges(ranges: Array, ray_range: float) -> Array:
    """(N, R): ranges clipped at `ray_range`; a negative reading (no hit) reads ray_range."""
    if is_torch(ranges):
        return torch.where(ranges < 0, ray_range, ranges.clamp(max=ray_range))
    return np.where(ranges < 0, ray_range, np.minimum(ranges, ray_range))


# --- arms -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmKinematics:
    """Constants of an arm's model that the reach terms need, for the policy's joints:
    which body each joint moves with, its anchor and axis in that body, and for gravity
    which bodies lie below each joint, their centres of mass and weights, and the joints'
    position gains."""

    jnt_body: Array  # (J,) int
    jnt_pos: Array  # (J, 3)
    jnt_axis: Array  # (J, 3)
    below: Array  # (J, B): body b moves with joint j
    body_com: Array  # (B, 3), in the body frame
    weight: Array  # (B, 3), m_b g, world frame
    kp: Array  # (J,)

    @classmethod
    def from_model(cls, m: mujoco.MjModel, joint_names, device=None, numpy: bool = False):
        """Tensors (float32, on `device`) for the tasks; float64 arrays with `numpy`."""
        jids = [m.joint(name).id for name in joint_names]
        below = np.zeros((len(jids), m.nbody), np.float32)
        for b in range(1, m.nbody):
            chain, p = set(), b
            while p > 0:
                chain.add(p)
                p = m.body_parentid[p]
            below[:, b] = [m.jnt_bodyid[j] in chain for j in jids]
        if numpy:
            t = lambda x: np.array(x, dtype=np.float64)  # noqa: E731
        else:
            t = lambda x: torch.tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
        return cls(
            jnt_body=m.jnt_bodyid[jids].copy()
            if numpy
            else torch.tensor(m.jnt_bodyid[jids], device=device),
            jnt_pos=t(m.jnt_pos[jids]),
            jnt_axis=t(m.jnt_axis[jids]),
            below=t(below),
            body_com=t(m.body_ipos),
            weight=t(-m.body_mass[:, None] * m.opt.gravity),
            kp=t(joint_kp(m, jids)),
        )


def joint_axes(arm: ArmKinematics, body_pos: Array, body_quat: Array) -> tuple[Array, Array]:
    """World-frame axes and anchors of the arm's joints, (N, J, 3) each, from the world
    poses of all bodies (N, B, 3) and (N, B, 4)."""
    quat, pos = body_quat[:, arm.jnt_body], body_pos[:, arm.jnt_body]
    n = quat.shape[0]
    axis = quat_rotate(quat, expand(arm.jnt_axis, n, -1, -1))
    return axis, pos + quat_rotate(quat, expand(arm.jnt_pos, n, -1, -1))


def jacobian(axis: Array, anchor: Array, ee_pos: Array) -> tuple[Array, Array]:
    """World-frame Jacobian columns (N, J, 3) each: end-effector velocity per unit joint
    rate, axis_j x (ee - anchor_j), and angular, axis_j."""
    return cross(axis, ee_pos[:, None] - anchor), axis


def pos_error(target_pos: Array, ee_pos: Array) -> Array:
    """(N, 3): target minus end-effector position, world frame (m)."""
    return target_pos - ee_pos


def rot_error(ee_quat: Array, target_quat: Array) -> Array:
    """(N, 3): rotation vector taking the end effector's orientation to the target's."""
    return axis_angle_error(ee_quat, target_quat)


def jac_pos_error(column: Array, pos_err: Array) -> Array:
    """(N, J): 10 x (axis_j x (ee - anchor_j)) . position error (m^2 x 10)."""
    return 10.0 * (column * pos_err[:, None]).sum(-1)


def jac_rot_error(axis: Array, rot_err: Array) -> Array:
    """(N, J): axis_j . rotation error (rad)."""
    return (axis * rot_err[:, None]).sum(-1)


def ik_step(
    column: Array, axis: Array, pos_err: Array, rot_err: Array, damping: float, rot_weight: float
) -> Array:
    """(N, J): the damped-least-squares step toward the target pose (rad, clipped to +-1)."""
    jac = _xp(column).swapaxes(cat([column, rot_weight * axis], -1), 1, 2)  # (N, 6, J)
    err = cat([pos_err, rot_weight * rot_err], -1)
    return clamp(dls_step(jac, err, damping), -1.0, 1.0)


def gravity_sag(
    arm: ArmKinematics, body_pos: Array, body_quat: Array, axis: Array, anchor: Array
) -> Array:
    """(N, J): gravity's torque on each joint at the current pose over its kp (rad): the
    joint deflection its PD settles at under gravity. The torque is the weight of every
    body below the joint, m_b g, acting at the body's centre of mass, about the joint's
    axis (nominal model; equals MuJoCo's qfrc_bias at rest over kp)."""
    com = body_pos + quat_rotate(body_quat, expand(arm.body_com, body_quat.shape[0], -1, -1))
    lever = com[:, None] - anchor[:, :, None]  # (N, J, B, 3)
    moment = cross(lever, expand(arm.weight, *lever.shape))
    torque = (arm.below[..., None] * moment).sum(2)  # (N, J, 3)
    return (axis * torque).sum(-1) / arm.kp
