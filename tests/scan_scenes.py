"""A small room with known layout for the scan and extraction tests (MJCF text + its truth).

Two walls (back at y = 2, left at x = -2), a cabinet with three drawers against the back
wall, a cabinet with two doors, a shelf with two inner boards against the left wall, a table
with a box on it, a box and a cylinder on the floor. Static geoms only (nothing moves).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from xembody.sim.scenes.description import ObjectEstimate, SceneDescription, WallPlane

_GEOM = '<geom type="box" size="{:.4f} {:.4f} {:.4f}" pos="{:.4f} {:.4f} {:.4f}" rgba="{}"/>'


class _Body:
    """Boxes in an object's frame (x front, y width, z up, origin at the box centre)."""

    def __init__(self, name: str, center, yaw: float) -> None:
        self.name, self.center, self.yaw, self.geoms = name, center, yaw, []

    def box(self, size, pos, rgba="0.6 0.5 0.4 1") -> None:
        self.geoms.append(_GEOM.format(*(np.asarray(size) / 2), *pos, rgba))

    def xml(self) -> str:
        c = self.center
        return (
            f'<body name="{self.name}" pos="{c[0]} {c[1]} {c[2]}" euler="0 0 {self.yaw}">'
            + "".join(self.geoms)
            + "</body>"
        )


def _cabinet(name, center, yaw, size, drawers: int, doors: int) -> _Body:
    d, w, h = size
    b = _Body(name, center, yaw)
    t = 0.02  # front thickness; the carcass is the rest of the depth
    b.box((d - t, w, h), (-t / 2, 0, 0), "0.55 0.45 0.35 1")
    gap = 0.012
    x = d / 2 - t / 2
    if drawers:
        fh = (h - gap * (drawers + 1)) / drawers
        for i in range(drawers):
            z = -h / 2 + gap + fh / 2 + i * (fh + gap)
            b.box((t, w - 2 * gap, fh), (x, 0, z), "0.7 0.6 0.45 1")
            b.box((0.025, 0.3 * w, 0.02), (d / 2 + 0.02, 0, z + 0.3 * fh), "0.2 0.2 0.2 1")
    if doors:
        dw = (w - gap * (doors + 1)) / doors
        for i in range(doors):
            y = -w / 2 + gap + dw / 2 + i * (dw + gap)
            b.box((t, dw, h - 2 * gap), (x, y, 0), "0.7 0.6 0.45 1")
            side = -1 if i % 2 == 0 else 1
            hy = y - side * (dw / 2 - 0.05)
            b.box((0.025, 0.02, 0.3 * h), (d / 2 + 0.02, hy, 0.1 * h), "0.2 0.2 0.2 1")
    return b


def _shelf(name, center, yaw, size, boards: int) -> _Body:
    d, w, h = size
    b, t = _Body(name, center, yaw), 0.02
    for s in (-1, 1):
        b.box((d, t, h), (0, s * (w / 2 - t / 2), 0))
    b.box((t, w - 2 * t, h), (-d / 2 + t / 2, 0, 0))
    for i in range(boards + 2):
        z = -h / 2 + t / 2 + i * (h - t) / (boards + 1)
        b.box((d - t, w - 2 * t, t), (t / 2, 0, z), "0.8 0.7 0.5 1")
    return b


def _table(name, center, yaw, size) -> _Body:
    d, w, h = size
    b, t, leg = _Body(name, center, yaw), 0.04, 0.05
    b.box((d, w, t), (0, 0, h / 2 - t / 2), "0.5 0.35 0.25 1")
    for sx in (-1, 1):
        for sy in (-1, 1):
            pos = (sx * (d / 2 - leg), sy * (w / 2 - leg), -t / 2)
            b.box((leg, leg, h - t), pos, "0.4 0.3 0.2 1")
    return b


def room_scene(path: Path) -> tuple[Path, SceneDescription]:
    """Write the room's MJCF to `path`; return it and the true SceneDescription."""
    objs, bodies = [], []

    def add(body, category, size, relations, **desc):
        bodies.append(body)
        objs.append(
            ObjectEstimate(
                id=body.name,
                category=category,
                center=body.center,
                size=size,
                yaw=body.yaw,
                relations=relations,
                descriptors=desc,
            )  # fmt: skip
        )

    half = -math.pi / 2
    size = (0.45, 0.6, 0.8)
    add(_cabinet("drawers", (0.2, 2 - 0.225 - 0.06, 0.4), half, size, 3, 0),
        "cabinet", size, ["on_floor", "against_wall:0"], n_drawers=3, handle=True)  # fmt: skip
    size = (0.4, 0.7, 0.9)
    add(_cabinet("doors", (-0.9, 2 - 0.2 - 0.06, 0.45), half, size, 0, 2),
        "cabinet", size, ["on_floor", "against_wall:0"], n_doors=2, handle=True)  # fmt: skip
    size = (0.35, 0.8, 1.2)
    add(_shelf("shelf", (-2 + 0.175 + 0.06, 0.2, 0.6), 0.0, size, 2),
        "shelf", size, ["on_floor", "against_wall:1"], n_shelves=2)  # fmt: skip
    size = (0.6, 1.0, 0.75)
    add(_table("table", (0.9, 0.6, 0.375), 0.3, size), "table", size, ["on_floor"])
    size = (0.2, 0.3, 0.15)
    box = _Body("box_on_table", (0.95, 0.55, 0.75 + 0.075), 0.5)
    box.box(size, (0, 0, 0), "0.2 0.5 0.8 1")
    add(box, "box", size, ["on_top_of:table"])
    size = (0.3, 0.4, 0.3)
    box = _Body("box", (0.1, -0.1, 0.15), 0.6)
    box.box(size, (0, 0, 0), "0.8 0.3 0.2 1")
    add(box, "box", size, ["on_floor"])
    cyl = _Body("cylinder", (-0.9, -0.2, 0.25), 0.0)
    cyl.geoms.append('<geom type="cylinder" size="0.12 0.25" rgba="0.3 0.7 0.3 1"/>')
    add(cyl, "cylinder", (0.24, 0.24, 0.5), ["on_floor"], cylinder_fit=0.0)

    walls = (
        WallPlane(point=(0, 2, 0), normal=(0, -1, 0), extent=(4, 2.5)),
        WallPlane(point=(-2, 0, 0), normal=(1, 0, 0), extent=(4, 2.5)),
    )
    xml = f"""<mujoco model="scan_test_room">
  <compiler angle="radian"/>
  <visual><headlight ambient="0.4 0.4 0.4" diffuse="0.5 0.5 0.5"/></visual>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="3 3 0.1" rgba="0.8 0.8 0.8 1"/>
    <geom name="wall_back" type="box" size="2 0.05 1.25" pos="0 2.05 1.25" rgba="0.9 0.9 0.85 1"/>
    <geom name="wall_left" type="box" size="0.05 2 1.25" pos="-2.05 0 1.25" rgba="0.9 0.9 0.85 1"/>
    {"".join(b.xml() for b in bodies)}
  </worldbody>
</mujoco>
"""
    path = Path(path)
    path.write_text(xml)
    return path, SceneDescription(walls=walls, objects=tuple(objs))
