"""Rough terrain for the legged tasks: a height field of tiles and a per-env level curriculum.

The terrain is a grid of square tiles (`TILE` m a side): `levels` rows along world y, the
difficulty levels, and `cols` columns along x, variants of the same level. A level's row is
a strip along x, so an env walking forward stays on its level. Each grid point of a tile
on row r gets a height drawn uniformly in [0, max_height x r / (levels - 1)] (m), `CELL` m
apart (a point shared by two rows takes the lower row's height); MuJoCo's height field
joins the points with triangles, so row 0 is flat and the top row has bumps of up to
`max_height`. The outermost ring of points is 0 (no
wall at the edge), and the body's floor plane stays in the scene 2 mm lower, so an env
that walks off the grid meets flat ground. Generation is numpy from one seed. On such
ground a foot's height says nothing about its contact: `add_foot_touch` gives each foot a
touch sensor (supported by native MuJoCo and MuJoCo Warp alike, as is the height field
against the spheres, capsules and boxes of the generated bodies).

`TerrainCurriculum` keeps each env's level on the task's device: at reset an env spawns at
the centre of a random column of its level's row, its base at the home height above the
highest ground within the body's footprint. During an episode it accumulates the distance
commanded (the integral of the commanded planar speed) and the distance walked along the
command (the integral of the base velocity projected on the commanded direction); at the
end `next_level` applies the rule stated there. No host reads: masks and `torch.where`.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

TILE = 4.0  # m, side of a square tile
CELL = 0.1  # m between height-field points
COLS = 4  # tiles per level (columns along x)
BASE = 0.1  # m, depth of the height field's solid base below its lowest point
FLOOR_DROP = 0.002  # m the body's floor plane is lowered under the height field
MIN_COMMANDED = 1.0  # m commanded over an episode below which walking does not count
UP, DOWN = 0.5, 0.25  # walked / commanded at or above which a level rises, below which it falls
SITE_SHAPES = tuple(
    getattr(mujoco.mjtGeom, f"mjGEOM_{s}")
    for s in ("SPHERE", "CAPSULE", "ELLIPSOID", "CYLINDER", "BOX")
)


@dataclass(frozen=True)
class Terrain:
    """Heights of a tile grid. Point (i, j) of `heights` lies at world (x, y) =
    (j CELL, i CELL): rows along y, columns along x, the grid's corner at the origin."""

    heights: np.ndarray  # (levels * TILE / CELL + 1, cols * TILE / CELL + 1), m
    levels: int
    cols: int
    max_height: float

    def tile_centre(self, level: int, col: int) -> tuple[float, float]:
        """World (x, y) of the centre of tile (level, col), m."""
        return (col + 0.5) * TILE, (level + 0.5) * TILE

    def tile_heights(self, level: int, col: int) -> np.ndarray:
        """The grid points of one tile (its inner points and both edges)."""
        k = round(TILE / CELL)
        return self.heights[level * k : (level + 1) * k + 1, col * k : (col + 1) * k + 1]

    def spawn_heights(self, radius: float) -> np.ndarray:
        """(levels, cols): highest ground within `radius` m of each tile's centre, m."""
        r = int(np.ceil(radius / CELL))
        out = np.zeros((self.levels, self.cols))
        for level in range(self.levels):
            for col in range(self.cols):
                x, y = (round(c / CELL) for c in self.tile_centre(level, col))
                out[level, col] = self.heights[y - r : y + r + 1, x - r : x + r + 1].max()
        return out


def generate_terrain(levels: int, max_height: float, seed: int, cols: int = COLS) -> Terrain:
    """A tile grid whose row r has bumps of up to max_height x r / (levels - 1) m."""
    rng = np.random.default_rng(seed)
    k = round(TILE / CELL)
    heights = np.zeros((levels * k + 1, cols * k + 1))
    for level in reversed(range(levels)):  # a lower row's points win on a shared edge
        top = max_height * level / (levels - 1)
        for col in range(cols):
            tile = heights[level * k : (level + 1) * k + 1, col * k : (col + 1) * k + 1]
            tile[:] = rng.uniform(0.0, top, tile.shape)
    heights[[0, -1], :] = 0.0
    heights[:, [0, -1]] = 0.0
    return Terrain(heights=heights, levels=levels, cols=cols, max_height=max_height)


def add_terrain(spec: mujoco.MjSpec, terrain: Terrain) -> None:
    """Add the terrain as a height field geom named "terrain" (colliding like the floor) and
    lower the world's planes by FLOOR_DROP so they lie under it."""
    for geom in spec.worldbody.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_PLANE:
            geom.pos[2] -= FLOOR_DROP
    nrow, ncol = terrain.heights.shape
    top = float(terrain.heights.max())
    spec.add_hfield(
        name="terrain",
        nrow=nrow,
        ncol=ncol,
        size=[(ncol - 1) * CELL / 2, (nrow - 1) * CELL / 2, max(top, 1e-6), BASE],
        userdata=(terrain.heights / max(top, 1e-6)).ravel().tolist(),
    )
    spec.worldbody.add_geom(
        name="terrain",
        type=mujoco.mjtGeom.mjGEOM_HFIELD,
        hfieldname="terrain",
        pos=[(ncol - 1) * CELL / 2, (nrow - 1) * CELL / 2, 0.0],
        rgba=[0.45, 0.42, 0.38, 1],
        friction=[1.0, 0.005, 0.0001],
    )


def add_foot_touch(spec: mujoco.MjSpec, body: mujoco.MjModel, feet: tuple[str, ...]) -> None:
    """A touch sensor `<foot>_touch` per foot site, on a site 1 cm larger than the foot's
    collision geom: the collidable geom of the site's body nearest the site, in `body` (the
    compiled body alone). A mesh geom gets its bounding sphere."""
    m = body
    for foot in feet:
        site = m.site(foot)
        b = int(site.bodyid[0])
        geoms = [
            g
            for g in range(m.ngeom)
            if m.geom_bodyid[g] == b and (m.geom_contype[g] or m.geom_conaffinity[g])
        ]
        if not geoms:
            raise ValueError(
                f"terrain='rough': foot site {foot!r} has no collision geom on its body "
                "to put a touch sensor around"
            )
        g = min(geoms, key=lambda g: np.linalg.norm(m.geom_pos[g] - site.pos))
        add_touch_site(spec, m, g, f"{foot}_touch")


def add_touch_site(spec: mujoco.MjSpec, m: mujoco.MjModel, geom: int, name: str) -> None:
    """A touch sensor `name` on a site 1 cm larger than geom `geom` of `m` (the compiled
    body), on the same body of `spec`; a shape a site cannot take (a mesh) gets the geom's
    bounding sphere."""
    shape, size = int(m.geom_type[geom]), m.geom_size[geom] + 0.01
    if shape not in SITE_SHAPES:
        shape, size = mujoco.mjtGeom.mjGEOM_SPHERE, [m.geom_rbound[geom] + 0.01, 0, 0]
    spec.body(m.body(int(m.geom_bodyid[geom])).name).add_site(
        name=name, type=shape, pos=m.geom_pos[geom], quat=m.geom_quat[geom], size=size, group=5
    )
    spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_TOUCH,
                    objtype=mujoco.mjtObj.mjOBJ_SITE, objname=name)  # fmt: skip


def next_level(
    level: torch.Tensor,
    fell: torch.Tensor,
    walked: torch.Tensor,
    commanded: torch.Tensor,
    ran: torch.Tensor,
    random_level: torch.Tensor,
    levels: int,
) -> torch.Tensor:
    """The curriculum rule, per env (all arguments (k,)): an episode that `ran` (at least
    one step) moves its env's level
    - up one when it did not fall, was commanded at least MIN_COMMANDED m and walked at
      least UP (half) of it along the command; past the top the env goes to `random_level`
      (so the top levels keep company with the lower ones and nothing is forgotten);
    - down one (not below 0) when it fell, or was commanded at least MIN_COMMANDED m and
      walked less than DOWN (a quarter) of it;
    - nowhere otherwise (standing or short commands that did not fall, middling walks)."""
    counts = ran & (commanded >= MIN_COMMANDED)
    up = counts & ~fell & (walked >= UP * commanded)
    down = ran & (fell | (counts & (walked < DOWN * commanded)))
    new = level + up.long() - down.long()
    new = torch.where(new >= levels, random_level, new)
    return new.clamp_min(0)


class TerrainCurriculum:
    """Per-env levels, spawn points and ground heights of a `Terrain`, on `device`."""

    def __init__(self, terrain: Terrain, num_envs: int, device: torch.device, footprint: float):
        self.terrain = terrain
        self.heights = torch.tensor(terrain.heights, dtype=torch.float32, device=device)
        self.spawn_z = torch.tensor(
            terrain.spawn_heights(footprint), dtype=torch.float32, device=device
        )
        self.level = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.walked = torch.zeros(num_envs, device=device)  # m along the command
        self.commanded = torch.zeros(num_envs, device=device)  # m
        self.time = torch.zeros(num_envs, device=device)  # s since the env's reset

    def ground(self, xy: torch.Tensor) -> torch.Tensor:
        """Height (m) of the terrain under world points xy (..., 2), interpolated bilinearly
        between grid points; points off the grid read the nearest edge (0, the floor)."""
        rows, cols = self.heights.shape
        g = xy / CELL
        x = g[..., 0].clamp(0, cols - 1.001)
        y = g[..., 1].clamp(0, rows - 1.001)
        x0, y0 = x.floor().long(), y.floor().long()
        fx, fy = x - x0, y - y0
        h = self.heights
        bottom = h[y0, x0] * (1 - fx) + h[y0, x0 + 1] * fx
        top = h[y0 + 1, x0] * (1 - fx) + h[y0 + 1, x0 + 1] * fx
        return bottom * (1 - fy) + top * fy

    def track(self, command_xy: torch.Tensor, vel_xy: torch.Tensor, dt: float) -> None:
        """Accumulate one control step: command and base velocity (N, 2), the same frame."""
        speed = command_xy.norm(dim=1)
        along = (vel_xy * command_xy).sum(1) / speed.clamp_min(1e-6)
        self.commanded += speed * dt
        self.walked += along * dt
        self.time += dt

    def reset(
        self, env_ids: torch.Tensor, fell: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """New levels for `env_ids` (their episodes ended, `fell` (k,) bool), then their spawn
        points (k, 3): a random column's tile centre on their level, highest ground z."""
        k, dev, t = len(env_ids), self.level.device, self.terrain
        random_level = torch.randint(t.levels, (k,), generator=gen, device=dev)
        col = torch.randint(t.cols, (k,), generator=gen, device=dev)
        level = next_level(
            self.level[env_ids],
            fell,
            self.walked[env_ids],
            self.commanded[env_ids],
            self.time[env_ids] > 0,
            random_level,
            t.levels,
        )
        self.level[env_ids] = level
        self.walked[env_ids] = 0.0
        self.commanded[env_ids] = 0.0
        self.time[env_ids] = 0.0
        x, y = (col.float() + 0.5) * TILE, (level.float() + 0.5) * TILE
        return torch.stack([x, y, self.spawn_z[level, col]], 1)
