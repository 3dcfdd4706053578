"""A room scene as data (walls and placed assets) and its MJCF, alone or next to a body.

`Scene.spec()` writes a fresh MjSpec (floor, light, walls, one free body per object);
`Scene.mjcf()` its text and `Scene.digest()` the sha256 of that text, which is what "same
seed, same scene" is checked against. `attach_scene(emb, scene)` writes the scene into an
Embodiment's own spec (an arm in front of a cabinet, a mobile base in a room) and returns
an Embodiment whose home key holds the robot's pose followed by the scene's rest pose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import mujoco
import numpy as np

from ..bodies.build import add_floor
from ..bodies.embodiment import Embodiment
from .assets import Asset, add_asset

WALL_THICKNESS = 0.1
WALL_HEIGHT = 2.5
CLEARANCE = 0.001  # objects start this far above their support


@dataclass(frozen=True, kw_only=True)
class Wall:
    """A vertical wall plane: a point on it, its normal (into the room), length, height."""

    point: tuple[float, float]
    normal: tuple[float, float]
    length: float
    height: float = WALL_HEIGHT


@dataclass(frozen=True, kw_only=True)
class Placed:
    """An asset in the room: `center` of its box (m, world), `yaw` of its front (+x), rad;
    `support` is "floor" or the id of the object it stands on; `wall` the index of the wall
    its back is against, or -1."""

    id: str
    asset: Asset
    center: tuple[float, float, float]
    yaw: float
    support: str = "floor"
    wall: int = -1

    def front(self) -> np.ndarray:
        return np.array([math.cos(self.yaw), math.sin(self.yaw)])

    def footprint(self) -> np.ndarray:
        """The (4, 2) xy corners of the box seen from above."""
        d, w, _ = self.asset.size
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s], [s, c]])
        local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [d / 2, w / 2]
        return local @ rot.T + np.asarray(self.center[:2])


@dataclass(frozen=True, kw_only=True)
class Scene:
    """Walls and placed objects; `name` names the model ("twin", "cousin_03")."""

    name: str
    walls: tuple[Wall, ...]
    objects: tuple[Placed, ...]

    def get(self, obj_id: str) -> Placed:
        for o in self.objects:
            if o.id == obj_id:
                return o
        raise KeyError(f"scene {self.name}: no object {obj_id!r}")

    def replace(self, obj: Placed) -> Scene:
        objs = tuple(obj if o.id == obj.id else o for o in self.objects)
        return dataclasses.replace(self, objects=objs)

    def spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        spec.modelname = self.name
        spec.compiler.degree = False
        spec.option.timestep = 0.002
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.visual.global_.offwidth, spec.visual.global_.offheight = 1280, 960
        spec.worldbody.add_light(name="sun", pos=[0, 0, 4], dir=[0, 0, -1])
        add_floor(spec)
        write_scene(spec, self)
        return spec

    def mjcf(self) -> str:
        return self.spec().to_xml()

    def digest(self) -> str:
        return hashlib.sha256(self.mjcf().encode()).hexdigest()


def write_scene(
    spec: mujoco.MjSpec, scene: Scene, *, prefix: str = "", offset=(0.0, 0.0, 0.0)
) -> None:
    """Add `scene`'s walls and objects to `spec`, moved by `offset` = (x, y, yaw) and with
    names starting with `prefix`. Walls are static geoms; objects are free bodies."""
    ox, oy, oyaw = offset
    c, s = math.cos(oyaw), math.sin(oyaw)

    def move(x: float, y: float) -> tuple[float, float]:
        return ox + c * x - s * y, oy + s * x + c * y

    for i, wall in enumerate(scene.walls):
        n = np.asarray(wall.normal, float) / np.linalg.norm(wall.normal)
        px, py = np.asarray(wall.point, float) - n * WALL_THICKNESS / 2
        yaw = math.atan2(n[1], n[0]) + oyaw
        spec.worldbody.add_geom(
            name=f"{prefix}wall{i}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[WALL_THICKNESS / 2, wall.length / 2, wall.height / 2],
            pos=[*move(px, py), wall.height / 2],
            quat=[math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)],
            rgba=[0.85, 0.83, 0.78, 1],
        )
    for obj in scene.objects:
        x, y = move(*obj.center[:2])
        add_asset(
            spec.worldbody,
            obj.asset,
            prefix + obj.id,
            (x, y, obj.center[2]),
            obj.yaw + oyaw,
            degree=spec.compiler.degree,
        )


def attach_scene(
    emb: Embodiment, scene: Scene, *, offset=(0.0, 0.0, 0.0), prefix: str = "scene/"
) -> Embodiment:
    """`emb` with `scene` written into its MJCF, the scene moved by `offset` = (x, y, yaw)
    relative to the body's world frame (the body keeps its floor; the scene adds walls and
    objects only). The "home" key gets the scene's rest pose after the robot's."""
    spec = emb.spec()
    keys = [(k.name, list(k.qpos), list(k.ctrl)) for k in spec.keys]
    for k in list(spec.keys):
        spec.delete(k)
    body_q0 = list(spec.compile().qpos0)
    nq_body = len(body_q0)
    write_scene(spec, scene, prefix=prefix, offset=offset)
    qpos0 = spec.compile().qpos0
    for name, qpos, ctrl in keys:
        robot = qpos if len(qpos) == nq_body else body_q0
        full = [float(v) for v in robot] + [float(v) for v in qpos0[nq_body:]]
        spec.add_key(name=name, qpos=full, ctrl=ctrl)
    spec.compile()  # raises on a bad merge (a name clash, say)
    params = {**emb.params, "scene": scene.name, "scene_offset": [float(v) for v in offset]}
    return dataclasses.replace(emb, mjcf=spec.to_xml(), params=params)
