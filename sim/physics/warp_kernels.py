"""Warp kernels of the MuJoCo Warp backend (`warp.py`): per-body contact forces and the
per-world health check. Both run inside the captured step graph."""

from __future__ import annotations

import warp as wp
from mujoco_warp._src.support import contact_force_fn  # mujoco_warp 4.0's per-contact force
from mujoco_warp._src.types import vec5

_MAXVAL = wp.constant(1e10)  # MuJoCo's mjMAXVAL: larger qpos/qvel/qacc entries count as diverged


@wp.kernel
def body_contact_forces(
    opt_cone: int,
    geom_bodyid: wp.array(dtype=int),
    frame: wp.array(dtype=wp.mat33),
    friction: wp.array(dtype=vec5),
    dim: wp.array(dtype=int),
    efc_address: wp.array2d(dtype=int),
    worldid: wp.array(dtype=int),
    adhesion: wp.array(dtype=float),
    geom: wp.array(dtype=wp.vec2i),
    efc_force: wp.array2d(dtype=float),
    njmax: int,
    nacon: wp.array(dtype=int),
    out: wp.array2d(dtype=wp.vec3),
):
    """Net contact force (world frame, N) on each body of each world: out (N, nbody)."""
    c = wp.tid()
    if c >= nacon[0]:
        return
    w = worldid[c]
    f = contact_force_fn(
        opt_cone, frame, friction, dim, efc_address, adhesion, efc_force, njmax, nacon, w, c, True
    )
    world = wp.spatial_top(f)  # force on geom[1]'s body, world frame
    wp.atomic_add(out, w, geom_bodyid[geom[c][1]], world)
    wp.atomic_sub(out, w, geom_bodyid[geom[c][0]], world)


@wp.kernel
def health(
    qpos: wp.array2d(dtype=float),
    qvel: wp.array2d(dtype=float),
    qacc: wp.array2d(dtype=float),
    bad: wp.array(dtype=int),
):
    """bad[w] = 1 when world w has NaN or |x| > 1e10 in qpos, qvel or qacc."""
    w = wp.tid()
    flag = int(0)  # noqa: UP018 (a Warp loop-carried variable needs its type)
    for i in range(qpos.shape[1]):
        x = qpos[w, i]
        if wp.isnan(x) or wp.abs(x) > _MAXVAL:
            flag = 1
    for i in range(qvel.shape[1]):
        v, a = qvel[w, i], qacc[w, i]
        if wp.isnan(v) or wp.isnan(a) or wp.abs(v) > _MAXVAL or wp.abs(a) > _MAXVAL:
            flag = 1
    bad[w] = flag
