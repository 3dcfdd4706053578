"""Random rooms with a known layout: the generated "real" scenes that the digital-cousins
pipeline is measured on (xembody.real.perception.evaluate) and that the twin-against-cousins
experiment scans (xembody.models.cousins).

`random_room(rng)` draws a SceneDescription: a back wall (y = 2) and a left wall (x = -2),
one or two cabinets against the back wall (drawers or doors), maybe a shelf against the left
wall, a table (maybe with a box on it), and one to two boxes or cylinders on the floor,
spaced so that footprints never touch. `make_twin` (cousins.py) turns it into a `Scene`
(room.py) whose placed assets are the truth.
"""

from __future__ import annotations

import math

import numpy as np

from .description import ObjectEstimate, SceneDescription, WallPlane

BACK_Y, LEFT_X = 2.0, -2.0
WALL_GAP = 0.06  # m between a wall's inner face and the back of the furniture
SPACING = 0.15  # m kept free between footprints


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _radius(size) -> float:
    return 0.5 * math.hypot(size[0], size[1])


def _free(xy, r: float, taken: list) -> bool:
    return all(math.dist(xy, q) >= r + rq + SPACING for q, rq in taken)


def random_room(rng: np.random.Generator) -> SceneDescription:
    """A random room of 3 to 7 objects (see the module docstring); the same generator
    state gives the same room."""
    walls = (
        WallPlane(point=(0, BACK_Y, 0), normal=(0, -1, 0), extent=(4, 2.5)),
        WallPlane(point=(LEFT_X, 0, 0), normal=(1, 0, 0), extent=(4, 2.5)),
    )
    objs: list[ObjectEstimate] = []
    taken: list = []
    floor = "on_floor"

    def add(oid, category, xy, z, size, yaw, relations, **desc) -> None:
        objs.append(ObjectEstimate(id=oid, category=category, center=(*xy, z), size=size,
                                   yaw=yaw, relations=relations, descriptors=desc))  # fmt: skip
        taken.append((tuple(xy), _radius(size)))

    # cabinets along the back wall, left to right, front facing -y
    x = _u(rng, -1.5, -1.1)
    for i in range(int(rng.integers(1, 3))):
        size = (_u(rng, 0.35, 0.5), _u(rng, 0.5, 0.8), _u(rng, 0.6, 1.0))
        if x + size[1] > 1.6:
            break
        drawers = int(rng.integers(2, 5)) if rng.random() < 0.5 else 0
        doors = 0 if drawers else int(rng.integers(1, 3))
        xy = (x + size[1] / 2, BACK_Y - WALL_GAP - size[0] / 2)
        add(f"cabinet{i}", "cabinet", xy, size[2] / 2, size, -math.pi / 2,
            [floor, "against_wall:0"], n_drawers=drawers, n_doors=doors, handle=True)  # fmt: skip
        x += size[1] + _u(rng, 0.2, 0.4)
    if rng.random() < 0.7:  # shelf on the left wall, front facing +x
        size = (_u(rng, 0.3, 0.4), _u(rng, 0.6, 0.9), _u(rng, 1.0, 1.4))
        xy = (LEFT_X + WALL_GAP + size[0] / 2, _u(rng, -0.6, 0.6))
        if _free(xy, _radius(size), taken):
            add("shelf", "shelf", xy, size[2] / 2, size, 0.0,
                [floor, "against_wall:1"], n_shelves=int(rng.integers(1, 4)))  # fmt: skip
    free = [("table", "table")] + [
        (f"floor{i}", "box" if rng.random() < 0.6 else "cylinder")
        for i in range(int(rng.integers(1, 3)))
    ]
    for oid, category in free:
        if category == "table":
            size = (_u(rng, 0.5, 0.8), _u(rng, 0.8, 1.2), _u(rng, 0.6, 0.8))
        elif category == "box":
            size = (_u(rng, 0.25, 0.45), _u(rng, 0.3, 0.5), _u(rng, 0.2, 0.4))
        else:
            dia = _u(rng, 0.2, 0.35)
            size = (dia, dia, _u(rng, 0.3, 0.6))
        yaw = 0.0 if category == "cylinder" else _u(rng, -0.7, 0.7)
        for _ in range(50):
            xy = (_u(rng, -1.2, 1.3), _u(rng, -0.9, 1.0))
            if _free(xy, _radius(size), taken):
                break
        else:
            continue
        add(oid, category, xy, size[2] / 2, size, yaw, [floor],
            **({"cylinder_fit": 0.0} if category == "cylinder" else {}))  # fmt: skip
        if category == "table" and rng.random() < 0.7:
            top = (_u(rng, 0.15, 0.3), _u(rng, 0.2, 0.35), _u(rng, 0.1, 0.2))
            objs.append(
                ObjectEstimate(id="box_on_table", category="box",
                               center=(*xy, size[2] + top[2] / 2), size=top,
                               yaw=yaw + _u(rng, -0.4, 0.4), relations=["on_top_of:table"])
            )  # fmt: skip
    return SceneDescription(walls=walls, objects=tuple(objs))
