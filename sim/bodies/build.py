"""Helpers that every body generator and loader shares: a fresh MjSpec with a floor,
PD actuators, an IMU, and the final step that turns a spec into an `Embodiment`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from .embodiment import ActionSpace, Embodiment, JointInfo, SensorLayout

IMU_SENSORS = ("imu_gyro", "imu_acc", "imu_quat")


def new_spec(model_name: str, *, timestep: float = 0.005, floor: bool = True) -> mujoco.MjSpec:
    """An empty spec in radians with a floor, a light and a checker texture for pictures."""
    spec = mujoco.MjSpec()
    spec.modelname = model_name
    spec.compiler.degree = False
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # A modest arena keeps each MjData small, so many of them stay in cache.
    spec.memory = 1 << 20
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 960
    spec.worldbody.add_light(name="sun", pos=[0, 0, 4], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
    if floor:
        add_floor(spec)
    return spec


def add_floor(spec: mujoco.MjSpec, prefix: str = "") -> None:
    """A checkered floor plane at z=0 with its texture and material (names get `prefix`)."""
    tex = spec.add_texture(
        name=f"{prefix}grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.32, 0.36, 0.40],
        rgb2=[0.26, 0.29, 0.33],
        width=256,
        height=256,
    )
    mat = spec.add_material(name=f"{prefix}grid", texrepeat=[8, 8], reflectance=0.1)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
    spec.worldbody.add_geom(
        name=f"{prefix}floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0, 0, 0.05],
        material=mat.name,
        friction=[1.0, 0.005, 0.0001],
    )


LIMB_RGBA = [0.75, 0.55, 0.35, 1]


def legged_hinge(
    name: str, range_: tuple[float, float], default: float, effort: float, velocity_limit: float
) -> JointInfo:
    """A legged body's hinge: kp so the motor saturates at 0.4 rad of error, kd = 0.03 kp,
    values rounded to 4 significant digits (the MJCF text keeps 6)."""
    kp = effort / 0.4
    return JointInfo(
        name=name,
        kind="hinge",
        range=range_,
        default=round(default, 4),
        kp=_sig(kp),
        kd=_sig(0.03 * kp),
        effort_limit=_sig(effort),
        velocity_limit=velocity_limit,
    )


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def add_limb(body: mujoco.MjsBody, name: str, length: float, radius: float, mass: float) -> None:
    """A capsule hanging down `length` from the body's origin; it touches the floor (and
    other scene objects) but never the robot's own geoms (contype 2, conaffinity 1)."""
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_CAPSULE,
        fromto=[0, 0, 0, 0, 0, -length],
        size=[radius, 0, 0],
        mass=mass,
        contype=2,
        conaffinity=1,
        rgba=LIMB_RGBA,
    )


def add_hinge(
    body: mujoco.MjsBody,
    info: JointInfo,
    axis: Sequence[float],
    *,
    armature: float,
    damping: float,
) -> None:
    """A limited hinge joint on `body` with `info`'s name and range."""
    body.add_joint(
        name=info.name,
        type=mujoco.mjtJoint.mjJNT_HINGE,
        axis=list(axis),
        range=list(info.range),
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        armature=armature,
        damping=damping,
    )


def add_position_actuators(spec: mujoco.MjSpec, joints: Sequence[JointInfo]) -> None:
    """One PD position actuator per joint: ctrl is the target, force clipped to the limit."""
    for j in joints:
        act = spec.add_actuator(name=j.name, target=j.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=j.kp, kv=j.kd)
        act.ctrlrange = list(j.range)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-j.effort_limit, j.effort_limit]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def add_velocity_actuators(spec: mujoco.MjSpec, joints: Sequence[JointInfo]) -> None:
    """One velocity actuator per joint (gain `kd`): ctrl is the target velocity."""
    for j in joints:
        act = spec.add_actuator(name=j.name, target=j.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_velocity(kv=j.kd)
        act.ctrlrange = [-j.velocity_limit, j.velocity_limit]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-j.effort_limit, j.effort_limit]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def add_imu(body: mujoco.MjsBody, spec: mujoco.MjSpec, pos: Sequence[float] = (0, 0, 0)) -> str:
    """An IMU site on `body` with gyro, accelerometer and orientation sensors."""
    body.add_site(name="imu", pos=list(pos), size=[0.01, 0, 0], rgba=[1, 0.5, 0, 1])
    site = mujoco.mjtObj.mjOBJ_SITE
    spec.add_sensor(name="imu_gyro", type=mujoco.mjtSensor.mjSENS_GYRO, objtype=site, objname="imu")
    spec.add_sensor(
        name="imu_acc", type=mujoco.mjtSensor.mjSENS_ACCELEROMETER, objtype=site, objname="imu"
    )
    spec.add_sensor(
        name="imu_quat", type=mujoco.mjtSensor.mjSENS_FRAMEQUAT, objtype=site, objname="imu"
    )
    return "imu"


def finish(
    spec: mujoco.MjSpec,
    *,
    name: str,
    body_class: str,
    joints: Sequence[JointInfo],
    sensors: SensorLayout,
    floating_base: bool,
    source: str,
    params: dict[str, Any],
    home_qpos: Sequence[float] | None = None,
    action_kind: str = "joint_position",
) -> Embodiment:
    """Compile `spec` (raising on any error), add a "home" keyframe, return the Embodiment."""
    if home_qpos is not None:
        # The home key also holds the actuators' targets: the default pose for PD position
        # actuators, zero speed for velocity actuators.
        ctrl = [j.default if action_kind == "joint_position" else 0.0 for j in joints]
        spec.add_key(name="home", qpos=list(map(float, home_qpos)), ctrl=ctrl)
    model = spec.compile()
    if home_qpos is not None and len(home_qpos) != model.nq:
        raise ValueError(f"{name}: home_qpos has {len(home_qpos)} entries, model nq={model.nq}")
    mjcf = spec.to_xml()
    joints = _as_written(joints, mujoco.MjModel.from_xml_string(mjcf), action_kind)
    if action_kind == "joint_position":
        low = tuple(j.range[0] for j in joints)
        high = tuple(j.range[1] for j in joints)
    else:
        low = tuple(-j.velocity_limit for j in joints)
        high = tuple(j.velocity_limit for j in joints)
    return Embodiment(
        name=name,
        body_class=body_class,
        mjcf=mjcf,
        joints=joints,
        sensors=sensors,
        action=ActionSpace(kind=action_kind, low=low, high=high),
        floating_base=floating_base,
        source=source,
        params={k: _plain(v) for k, v in params.items()},
    )


def _as_written(
    joints: Sequence[JointInfo], model: mujoco.MjModel, action_kind: str
) -> tuple[JointInfo, ...]:
    """The joint facts as the written MJCF holds them (it keeps ~6 significant digits), so
    that `Embodiment.joints` and the compiled model agree exactly."""
    home = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    out = []
    for i, j in enumerate(joints):
        jid = model.joint(j.name).id
        lo, hi = model.jnt_range[jid] if model.jnt_limited[jid] else j.range
        key = model.key_qpos[home][model.jnt_qposadr[jid]] if home >= 0 else j.default
        kd = (
            model.actuator_gainprm[i, 0]
            if action_kind != "joint_position"
            else -model.actuator_biasprm[i, 2]
        )
        out.append(
            dataclasses.replace(
                j,
                range=(float(lo), float(hi)),
                default=float(np.clip(key, lo, hi)),
                kp=float(model.actuator_gainprm[i, 0]) if action_kind == "joint_position" else j.kp,
                kd=float(kd),
                effort_limit=float(model.actuator_forcerange[i, 1]),
            )
        )
    return tuple(out)


def _plain(v: Any) -> Any:
    """Numpy scalars/arrays to JSON-friendly Python values."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A float drawn uniformly from `bounds` (a degenerate range returns its value)."""
    lo, hi = bounds
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))
