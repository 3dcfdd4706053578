"""Small helpers the asset generators share: seeded draws that narrow to the middle of a
range at spread 0, and a box geom with the furniture's friction."""

from __future__ import annotations

import math

import mujoco
import numpy as np

GREY = [0.55, 0.55, 0.58, 1.0]
FRICTION = [0.8, 0.005, 0.0001]


def draw(rng: np.random.Generator, bounds: tuple[float, float], spread: float) -> float:
    """Mid-range at spread 0, uniform over `bounds` at spread >= 1, in between otherwise."""
    lo, hi = bounds
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * min(spread, 1.0)
    return float(mid if half == 0 else rng.uniform(mid - half, mid + half))


def count(rng: np.random.Generator, target: int, lo: int, hi: int, spread: float) -> int:
    """`target` at spread 0, else target - 1, target or target + 1; clipped to [lo, hi]."""
    step = int(rng.integers(-1, 2)) if spread > 0 else 0
    return int(np.clip(target + step, lo, hi))


def choice(rng: np.random.Generator, options: tuple[str, ...], spread: float) -> str:
    """The first option at spread 0, else any of them."""
    return options[0] if spread == 0 else str(options[int(rng.integers(len(options)))])


def yaw_quat(yaw: float) -> list[float]:
    """The (w, x, y, z) quaternion of a rotation by `yaw` rad about z."""
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def add_box(body: mujoco.MjsBody, name: str, half, pos, rgba, density: float) -> None:
    """A box geom of half extents `half` at `pos` in `body`'s frame."""
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[float(h) for h in half],
        pos=[float(x) for x in pos],
        rgba=list(rgba),
        density=density,
        friction=FRICTION,
    )


def add_cylinder(body: mujoco.MjsBody, name: str, radius: float, half_h: float, pos, rgba,
                 density: float) -> None:  # fmt: skip
    """An upright cylinder geom at `pos` in `body`'s frame."""
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[float(radius), float(half_h), 0.0],
        pos=[float(x) for x in pos],
        rgba=list(rgba),
        density=density,
        friction=FRICTION,
    )
