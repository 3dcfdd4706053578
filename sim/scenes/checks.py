"""Physical checks of a room scene, and the repairs that fix what can be fixed.

`check_scene(scene)` answers four questions on the compiled MJCF:
- interpenetration: at the start pose, no contact between two objects (or an object and a
  wall or the floor) deeper than PENETRATION_TOL;
- support: every object's bottom lies within SUPPORT_TOL of the floor or of the top of
  the object it stands on, with its centre over that object's footprint;
- settling: after SETTLE_TIME of simulation no object moved more than DRIFT_POS or turned
  more than DRIFT_ANGLE;
- joints: each drawer and door, pushed by a generalised force from the settled pose,
  reaches the upper and then the lower end of its range within JOINT_TOL of the range.
  The push is the larger of SLIDE_PUSH N (HINGE_PUSH N m for hinges) and what crosses the
  range in half of SWEEP_TIME (8 x inertia x range / SWEEP_TIME^2), plus the joint's
  friction loss and its damping at twice the mean crossing speed.

`repair(scene, report)` snaps unsupported objects onto their support and pushes
overlapping or blocking objects apart in the floor plane; checks then run again.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from .room import CLEARANCE, Placed, Scene

PENETRATION_TOL = 0.002  # m
SUPPORT_TOL = 0.01  # m
SETTLE_TIME = 1.0  # s
DRIFT_POS = 0.01  # m
DRIFT_ANGLE = math.radians(2.0)
SLIDE_PUSH = 20.0  # N
HINGE_PUSH = 3.0  # N m
SWEEP_TIME = 1.5  # s per direction
JOINT_TOL = 0.05  # fraction of the range


@dataclass(kw_only=True)
class Report:
    """What failed: lists of (object, other, amount) per check; empty lists pass."""

    penetrations: list[tuple[str, str, float]] = field(default_factory=list)
    unsupported: list[tuple[str, str, float]] = field(default_factory=list)
    drift: list[tuple[str, float, float]] = field(default_factory=list)
    joints: list[tuple[str, str, float]] = field(default_factory=list)  # joint, blocker, reached
    n_joints_swept: int = 0

    @property
    def ok(self) -> bool:
        return not (self.penetrations or self.unsupported or self.drift or self.joints)

    def reasons(self) -> list[str]:
        out = [f"{a} penetrates {b} by {1000 * d:.1f} mm" for a, b, d in self.penetrations]
        out += [
            f"{a} is not supported ({b} is {100 * g:.1f} cm away)" for a, b, g in self.unsupported
        ]  # noqa: E501
        out += [
            f"{a} drifts {100 * p:.1f} cm / {math.degrees(r):.1f} deg in {SETTLE_TIME} s"
            for a, p, r in self.drift
        ]
        out += [
            f"joint {j} stops at {100 * f:.0f}% of its range" + (f" against {b}" if b else "")
            for j, b, f in self.joints
        ]
        return out

    def summary(self) -> dict:
        return {
            "ok": self.ok,
            "interpenetration": not self.penetrations,
            "supported": not self.unsupported,
            "settles": not self.drift,
            "joints_sweep": not self.joints,
            "joints_swept": self.n_joints_swept,
            "reasons": self.reasons(),
        }


def _root_names(model: mujoco.MjModel) -> list[str]:
    """Per geom, the object it belongs to: the root body's name, or the world geom's name."""
    out = []
    for g in range(model.ngeom):
        root = model.body_rootid[model.geom_bodyid[g]]
        out.append(model.body(root).name if root else (model.geom(g).name or "world"))
    return out


def support_of(scene: Scene, obj: Placed) -> tuple[str, float]:
    """The support `obj` stands on ("floor" or an id) and the height of its top surface."""
    if obj.support == "floor":
        return "floor", 0.0
    under = scene.get(obj.support)
    return under.id, under.center[2] + under.asset.size[2] / 2


def _inside(point: np.ndarray, corners: np.ndarray) -> bool:
    edges = np.roll(corners, -1, axis=0) - corners
    rel = point - corners
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    return bool((cross <= 1e-9).all() or (cross >= -1e-9).all())


def check_scene(scene: Scene, *, joints: bool = True) -> Report:
    """Run the four checks on `scene` (see the module docstring)."""
    rep = Report()
    for obj in scene.objects:
        sup, top = support_of(scene, obj)
        gap = obj.center[2] - obj.asset.size[2] / 2 - top
        over = sup == "floor" or _inside(np.asarray(obj.center[:2]), scene.get(sup).footprint())
        if abs(gap) > SUPPORT_TOL or not over:
            rep.unsupported.append((obj.id, sup, gap if over else float("inf")))
    model = scene.spec().compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    owner = _root_names(model)
    deepest: dict[tuple[str, str], float] = {}
    for con in data.contact[: data.ncon]:
        a, b = sorted((owner[con.geom1], owner[con.geom2]))
        if a != b and -con.dist > PENETRATION_TOL:
            deepest[(a, b)] = max(deepest.get((a, b), 0.0), -float(con.dist))
    rep.penetrations = [(a, b, d) for (a, b), d in sorted(deepest.items())]
    start = data.qpos.copy()
    mujoco.mj_step(model, data, nstep=int(round(SETTLE_TIME / model.opt.timestep)))
    for obj in scene.objects:
        adr = model.jnt_qposadr[model.joint(f"{obj.id}/free").id]
        dpos = float(np.linalg.norm(data.qpos[adr : adr + 3] - start[adr : adr + 3]))
        q0, q1 = start[adr + 3 : adr + 7], data.qpos[adr + 3 : adr + 7]
        dang = 2 * math.acos(min(1.0, abs(float(np.dot(q0, q1)))))
        if dpos > DRIFT_POS or dang > DRIFT_ANGLE:
            rep.drift.append((obj.id, dpos, dang))
    if joints:
        _sweep_joints(model, data, owner, rep)
    return rep


def _sweep_joints(model, settled: mujoco.MjData, owner: list[str], rep: Report) -> None:
    steps = int(round(SWEEP_TIME / model.opt.timestep))
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, settled, full)
    diag = np.diag(full)  # each joint's effective inertia (kg or kg m^2)
    for j in range(model.njnt):
        kind = int(model.jnt_type[j])
        if kind not in (mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_HINGE):
            continue
        rep.n_joints_swept += 1
        lo, hi = model.jnt_range[j]
        dof, adr = model.jnt_dofadr[j], model.jnt_qposadr[j]
        # At least the base push; more for heavy or damped parts, so that an unobstructed
        # part crosses its range in about half the sweep time.
        inertia = diag[dof]
        base = SLIDE_PUSH if kind == mujoco.mjtJoint.mjJNT_SLIDE else HINGE_PUSH
        push = max(base, 8.0 * inertia * (hi - lo) / SWEEP_TIME**2)
        push += model.dof_frictionloss[dof] + model.dof_damping[dof] * 2 * (hi - lo) / SWEEP_TIME
        data = mujoco.MjData(model)
        data.qpos[:], data.qvel[:] = settled.qpos, settled.qvel
        for sign, goal in ((1.0, hi), (-1.0, lo)):
            data.qfrc_applied[:] = 0.0
            data.qfrc_applied[dof] = sign * push
            mujoco.mj_step(model, data, nstep=steps)
            if abs(data.qpos[adr] - goal) > JOINT_TOL * (hi - lo):
                body = model.jnt_bodyid[j]
                blocker = ""
                for con in data.contact[: data.ncon]:
                    g1, g2 = con.geom1, con.geom2
                    if model.geom_bodyid[g1] == body or model.geom_bodyid[g2] == body:
                        other = g2 if model.geom_bodyid[g1] == body else g1
                        if owner[other] != owner[g1 if other == g2 else g2]:
                            blocker = owner[other]
                reached = (data.qpos[adr] - lo) / (hi - lo)
                rep.joints.append((model.joint(j).name, blocker, float(reached)))
                break


def repair(scene: Scene, rep: Report, *, step: float = 0.02) -> Scene:
    """A scene with unsupported objects put on their support and the objects of each
    penetrating or blocking pair pushed apart in the floor plane (the one not against a
    wall moves; walls and the floor never move)."""
    for obj_id, _, _ in rep.unsupported:
        obj = scene.get(obj_id)
        sup, top = support_of(scene, obj)
        z = top + obj.asset.size[2] / 2 + CLEARANCE
        xy = obj.center[:2] if sup == "floor" else scene.get(sup).center[:2]
        scene = scene.replace(dataclasses.replace(obj, center=(*xy, z)))
    pairs = [(a, b, d + step) for a, b, d in rep.penetrations]
    for joint, blocker, _ in rep.joints:
        if blocker:
            pairs.append((joint.split("/")[0], blocker, 0.1))
    ids = {o.id for o in scene.objects}
    for a, b, dist in pairs:
        if a not in ids or b not in ids:  # a wall: move the object out along its normal
            obj_id, wall = (a, b) if a in ids else (b, a)
            if obj_id in ids and wall.startswith("wall") and wall[4:].isdigit():
                normal = np.asarray(scene.walls[int(wall[4:])].normal, float)
                back = scene.get(obj_id).wall
                idx = int(wall[4:])
                if (
                    back not in (-1, idx)
                    and abs(normal @ np.asarray(scene.walls[back].normal)) > 0.5
                ):
                    continue  # would push it into (or off) the wall at its back
                scene = _move(scene, obj_id, normal * dist)
            continue
        mover, other = (scene.get(b), scene.get(a))
        if mover.wall >= 0 and other.wall < 0:
            mover, other = other, mover
        away = np.asarray(mover.center[:2]) - np.asarray(other.center[:2])
        norm = float(np.linalg.norm(away))
        away = away / norm if norm > 1e-6 else other.front()  # same centre: out of its front
        scene = _move(scene, mover.id, away * dist)
    return scene


def _move(scene: Scene, obj_id: str, delta: np.ndarray) -> Scene:
    """`scene` with `obj_id` and everything standing on it moved by `delta` (x, y), m."""
    moving = {obj_id}
    grew = True
    while grew:
        on_top = {o.id for o in scene.objects if o.support in moving}
        grew = not on_top <= moving
        moving |= on_top
    for oid in sorted(moving):
        obj = scene.get(oid)
        x, y = np.asarray(obj.center[:2]) + delta
        scene = scene.replace(dataclasses.replace(obj, center=(float(x), float(y), obj.center[2])))
    return scene
