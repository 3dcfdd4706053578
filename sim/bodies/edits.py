"""Edits the loader makes to a robot's spec, each small and named (see `loader.py`):

- `set_base`: a free joint on the root body for a floating base (a URDF has none), or
  none for a fixed one; `spawn` puts the lowest collision geom `SPAWN_CLEARANCE` above the
  floor in the default pose (or at the card's `spawn_height`).
- `add_sites`: a site at every frame link (bodies without joints or geoms: URDF `tool0`,
  `imu_link`, camera frames), at the end effector, at each foot (named `*_foot`, which is
  how the velocity task finds feet; at the foot's lowest collision geom) and for the IMU
  (at the base body when the robot has none), with IMU sensors when missing.
- `weld`: a joint the card excludes is removed, its body fixed at the joint's default.
- `add_home_key`: the "home" keyframe holds the default pose and the PD targets.
"""

from __future__ import annotations

import re
from pathlib import Path

import mujoco
import numpy as np

from . import build
from .build import IMU_SENSORS
from .embodiment import JointInfo, SensorLayout
from .guess import Decision, collision_geoms, geom_bottom

SPAWN_CLEARANCE = 0.002  # m between the floor and the lowest collision geom at spawn
_EE_PATTERN = re.compile(r"(^|_)(ee|eef|tcp)(_|$)|end_?effector", re.IGNORECASE)


def set_base(spec: mujoco.MjSpec, model: mujoco.MjModel, floating: bool, path: Path) -> bool:
    """Add a free joint to the root body (floating) or remove it (fixed); True if changed."""
    roots = [b for b in spec.worldbody.bodies]
    free = [j for r in roots for j in r.joints if j.type == mujoco.mjtJoint.mjJNT_FREE]
    if floating and not free:
        if len(roots) != 1:
            raise ValueError(
                f"{path}: base: floating needs one root body, found {len(roots)}; "
                "set base: fixed in the card, or --base fixed"
            )
        roots[0].add_freejoint(name="floating_base")
        return True
    if not floating and free:
        for j in free:
            spec.delete(j)
        return True
    return False


def weld(spec: mujoco.MjSpec, model: mujoco.MjModel, joint: str, qpos: np.ndarray) -> str:
    """Remove `joint`, welding its body at the joint's default position."""
    j = model.joint(joint).id
    value = float(qpos[model.jnt_qposadr[j]])
    sj = spec.joint(joint)
    body = sj.parent
    axis, anchor = np.asarray(sj.axis, float), np.asarray(sj.pos, float)
    axis = axis / (np.linalg.norm(axis) or 1.0)
    quat, pos = np.asarray(body.quat, float), np.asarray(body.pos, float)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    rot = rot.reshape(3, 3)
    if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE:
        dq = np.zeros(4)
        mujoco.mju_axisAngle2Quat(dq, axis, value)
        r = np.zeros(9)
        mujoco.mju_quat2Mat(r, dq)
        body.pos = pos + rot @ (anchor - r.reshape(3, 3) @ anchor)
        out = np.zeros(4)
        mujoco.mju_mulQuat(out, quat, dq)
        body.quat = out
    else:
        body.pos = pos + rot @ (axis * value)
    spec.delete(sj)
    return f"excluded joint {joint!r}: welded at {value:.4g}"


def carry_pose(model: mujoco.MjModel, qpos: np.ndarray, model1: mujoco.MjModel) -> np.ndarray:
    """The default pose moved to the edited model (joints matched by name)."""
    out = model1.qpos0.copy()
    for j in range(model1.njnt):
        name = model1.joint(j).name
        if name and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) >= 0:
            a, b = model1.jnt_qposadr[j], model.jnt_qposadr[model.joint(name).id]
            n = {0: 7, 1: 4}.get(int(model1.jnt_type[j]), 1)
            out[a : a + n] = qpos[b : b + n]
        elif model1.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            a = model1.jnt_qposadr[j]
            out[a : a + 3] = model1.body_pos[model1.jnt_bodyid[j]]
            out[a + 3 : a + 7] = model1.body_quat[model1.jnt_bodyid[j]]
    return out


def spawn(model: mujoco.MjModel, qpos: np.ndarray, height: float | None) -> str:
    """Set the free joint's height: the card's, else lowest collision geom on the floor."""
    free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    a = model.jnt_qposadr[free[0]]
    if height is not None:
        qpos[a + 2] = height
        return f"spawn height {height:.3f} m (card spawn_height)"
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    geoms = collision_geoms(model)
    if geoms.size == 0:
        return "spawn height kept: no collision geoms"
    low = float(geom_bottom(model, data, geoms).min())
    qpos[a + 2] += SPAWN_CLEARANCE - low
    return f"spawn height {qpos[a + 2]:.3f} m: lowest collision geom {SPAWN_CLEARANCE} m up"


def add_sites(
    spec: mujoco.MjSpec, model: mujoco.MjModel, decisions: dict[str, Decision]
) -> SensorLayout:
    """Sites for every frame link, the ee, the feet ("*_foot") and the IMU; the layout."""
    sites = {s.name for s in spec.sites}
    for b in range(1, model.nbody):  # URDF frame links (tool0, imu_link, ...) as sites
        nm = model.body(b).name
        if nm and model.body_jntnum[b] == 0 and model.body_geomnum[b] == 0 and nm not in sites:
            spec.body(nm).add_site(name=nm, size=[0.005, 0, 0], group=4)
            sites.add(nm)
    ee = decisions["ee"].value
    if ee is not None:
        _site_for(spec, model, ee, ee, sites)
    for foot in decisions["feet"].value or []:
        name = foot if foot.endswith("_foot") else f"{foot}_foot"
        _site_for(spec, model, foot, name, sites, at_bottom=True)
    base = decisions["base_body"].value
    imu = decisions["imu"].value
    if imu is None:
        imu = "imu" if "imu" not in sites else "xembody_imu"
        spec.body(base).add_site(name=imu, size=[0.01, 0, 0], group=4)
        sites.add(imu)
    else:
        imu = _site_for(spec, model, imu, imu, sites)
    taken = {s.name for s in spec.sensors}
    if not taken & set(IMU_SENSORS):
        site, types = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtSensor
        kinds = (types.mjSENS_GYRO, types.mjSENS_ACCELEROMETER, types.mjSENS_FRAMEQUAT)
        for sensor_name, kind in zip(IMU_SENSORS, kinds, strict=True):
            spec.add_sensor(name=sensor_name, type=kind, objtype=site, objname=imu)
    fixed = mujoco.mjtCamLight.mjCAMLIGHT_FIXED  # onboard: fixed to a robot body
    cams = [
        model.camera(c).name
        for c in range(model.ncam)
        if model.cam_bodyid[c] != 0 and model.cam_mode[c] == fixed
    ]
    if ee is None:  # the old convention: a site named like an end effector
        ee = next((s for s in sorted(sites) if _EE_PATTERN.search(s)), None)
    return SensorLayout(
        imu_site=imu, base_body=base, ee_site=ee, camera=next((c for c in cams if c), None)
    )


def _site_for(spec, model, ref: str, name: str, sites: set[str], at_bottom: bool = False) -> str:
    """A site called `name` at the site or body `ref` (at its lowest collision geom for
    feet); returns the site name."""
    if ref in sites:
        if ref == name:
            return name
        s = spec.site(ref)
        s.parent.add_site(name=name, pos=s.pos, quat=s.quat, size=[0.01, 0, 0], group=4)
    elif name not in sites:
        b = model.body(ref).id
        pos = [0.0, 0.0, 0.0]
        geoms = [g for g in collision_geoms(model) if model.geom_bodyid[g] == b]
        if at_bottom and geoms:
            pos = model.geom_pos[
                min(geoms, key=lambda g: model.geom_pos[g][2] - model.geom_rbound[g])
            ].tolist()
        spec.body(ref).add_site(name=name, pos=pos, size=[0.01, 0, 0], group=4)
    sites.add(name)
    return name


def foot_sites(model: mujoco.MjModel) -> list[str]:
    return [model.site(s).name for s in range(model.nsite) if model.site(s).name.endswith("_foot")]


def add_home_key(spec, model, qpos, joints: list[JointInfo], action_kind: str) -> None:
    """The "home" keyframe: the default pose, PD targets in ctrl (replaces one in the file)."""
    for key in list(spec.keys):
        if key.name == "home":
            spec.delete(key)
    home = qpos.copy()
    for info in joints:
        home[model.jnt_qposadr[model.joint(info.name).id]] = info.default
    spec.add_key(name="home", qpos=home.tolist())
    if action_kind == "joint_position" and len(spec.actuators) == len(joints):
        spec.keys[-1].ctrl = [info.default for info in joints]


def add_floor(spec: mujoco.MjSpec, model: mujoco.MjModel) -> None:
    """A checkered floor plane at z=0 (and a light when the model has none)."""
    build.add_floor(spec, prefix="xembody_")
    if model.nlight == 0:
        spec.worldbody.add_light(name="xembody_sun", pos=[0, 0, 4], dir=[0, 0, -1])
