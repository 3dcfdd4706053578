"""Quaternion helpers, (w, x, y, z) order as MuJoCo, batched over rows, and the damped
least-squares step of differential IK. Each takes torch tensors (the sim tasks) or numpy
arrays (the robot side, one row) and answers in kind, with the same formula: the
observation terms built on them are shared (`terms`), and the robot side's helpers are
these. torch is imported only when a tensor comes in, so numpy callers (the ROS nodes)
use this module without loading it."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

Array = Any  # torch.Tensor or np.ndarray


def _torch():
    return sys.modules["torch"]  # called only for tensors: torch is loaded


def is_torch(x: Array) -> bool:
    torch = sys.modules.get("torch")  # not loaded yet: x cannot be a tensor
    return torch is not None and isinstance(x, torch.Tensor)


def _xp(x: Array):
    """The array module of `x`: torch or numpy."""
    return _torch() if is_torch(x) else np


def cross(a: Array, b: Array) -> Array:
    """Cross product over the last axis."""
    return _torch().cross(a, b, dim=-1) if is_torch(a) else np.cross(a, b)


def cat(xs: list[Array], axis: int = -1) -> Array:
    return _torch().cat(xs, dim=axis) if is_torch(xs[0]) else np.concatenate(xs, axis=axis)


def stack(xs: list[Array], axis: int = -1) -> Array:
    return _torch().stack(xs, dim=axis) if is_torch(xs[0]) else np.stack(xs, axis=axis)


def norm(x: Array) -> Array:
    """Euclidean norm over the last axis, kept as a size-1 axis."""
    return (
        x.norm(dim=-1, keepdim=True) if is_torch(x) else np.linalg.norm(x, axis=-1, keepdims=True)
    )


def clamp(x: Array, low: float | None = None, high: float | None = None) -> Array:
    if is_torch(x):
        return x.clamp_min(low) if high is None else x.clamp(low, high)
    return np.clip(x, low, high)


def expand(x: Array, *shape: int) -> Array:
    """Broadcast `x` to `shape` (-1: keep that axis)."""
    if is_torch(x):
        return x.expand(*shape)
    shape = tuple(s if s != -1 else x.shape[i - len(shape) + x.ndim] for i, s in enumerate(shape))
    return np.broadcast_to(x, shape)


def quat_conj(q: Array) -> Array:
    return cat([q[..., :1], -q[..., 1:]])


def quat_mul(a: Array, b: Array) -> Array:
    aw, ax, ay, az = (a[..., i] for i in range(4))
    bw, bx, by, bz = (b[..., i] for i in range(4))
    return stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_rotate(q: Array, v: Array) -> Array:
    """Rotate vectors `v` (..., 3) by unit quaternions `q` (..., 4)."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + w * t + cross(u, t)


def quat_rotate_inverse(q: Array, v: Array) -> Array:
    """Express world vectors `v` in the frame whose orientation is `q`."""
    return quat_rotate(quat_conj(q), v)


def axis_angle_error(q_from: Array, q_to: Array) -> Array:
    """Rotation vector (axis * angle, rad, world frame) taking `q_from` to `q_to`."""
    dq = quat_mul(q_to, quat_conj(q_from))
    xp = _xp(dq)
    dq = xp.where(dq[..., :1] < 0, -dq, dq)  # shortest way round
    sin_half = clamp(norm(dq[..., 1:]), 1e-9)
    angle = 2.0 * xp.arctan2(sin_half, dq[..., :1])
    return dq[..., 1:] / sin_half * angle


def yaw_of(q: Array) -> Array:
    """Heading (rad) of orientations `q` (..., 4)."""
    w, x, y, z = (q[..., i] for i in range(4))
    return _xp(q).arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


# --- differential IK ------------------------------------------------------------------------
def dls_step(jac: Array, err: Array, damping: float) -> Array:
    """Damped least squares: dq = J^T (J J^T + damping^2 I)^-1 err, for `jac` (..., m, n)
    and `err` (..., m) -> (..., n) (m: task-space rows, n: joints)."""
    m = jac.shape[-2]
    if is_torch(jac):
        eye = damping**2 * _torch().eye(m, device=jac.device)
        jt = jac.transpose(-1, -2)
        return (jt @ _torch().linalg.solve(jac @ jt + eye, err[..., None]))[..., 0]
    jt = np.swapaxes(jac, -1, -2)
    gram = jac @ jt + damping**2 * np.eye(m)
    if jac.ndim == 2:  # one Jacobian: a matrix-vector solve
        return jt @ np.linalg.solve(gram, err)
    return (jt @ np.linalg.solve(gram, err[..., None]))[..., 0]


def dls_pinv(jac: np.ndarray, damping: float) -> np.ndarray:
    """The damped pseudo-inverse J^T (J J^T + damping^2 I)^-1 of `jac` (m, n) -> (n, m), for
    solvers that also project into its null space (`dls_step` is its product with err)."""
    return jac.T @ np.linalg.inv(jac @ jac.T + damping**2 * np.eye(jac.shape[0]))
