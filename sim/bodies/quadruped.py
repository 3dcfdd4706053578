"""Procedural quadruped generator (body class "quadruped").

A box trunk on a free joint (base body "trunk", IMU site "imu") and four legs FL, FR, RL,
RR with three hinges each: hip abduction (x axis), hip pitch (y) and knee (y). Thigh and
calf are capsules, feet spheres with a site "<leg>_foot" at the sphere centre. Body geoms
collide with the floor but never with each other. Knees point backwards; the home pose
puts each foot straight below its hip.

Documented ranges (`QuadrupedRanges`, each a (low, high) tuple; SI units):

    trunk_length    m    box length (x) of the trunk; hips sit at +-(length/2 - 0.03)
    trunk_width     m    box width (y); hips sit at +-width/2
    trunk_height    m    box height (z)
    thigh_length    m    hip pitch joint to knee
    calf_length     m    knee to foot centre
    foot_radius     m    radius of the spherical foot
    trunk_mass      kg   mass of the trunk box
    leg_mass        kg   mass of one leg (hip 20 %, thigh 45 %, calf 30 %, foot 5 %)
    motor_strength  1    scale on every joint's kp, kd and effort limit
    imu_offset      m    offset of the IMU from the trunk centre, per axis (x, y, z)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from . import build
from .embodiment import Embodiment, JointInfo, SensorLayout
from .registry import register

G = 9.81
HIP_OFFSET = 0.06  # m, lateral offset of the thigh from the abduction joint
HIP_PITCH = 0.7  # rad, thigh angle in the home pose (knee behind the hip)
ARMATURE = 0.01  # kg m^2
DAMPING = 0.1  # N m s/rad, passive joint damping
LEGS = (("FL", 1.0, 1.0), ("FR", 1.0, -1.0), ("RL", -1.0, 1.0), ("RR", -1.0, -1.0))


@dataclass(frozen=True, kw_only=True)
class QuadrupedRanges:
    """Sampling ranges of the quadruped generator; units in the module docstring."""

    trunk_length: tuple[float, float] = (0.35, 0.60)
    trunk_width: tuple[float, float] = (0.14, 0.26)
    trunk_height: tuple[float, float] = (0.08, 0.14)
    thigh_length: tuple[float, float] = (0.18, 0.30)
    calf_length: tuple[float, float] = (0.18, 0.30)
    foot_radius: tuple[float, float] = (0.018, 0.03)
    trunk_mass: tuple[float, float] = (4.0, 12.0)
    leg_mass: tuple[float, float] = (0.6, 2.0)
    motor_strength: tuple[float, float] = (0.8, 1.25)
    imu_offset: tuple[float, float] = (-0.03, 0.03)


def _home_angles(thigh: float, calf: float) -> tuple[float, float]:
    """Hip pitch and knee angles that put the foot straight below the hip pitch joint."""
    calf_abs = -math.asin(min(1.0, thigh * math.sin(HIP_PITCH) / calf))
    return HIP_PITCH, round(calf_abs - HIP_PITCH, 4)


@register("quadruped", QuadrupedRanges, "four 3-hinge legs (abduction, hip, knee), ball feet")
def sample_quadruped(seed: int, ranges: QuadrupedRanges) -> Embodiment:
    rng = np.random.default_rng(seed)
    p: dict[str, float | list[float]] = {
        f: build.uniform(rng, getattr(ranges, f))
        for f in (
            "trunk_length",
            "trunk_width",
            "trunk_height",
            "thigh_length",
            "calf_length",
            "foot_radius",
            "trunk_mass",
            "leg_mass",
            "motor_strength",
        )
    }
    p["imu_offset"] = [build.uniform(rng, ranges.imu_offset) for _ in range(3)]
    tl, tw, th = float(p["trunk_length"]), float(p["trunk_width"]), float(p["trunk_height"])  # type: ignore[arg-type]
    thigh, calf = float(p["thigh_length"]), float(p["calf_length"])  # type: ignore[arg-type]
    foot_r, leg_m = float(p["foot_radius"]), float(p["leg_mass"])  # type: ignore[arg-type]
    trunk_m, strength = float(p["trunk_mass"]), float(p["motor_strength"])  # type: ignore[arg-type]
    total_mass = trunk_m + 4 * leg_m

    # Effort scale: the torque that holds the whole body at the end of one leg.
    leg_torque = total_mass * G * (thigh + calf) * strength
    hip_q, knee_q = _home_angles(thigh, calf)

    def joint(name: str, rng_: tuple[float, float], default: float, effort: float) -> JointInfo:
        return build.legged_hinge(name, rng_, default, effort, velocity_limit=30.0)

    name = f"quadruped_s{seed}"
    spec = build.new_spec(name, timestep=0.005)
    trunk = spec.worldbody.add_body(name="trunk")
    trunk.add_freejoint(name="root")
    trunk.add_geom(
        name="trunk_geom",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[tl / 2, tw / 2, th / 2],
        mass=trunk_m,
        contype=2,
        conaffinity=1,
        rgba=[0.35, 0.45, 0.6, 1],
    )
    build.add_imu(trunk, spec, pos=p["imu_offset"])  # type: ignore[arg-type]
    cam = trunk.add_camera(name="track", mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
    cam.pos = [0.0, -2.0, 0.3]
    cam.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    cam.alt.xyaxes = [1, 0, 0, 0, 0.25, 1]

    joints: list[JointInfo] = []
    for leg, sx, sy in LEGS:
        hip_b = trunk.add_body(name=f"{leg}_hip", pos=[sx * (tl / 2 - 0.03), sy * tw / 2, 0])
        abd = joint(f"{leg}_hip_abduction", (-0.8, 0.8), 0.0, 0.4 * leg_torque)
        build.add_hinge(hip_b, abd, (1, 0, 0), armature=ARMATURE, damping=DAMPING)
        hip_b.add_geom(
            name=f"{leg}_hip_geom",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, 0, 0, 0, sy * HIP_OFFSET, 0],
            size=[0.03, 0, 0],
            mass=0.2 * leg_m,
            contype=2,
            conaffinity=1,
            rgba=[0.3, 0.3, 0.3, 1],
        )
        thigh_b = hip_b.add_body(name=f"{leg}_thigh", pos=[0, sy * HIP_OFFSET, 0])
        pitch = joint(f"{leg}_hip_pitch", (-1.5, 2.5), hip_q, 0.4 * leg_torque)
        build.add_hinge(thigh_b, pitch, (0, 1, 0), armature=ARMATURE, damping=DAMPING)
        build.add_limb(thigh_b, f"{leg}_thigh_geom", thigh, 0.025, 0.45 * leg_m)
        calf_b = thigh_b.add_body(name=f"{leg}_calf", pos=[0, 0, -thigh])
        knee = joint(f"{leg}_knee", (-2.7, -0.3), knee_q, 0.6 * leg_torque)
        build.add_hinge(calf_b, knee, (0, 1, 0), armature=ARMATURE, damping=DAMPING)
        build.add_limb(calf_b, f"{leg}_calf_geom", calf, 0.018, 0.30 * leg_m)
        calf_b.add_geom(
            name=f"{leg}_foot_geom",
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            pos=[0, 0, -calf],
            size=[foot_r, 0, 0],
            mass=0.05 * leg_m,
            contype=2,
            conaffinity=1,
            friction=[1.0, 0.005, 0.0001],
            rgba=[0.2, 0.2, 0.2, 1],
        )
        calf_b.add_site(name=f"{leg}_foot", pos=[0, 0, -calf], size=[0.01, 0, 0])
        joints += [abd, pitch, knee]

    build.add_position_actuators(spec, joints)

    # Home: trunk level, feet straight below the hips, resting on the floor.
    root_z = thigh * math.cos(hip_q) + calf * math.cos(hip_q + knee_q) + foot_r + 0.001
    home = [0.0, 0.0, root_z, 1.0, 0.0, 0.0, 0.0] + [j.default for j in joints]
    return build.finish(
        spec,
        name=name,
        body_class="quadruped",
        joints=joints,
        sensors=SensorLayout(imu_site="imu", base_body="trunk", ee_site=None, camera="track"),
        floating_base=True,
        source=f"generator:quadruped(seed={seed})",
        params=p,
        home_qpos=home,
    )
