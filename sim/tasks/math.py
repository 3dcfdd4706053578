"""Quaternion helpers on torch tensors, (w, x, y, z) order as MuJoCo, batched over rows."""

from __future__ import annotations

import torch


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors `v` (..., 3) by unit quaternions `q` (..., 4)."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Express world vectors `v` in the frame whose orientation is `q`."""
    return quat_rotate(quat_conj(q), v)


def axis_angle_error(q_from: torch.Tensor, q_to: torch.Tensor) -> torch.Tensor:
    """Rotation vector (axis * angle, rad, world frame) taking `q_from` to `q_to`."""
    dq = quat_mul(q_to, quat_conj(q_from))
    dq = torch.where(dq[..., :1] < 0, -dq, dq)  # shortest way round
    sin_half = dq[..., 1:].norm(dim=-1, keepdim=True).clamp_min(1e-9)
    angle = 2.0 * torch.atan2(sin_half, dq[..., :1])
    return dq[..., 1:] / sin_half * angle


def yaw_of(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def wrap_angle(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi
