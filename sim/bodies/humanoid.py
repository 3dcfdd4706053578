"""Procedural biped humanoid generator (body class "humanoid").

A box torso on a free joint (base body "torso", IMU site "imu"), two legs with six hinges
each (hip yaw/roll/pitch, knee, ankle pitch/roll) ending in box feet, and two arms with
3 or 4 hinges each (shoulder pitch/roll[/yaw], elbow). Limb geoms are capsules; body
geoms collide with the floor but never with each other.

Documented ranges (`HumanoidRanges`, each a (low, high) tuple; SI units):

    torso_height       m      box height of the torso
    torso_width        m      box width (y) of the torso
    hip_width          m      lateral distance between the two hip joints
    thigh_length       m      hip to knee
    shin_length        m      knee to ankle
    upper_arm_length   m      shoulder to elbow
    forearm_length     m      elbow to hand tip
    torso_mass         kg     mass of the torso box
    leg_mass           kg     mass of one leg (thigh 45 %, shin 35 %, foot 20 %)
    arm_mass           kg     mass of one arm (upper arm 55 %, forearm 45 %)
    motor_strength     1      scale on every joint's kp, kd and effort limit
    imu_offset         m      offset of the IMU from the torso centre, per axis (x, y, z)
    arm_joints         count  hinges per arm, an integer (3: no shoulder yaw, 4: with it)

Joint angles follow the right-hand rule about the joint axis (pitch: y, roll: x, yaw: z):
positive knee bends the shin back, negative elbow bends the forearm forward.
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
TORSO_DEPTH = 0.18  # m, torso box depth (x)
PELVIS_DROP = 0.06  # m, hip joints below the torso box bottom
FOOT_SIZE = (0.22, 0.10, 0.04)  # m, foot box length, width, height
ANKLE_HEIGHT = 0.03  # m, ankle joint above the foot box top
KNEE_BEND = 0.25  # rad, hip pitch magnitude in the home pose (knee bends twice this)
ARMATURE = 0.02  # kg m^2
DAMPING = 0.5  # N m s/rad, passive joint damping


@dataclass(frozen=True, kw_only=True)
class HumanoidRanges:
    """Sampling ranges of the humanoid generator; units in the module docstring."""

    torso_height: tuple[float, float] = (0.35, 0.55)
    torso_width: tuple[float, float] = (0.26, 0.38)
    hip_width: tuple[float, float] = (0.16, 0.24)
    thigh_length: tuple[float, float] = (0.30, 0.45)
    shin_length: tuple[float, float] = (0.30, 0.45)
    upper_arm_length: tuple[float, float] = (0.22, 0.32)
    forearm_length: tuple[float, float] = (0.20, 0.30)
    torso_mass: tuple[float, float] = (8.0, 20.0)
    leg_mass: tuple[float, float] = (3.0, 7.0)
    arm_mass: tuple[float, float] = (1.0, 3.0)
    motor_strength: tuple[float, float] = (0.8, 1.25)
    imu_offset: tuple[float, float] = (-0.04, 0.04)
    arm_joints: tuple[int, int] = (3, 4)


@register("humanoid", HumanoidRanges, "biped: 6-hinge legs, 3-4-hinge arms, box feet")
def sample_humanoid(seed: int, ranges: HumanoidRanges) -> Embodiment:
    rng = np.random.default_rng(seed)
    u = lambda bounds: build.uniform(rng, bounds)  # noqa: E731
    p: dict[str, object] = {
        "torso_height": u(ranges.torso_height),
        "torso_width": u(ranges.torso_width),
        "hip_width": u(ranges.hip_width),
        "thigh_length": u(ranges.thigh_length),
        "shin_length": u(ranges.shin_length),
        "upper_arm_length": u(ranges.upper_arm_length),
        "forearm_length": u(ranges.forearm_length),
        "torso_mass": u(ranges.torso_mass),
        "leg_mass": u(ranges.leg_mass),
        "arm_mass": u(ranges.arm_mass),
        "motor_strength": u(ranges.motor_strength),
        "imu_offset": [u(ranges.imu_offset) for _ in range(3)],
        "arm_joints": int(rng.integers(ranges.arm_joints[0], ranges.arm_joints[1] + 1)),
    }
    th, tw, hw = float(p["torso_height"]), float(p["torso_width"]), float(p["hip_width"])
    thigh, shin = float(p["thigh_length"]), float(p["shin_length"])
    upper, fore = float(p["upper_arm_length"]), float(p["forearm_length"])
    leg_m, arm_m, strength = float(p["leg_mass"]), float(p["arm_mass"]), float(p["motor_strength"])
    n_arm = int(p["arm_joints"])  # type: ignore[call-overload]
    total_mass = float(p["torso_mass"]) + 2 * leg_m + 2 * arm_m

    # Effort scales: the torque that holds the whole body at the end of a leg / one arm out.
    leg_torque = total_mass * G * (thigh + shin) * strength
    arm_torque = arm_m * G * (upper + fore) * 3.0 * strength

    def joint(name: str, rng_: tuple[float, float], default: float, effort: float) -> JointInfo:
        return build.legged_hinge(name, rng_, default, effort, velocity_limit=20.0)

    name = f"humanoid_s{seed}"
    spec = build.new_spec(name, timestep=0.005)
    torso = spec.worldbody.add_body(name="torso")
    torso.add_freejoint(name="root")
    torso.add_geom(
        name="torso_geom",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[TORSO_DEPTH / 2, tw / 2, th / 2],
        mass=float(p["torso_mass"]),
        contype=2,
        conaffinity=1,
        rgba=[0.35, 0.45, 0.6, 1],
    )
    torso.add_geom(
        name="head",
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        pos=[0, 0, th / 2 + 0.11],
        size=[0.09, 0, 0],
        mass=0.05 * float(p["torso_mass"]),
        contype=2,
        conaffinity=1,
        rgba=[0.35, 0.45, 0.6, 1],
    )
    build.add_imu(torso, spec, pos=p["imu_offset"])  # type: ignore[arg-type]
    cam = torso.add_camera(name="track", mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
    cam.pos = [0.0, -3.0, 0.4]
    cam.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    cam.alt.xyaxes = [1, 0, 0, 0, 0.25, 1]

    joints: list[JointInfo] = []
    b = KNEE_BEND
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        # --- leg: hip yaw/roll/pitch in the thigh, knee in the shin, ankle in the foot ----
        hip_z = -th / 2 - PELVIS_DROP
        thigh_b = torso.add_body(name=f"{side}_thigh", pos=[0, sgn * hw / 2, hip_z])
        roll_rng = (-0.3, 0.5) if sgn > 0 else (-0.5, 0.3)
        leg = [
            (thigh_b, joint(f"{side}_hip_yaw", (-0.7, 0.7), 0.0, 0.3 * leg_torque), (0, 0, 1)),
            (thigh_b, joint(f"{side}_hip_roll", roll_rng, 0.0, 0.5 * leg_torque), (1, 0, 0)),
            (thigh_b, joint(f"{side}_hip_pitch", (-2.0, 0.8), -b, 0.5 * leg_torque), (0, 1, 0)),
        ]
        build.add_limb(thigh_b, f"{side}_thigh_geom", thigh, 0.05, 0.45 * leg_m)
        shin_b = thigh_b.add_body(name=f"{side}_shin", pos=[0, 0, -thigh])
        leg.append((shin_b, joint(f"{side}_knee", (0.0, 2.4), 2 * b, 0.5 * leg_torque), (0, 1, 0)))
        build.add_limb(shin_b, f"{side}_shin_geom", shin, 0.04, 0.35 * leg_m)
        foot_b = shin_b.add_body(name=f"{side}_foot", pos=[0, 0, -shin])
        leg += [
            (foot_b, joint(f"{side}_ankle_pitch", (-0.9, 0.7), -b, 0.3 * leg_torque), (0, 1, 0)),
            (foot_b, joint(f"{side}_ankle_roll", (-0.4, 0.4), 0.0, 0.2 * leg_torque), (1, 0, 0)),
        ]
        fl, fw, fh = FOOT_SIZE
        foot_b.add_geom(
            name=f"{side}_foot_geom",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0.03, 0, -ANKLE_HEIGHT - fh / 2],
            size=[fl / 2, fw / 2, fh / 2],
            mass=0.2 * leg_m,
            contype=2,
            conaffinity=1,
            rgba=[0.2, 0.2, 0.2, 1],
        )
        foot_b.add_site(name=f"{side}_foot", pos=[0.03, 0, -ANKLE_HEIGHT - fh], size=[0.01, 0, 0])
        for body, info, axis in leg:
            build.add_hinge(body, info, axis, armature=ARMATURE, damping=DAMPING)
            joints.append(info)

    for side, sgn in (("left", 1.0), ("right", -1.0)):
        # --- arm: shoulder pitch/roll[/yaw] in the upper arm, elbow in the forearm -------
        upper_b = torso.add_body(
            name=f"{side}_upper_arm", pos=[0, sgn * (tw / 2 + 0.05), th / 2 - 0.05]
        )
        roll_rng = (-0.4, 2.5) if sgn > 0 else (-2.5, 0.4)
        arm = [
            (upper_b, joint(f"{side}_shoulder_pitch", (-3.0, 1.2), 0.0, arm_torque), (0, 1, 0)),
            (upper_b, joint(f"{side}_shoulder_roll", roll_rng, sgn * 0.15, arm_torque), (1, 0, 0)),
        ]
        if n_arm >= 4:
            arm.append(
                (
                    upper_b,
                    joint(f"{side}_shoulder_yaw", (-1.5, 1.5), 0.0, 0.5 * arm_torque),
                    (0, 0, 1),
                )
            )
        build.add_limb(upper_b, f"{side}_upper_arm_geom", upper, 0.035, 0.55 * arm_m)
        fore_b = upper_b.add_body(name=f"{side}_forearm", pos=[0, 0, -upper])
        arm.append((fore_b, joint(f"{side}_elbow", (-2.5, 0.0), -0.3, 0.6 * arm_torque), (0, 1, 0)))
        build.add_limb(fore_b, f"{side}_forearm_geom", fore, 0.03, 0.45 * arm_m)
        for body, info, axis in arm:
            build.add_hinge(body, info, axis, armature=ARMATURE, damping=DAMPING)
            joints.append(info)

    build.add_position_actuators(spec, joints)

    # Home: torso upright, feet flat on the floor, knees bent by 2 * KNEE_BEND.
    root_z = th / 2 + PELVIS_DROP + (thigh + shin) * math.cos(b) + ANKLE_HEIGHT + FOOT_SIZE[2]
    root_z += 0.001  # 1 mm clearance so the first step starts out of penetration
    home = [0.0, 0.0, root_z, 1.0, 0.0, 0.0, 0.0] + [j.default for j in joints]
    return build.finish(
        spec,
        name=name,
        body_class="humanoid",
        joints=joints,
        sensors=SensorLayout(imu_site="imu", base_body="torso", ee_site=None, camera="track"),
        floating_base=True,
        source=f"generator:humanoid(seed={seed})",
        params=p,
        home_qpos=home,
    )
