"""Guess what a robot file does not say, and record why: base, class, feet, end effector,
IMU and base body. Every decision carries how it was made (card, option, file, guess or
default) and its evidence, which `xembody bodies check` prints and `--write-card` keeps.

The rules, on the model compiled as the file describes it, posed in its default pose:
- feet: limb ends (bodies with collision geoms below >= 2 joints and no collision geoms
  further down the limb) whose lowest point lies within `FOOT_TOL` of the robot's lowest
  point, clearly below the root body; a fixed-joint frame child (URDF `FL_calf_foot`)
  stands for its limb end.
- base: floating when the file has a free joint, or when >= 2 feet or wheels were found
  (a URDF robot with legs or wheels); else fixed.
- class: 4 feet: quadruped; 2 feet: humanoid; slide x/y joints at the root, or >= 2
  wheels (unlimited hinges with a round collision geom on the floor): wheeled; a fixed
  base with a chain of >= 2 joints: arm; otherwise none (set `class:`).
- end effector (arms): a site or frame named like a tool frame (`EE_NAMES`, in that
  order), else the deepest limb end.
- IMU: a site or body named *imu*, else a site added at the base body.
- base body: the root body, or the first body welded to it that has mass (URDF `base`
  links are often empty frames fixed to a `trunk`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mujoco
import numpy as np

from .card import BodyCard

FOOT_TOL = 0.02  # m above the lowest point that still counts as touching the floor
EE_NAMES = (
    r"tool0", r"tcp", r"(^|_)eef?($|_)", r"end_?effector", r"attachment_site", r"grasp",
    r"gripper", r"tool", r"flange", r"hand",
)  # fmt: skip
_HINGE_SLIDE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


@dataclass(frozen=True)
class Decision:
    value: object
    how: str  # "card" | "option" | "file" | "guess" | "default"
    evidence: str

    def line(self, item: str) -> str:
        return f"{item}: {_show(self.value)}  [{self.how}] {self.evidence}"


def _show(v: object) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "none"
    return "none" if v is None else str(v)


def collision_geoms(model: mujoco.MjModel) -> np.ndarray:
    """Ids of geoms that collide (contype or conaffinity set), planes excluded."""
    g = np.arange(model.ngeom)
    hits = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    return g[hits & (model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE)]


def geom_bottom(model: mujoco.MjModel, data: mujoco.MjData, geoms) -> np.ndarray:
    """World z of the lowest point of each geom (after mj_kinematics): exact for spheres,
    capsules, boxes and meshes (their vertices), the bounding box's corners otherwise."""
    gt = mujoco.mjtGeom
    out = []
    for g in geoms:
        rot, pos, size = data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g], model.geom_size[g]
        kind = model.geom_type[g]
        if kind == gt.mjGEOM_SPHERE:
            out.append(pos[2] - size[0])
        elif kind == gt.mjGEOM_CAPSULE:
            out.append(pos[2] - abs(rot[2, 2]) * size[1] - size[0])
        elif kind == gt.mjGEOM_MESH and model.geom_dataid[g] >= 0:
            mesh = model.geom_dataid[g]
            adr, n = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
            out.append(float((model.mesh_vert[adr : adr + n] @ rot.T)[:, 2].min() + pos[2]))
        else:
            center, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
            corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
            out.append(float(((corners * half + center) @ rot.T)[:, 2].min() + pos[2]))
    return np.asarray(out, dtype=float)


class Guesser:
    """Decisions for one model; `frames` are fixed-joint child links kept as bodies."""

    def __init__(self, model: mujoco.MjModel, qpos: np.ndarray, card: BodyCard, how: dict):
        self.m, self.card, self.how = model, card, how  # how[field]: "card" or "option"
        self.d = mujoco.MjData(model)
        self.d.qpos[:] = qpos
        mujoco.mj_kinematics(model, self.d)
        self.children = {b: [] for b in range(model.nbody)}
        for b in range(1, model.nbody):
            self.children[int(model.body_parentid[b])].append(b)
        self.roots = self.children[0]
        self.coll = collision_geoms(model)
        self.bottom = dict(
            zip(self.coll.tolist(), geom_bottom(model, self.d, self.coll), strict=True)
        )
        self.decisions: dict[str, Decision] = {}

    # --- tree helpers --------------------------------------------------------------------
    def name(self, b: int) -> str:
        return self.m.body(b).name or f"body{b}"

    def joints_above(self, b: int) -> int:
        n = 0
        while b > 0:
            jnts = range(self.m.body_jntadr[b], self.m.body_jntadr[b] + self.m.body_jntnum[b])
            n += sum(int(self.m.jnt_type[j]) in _HINGE_SLIDE for j in jnts)
            b = int(self.m.body_parentid[b])
        return n

    def body_bottom(self, b: int) -> float | None:
        zs = [self.bottom[g] for g in self.coll if self.m.geom_bodyid[g] == b]
        return min(zs) if zs else None

    def subtree(self, b: int) -> list[int]:
        out, stack = [], [b]
        while stack:
            x = stack.pop()
            out.append(x)
            stack += self.children[x]
        return out

    def is_frame(self, b: int) -> bool:
        """A fixed child without joints or geoms: a URDF frame link (tool0, a foot frame)."""
        return self.m.body_jntnum[b] == 0 and self.m.body_geomnum[b] == 0 and b not in self.roots

    # --- decisions -----------------------------------------------------------------------
    def run(self) -> dict[str, Decision]:
        self.free = [
            j
            for j in range(self.m.njnt)
            if self.m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
            and self.m.body_parentid[self.m.jnt_bodyid[j]] == 0
        ]
        self._feet()
        self._wheels()
        self._base()
        self._class()
        self._base_body()
        self._ee()
        self._imu()
        return self.decisions

    def _given(self, item: str, value: object) -> bool:
        if value is None:
            return False
        how = self.how.get(item, "card")
        src = f"from {self.card.path}" if how == "card" and self.card.path else f"set by {how}"
        self.decisions[item] = Decision(value, how, src)
        return True

    def _feet(self) -> None:
        if self._given("feet", list(self.card.feet) if self.card.feet else None):
            return
        if self.coll.size == 0:
            self.decisions["feet"] = Decision([], "guess", "no collision geoms to stand on")
            return
        low = min(self.bottom.values())
        root_low = [self.body_bottom(b) for r in self.roots for b in [r, *self._welded(r)]]
        root_low = min([z for z in root_low if z is not None], default=np.inf)
        ends = []
        for b in range(1, self.m.nbody):
            z = self.body_bottom(b)
            if z is None or self.joints_above(b) < 2:
                continue
            below = [x for x in self.subtree(b)[1:] if self.body_bottom(x) is not None]
            if not below and z <= low + FOOT_TOL and root_low > low + 2 * FOOT_TOL:
                ends.append(b)
        feet = []
        for b in ends:  # a frame child named like a foot stands for its limb end
            frames = [c for c in self.children[b] if self.is_frame(c)]
            named = [c for c in frames if "foot" in self.name(c).lower()]
            feet.append(self.name((named or [b])[0]))
        self.feet_bodies = ends
        ev = (
            f"limb ends within {FOOT_TOL} m of the lowest point ({low:.3f} m) in the default "
            f"pose, below the root (lowest {root_low:.3f} m)"
            if feet
            else "no limb end touches the floor below the root in the default pose"
        )
        self.decisions["feet"] = Decision(feet, "guess", ev)

    def _wheels(self) -> None:
        """Unlimited hinges with a round collision geom on the floor (not recorded as an
        item: they make the base floating and the class wheeled)."""
        gt = mujoco.mjtGeom
        round_ = {
            int(t)
            for t in (gt.mjGEOM_CYLINDER, gt.mjGEOM_SPHERE, gt.mjGEOM_ELLIPSOID, gt.mjGEOM_MESH)
        }
        low = min(self.bottom.values(), default=0.0)
        self.wheels = []
        for j in range(self.m.njnt):
            b = int(self.m.jnt_bodyid[j])
            if self.m.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE or self.m.jnt_limited[j]:
                continue
            geoms = [g for g in self.coll if self.m.geom_bodyid[g] == b]
            if any(
                self.m.geom_type[g] in round_ and self.bottom[g] <= low + FOOT_TOL for g in geoms
            ):
                self.wheels.append(self.m.joint(j).name)

    def _welded(self, b: int) -> list[int]:
        out = []
        for c in self.children[b]:
            if self.m.body_jntnum[c] == 0:
                out += [c, *self._welded(c)]
        return out

    def _base(self) -> None:
        if self._given("base", self.card.base):
            return
        feet = self.decisions["feet"].value
        if self.free:
            root = self.name(self.m.jnt_bodyid[self.free[0]])
            self.decisions["base"] = Decision("floating", "file", f"free joint on {root!r}")
        elif len(feet) >= 2:
            ev = f"{len(feet)} limb ends touch the floor (legs) and the file has no free joint"
            self.decisions["base"] = Decision("floating", "guess", ev)
        elif len(self.wheels) >= 2:
            ev = f"wheels on the floor ({', '.join(self.wheels)}) and the file has no free joint"
            self.decisions["base"] = Decision("floating", "guess", ev)
        else:
            self.decisions["base"] = Decision("fixed", "guess", "no free joint and no legs")

    def _class(self) -> None:
        if self._given("class", self.card.body_class):
            return
        feet = self.decisions["feet"].value
        floating = self.decisions["base"].value == "floating"
        slides = [
            self.m.joint(j).name
            for j in range(self.m.njnt)
            if self.m.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE and self.joints_above(
                self.m.jnt_bodyid[j]) <= 3 and abs(self.m.jnt_axis[j][2]) < 1e-6
        ]  # fmt: skip
        chain = max((self.joints_above(b) for b in range(1, self.m.nbody)), default=0)
        if floating and len(feet) == 4:
            value, ev = "quadruped", "4 feet"
        elif floating and len(feet) == 2:
            value, ev = "humanoid", "2 feet"
        elif len(slides) >= 2 and not floating:
            value, ev = "wheeled", f"planar slide joints at the root ({', '.join(slides[:2])})"
        elif floating and len(self.wheels) >= 2 and not feet:
            value = "wheeled"
            ev = f"unlimited hinges with round geoms on the floor: {', '.join(self.wheels)}"
        elif not floating and chain >= 2:
            value, ev = "arm", f"fixed base, a chain of {chain} joints"
        else:
            value = None
            ev = f"{'floating' if floating else 'fixed'} base with {len(feet)} feet fits no class"
        self.decisions["class"] = Decision(value, "guess", ev)

    def _base_body(self) -> None:
        root = self.roots[0] if self.roots else 0
        massive = [b for b in [root, *self._welded(root)] if self.m.body_mass[b] > 0]
        b = massive[0] if massive else root
        ev = f"root body {self.name(root)!r}"
        if b != root:
            ev += f" is an empty frame; {self.name(b)!r} is welded to it and has mass"
        self.decisions["base_body"] = Decision(self.name(b), "guess", ev)

    def candidates(self) -> list[str]:
        """End-effector candidates: sites and frame links below a joint, deepest first."""
        out = []
        for s in range(self.m.nsite):
            b = int(self.m.site_bodyid[s])
            if self.joints_above(b) and self.m.site(s).name:
                out.append((self.joints_above(b), self.m.site(s).name))
        for b in range(1, self.m.nbody):
            if self.joints_above(b) and (self.is_frame(b) or not self.children[b]):
                out.append((self.joints_above(b), self.name(b)))
        seen, names = set(), []
        for _, n in sorted(out, key=lambda t: -t[0]):
            if n not in seen:
                seen.add(n)
                names.append(n)
        return names

    def _ee(self) -> None:
        if self._given("ee", self.card.ee):
            return
        cands = self.candidates()
        if self.decisions["class"].value != "arm":
            self.decisions["ee"] = Decision(None, "guess", "not an arm")
            return
        for pattern in EE_NAMES:
            hits = [c for c in cands if re.search(pattern, c, re.IGNORECASE)]
            if hits:
                ev = f"name matches {pattern!r} (candidates: {', '.join(cands)})"
                self.decisions["ee"] = Decision(hits[0], "guess", ev)
                return
        value = cands[0] if cands else None
        ev = f"deepest frame of the chain (candidates: {', '.join(cands) or 'none'})"
        self.decisions["ee"] = Decision(value, "guess", ev)

    def _imu(self) -> None:
        if self._given("imu", self.card.imu):
            return
        sites = [self.m.site(s).name for s in range(self.m.nsite)]
        bodies = [self.name(b) for b in range(1, self.m.nbody)]
        named = [n for n in [*sites, *bodies] if "imu" in n.lower()]
        if named:
            self.decisions["imu"] = Decision(named[0], "guess", "named *imu*")
        else:
            base = self.decisions["base_body"].value
            ev = f"no *imu* site or link; a site is added at the base body {base!r}"
            self.decisions["imu"] = Decision(None, "default", ev)
