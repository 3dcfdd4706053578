"""Procedural wheeled bases ("wheeled" body class), in two drive variants picked by seed.

Differential drive (params["omni"] == 0, floating_base=True): a box chassis on a free
joint (body "base"), two driven wheels "left_wheel" and "right_wheel" (hinges about the
chassis y axis, on the axle through the chassis centre) and two passive frictionless caster
spheres (condim 1) at the front and back. Action (joint_velocity): wheel speeds in rad/s;
positive on both drives forward (+x of the chassis), opposite signs turn in place.

Omnidirectional (params["omni"] == 1, floating_base=False): modelled as a holonomic planar
base, not as mecanum/omni-wheel contacts. The body "base" carries, in this order, the
world-aligned slide joints "base_x" and "base_y" and the hinge "base_yaw" (a root chain at
fixed height, no free joint), each driven by a velocity actuator. Action (joint_velocity):
(vx m/s, vy m/s, yaw rate rad/s) in the WORLD frame. The four wheels are visual geoms
(contype=0, conaffinity=0) that only add mass and inertia.

Both variants have an IMU (site "imu" on the chassis, sensors imu_gyro/imu_acc/imu_quat)
and a forward-looking camera "front_cam" at the front of the chassis. Wheel joints and the
planar base joints are unlimited: their JointInfo.range is (-inf, inf).

Ranges (`WheeledRanges`, all (low, high)):
  omni            (0, 1)           drive variant: 0 differential, 1 omnidirectional (int)
  length          (0.30, 0.60) m   chassis footprint length (x)
  width           (0.20, 0.40) m   chassis footprint width (y)
  chassis_height  (0.06, 0.18) m   chassis box height
  mass            (4.0, 20.0) kg   total mass (chassis, wheels, casters)
  wheel_radius    (0.04, 0.10) m   wheel radius
  track_width     (0.45, 0.65) m   distance between left and right wheel centres
  motor_strength  (0.8, 1.5)       scale on actuator gains and effort limits
  camera_height   (0.03, 0.15) m   front_cam height above the chassis top
  camera_pitch    (0.0, 0.4) rad   front_cam downward pitch
  imu_offset      (-0.05, 0.05) m  x, y, z offset of the IMU from the chassis centre
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from .build import add_imu, add_velocity_actuators, finish, new_spec, uniform
from .embodiment import Embodiment, JointInfo, SensorLayout
from .registry import register

GRAVITY = 9.81
WHEEL_HALF_WIDTH = 0.0175  # m
CLEARANCE = 0.025  # chassis bottom above the floor (m)
CASTER_MASS, MAST_MASS = 0.1, 0.05  # kg
UNLIMITED = (-math.inf, math.inf)


@dataclass(frozen=True, kw_only=True)
class WheeledRanges:
    """Sampling ranges of the wheeled generator; see the module docstring for units."""

    omni: tuple[int, int] = (0, 1)
    length: tuple[float, float] = (0.30, 0.60)
    width: tuple[float, float] = (0.20, 0.40)
    chassis_height: tuple[float, float] = (0.06, 0.18)
    mass: tuple[float, float] = (4.0, 20.0)
    wheel_radius: tuple[float, float] = (0.04, 0.10)
    track_width: tuple[float, float] = (0.45, 0.65)
    motor_strength: tuple[float, float] = (0.8, 1.5)
    camera_height: tuple[float, float] = (0.03, 0.15)
    camera_pitch: tuple[float, float] = (0.0, 0.4)
    imu_offset: tuple[float, float] = (-0.05, 0.05)


def _wheel_geom(
    body: mujoco.MjsBody, name: str, pos: list[float], radius: float, mass: float, visual: bool
) -> None:
    x, y, z = pos
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[radius, 0, 0],
        mass=mass,
        fromto=[x, y - WHEEL_HALF_WIDTH, z, x, y + WHEEL_HALF_WIDTH, z],
        contype=0 if visual else 1,
        conaffinity=0 if visual else 1,
        rgba=[0.1, 0.1, 0.1, 1],
    )


@register("wheeled", WheeledRanges, "wheeled base: differential drive or holonomic omni base")
def sample_wheeled(seed: int, ranges: WheeledRanges) -> Embodiment:
    rng = np.random.default_rng(seed)
    omni = int(rng.integers(int(ranges.omni[0]), int(ranges.omni[1]) + 1))
    length = uniform(rng, ranges.length)
    width = uniform(rng, ranges.width)
    height = uniform(rng, ranges.chassis_height)
    mass = uniform(rng, ranges.mass)
    radius = uniform(rng, ranges.wheel_radius)
    track = uniform(rng, ranges.track_width)
    strength = uniform(rng, ranges.motor_strength)
    cam_h = uniform(rng, ranges.camera_height)
    cam_pitch = uniform(rng, ranges.camera_pitch)
    imu_off = [uniform(rng, ranges.imu_offset) for _ in range(3)]

    name = f"wheeled_s{seed}"
    spec = new_spec(name, timestep=0.005)
    # The base frame sits on the wheel axle, `radius` above the floor.
    base = spec.worldbody.add_body(name="base", pos=[0, 0, radius])
    box_z = max(0.0, CLEARANCE + height / 2 - radius)  # chassis centre in the base frame
    wheel_mass = 0.05 * mass
    n_wheels = 4 if omni else 2
    chassis_mass = mass - n_wheels * wheel_mass - MAST_MASS - (0 if omni else 2 * CASTER_MASS)
    base.add_geom(
        name="chassis",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[length / 2, width / 2, height / 2],
        pos=[0, 0, box_z],
        mass=chassis_mass,
        rgba=[0.2, 0.45, 0.75, 1],
    )
    top = box_z + height / 2
    imu_pos = [imu_off[0], imu_off[1], box_z + imu_off[2]]
    s, c = math.sin(cam_pitch), math.cos(cam_pitch)  # looks along (c, 0, -s)
    quat = np.zeros(4)  # camera axes x = -y, up = (s, 0, c), looking along -z_cam
    mujoco.mju_mat2Quat(quat, np.column_stack([[0, -1, 0], [s, 0, c], [-c, 0, s]]).flatten())
    base.add_camera(name="front_cam", pos=[length / 2, 0, top + cam_h], fovy=75.0, quat=quat)
    base.add_geom(
        name="camera_mast",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.01, 0.01, cam_h / 2],
        pos=[length / 2 - 0.01, 0, top + cam_h / 2],
        mass=MAST_MASS,
        contype=0,
        conaffinity=0,
        rgba=[0.3, 0.3, 0.3, 1],
    )

    if omni:
        wx = max(length / 2 - radius, radius + 0.01)
        for ix, sx in (("front", 1), ("rear", -1)):
            for iy, sy in (("left", 1), ("right", -1)):
                _wheel_geom(
                    base,
                    f"wheel_{ix}_{iy}",
                    [sx * wx, sy * track / 2, 0.0],
                    radius,
                    wheel_mass,
                    visual=True,
                )
        inertia_z = mass * (length**2 + width**2) / 12 + n_wheels * wheel_mass * (
            wx**2 + (track / 2) ** 2
        )
        joints = []
        for jname, kind, axis, gain_mass, vmax in (
            ("base_x", "slide", [1, 0, 0], mass, 1.0),
            ("base_y", "slide", [0, 1, 0], mass, 1.0),
            ("base_yaw", "hinge", [0, 0, 1], inertia_z, 2.0),
        ):
            jtype = mujoco.mjtJoint.mjJNT_SLIDE if kind == "slide" else mujoco.mjtJoint.mjJNT_HINGE
            base.add_joint(name=jname, type=jtype, axis=axis, armature=0.01)
            joints.append(
                JointInfo(
                    name=jname,
                    kind=kind,
                    range=UNLIMITED,
                    default=0.0,
                    kp=0.0,
                    kd=strength * 10.0 * gain_mass,
                    effort_limit=strength * 4.0 * gain_mass * vmax,
                    velocity_limit=vmax,
                )
            )
        home = [0.0, 0.0, 0.0]
    else:
        base.add_freejoint(name="root")
        joints = []
        effort = strength * 0.25 * mass * GRAVITY * radius
        for side, sy in (("left", 1), ("right", -1)):
            wheel = base.add_body(name=f"{side}_wheel", pos=[0, sy * track / 2, 0])
            wheel.add_joint(
                name=f"{side}_wheel",
                type=mujoco.mjtJoint.mjJNT_HINGE,
                axis=[0, 1, 0],
                armature=0.002,
                damping=[1e-4, 0, 0],
            )
            _wheel_geom(wheel, f"{side}_wheel", [0.0, 0.0, 0.0], radius, wheel_mass, visual=False)
            joints.append(
                JointInfo(
                    name=f"{side}_wheel",
                    kind="hinge",
                    range=UNLIMITED,
                    default=0.0,
                    kp=0.0,
                    kd=effort / 2.0,
                    effort_limit=effort,
                    velocity_limit=1.5 / radius,
                )
            )
        # Casters fill the gap between the floor and the chassis bottom; their soft contact
        # (solref 0.05 s) leaves about 3/4 of the weight on the driven wheels for traction.
        caster_r = (radius + box_z - height / 2) / 2
        for tag, sx in (("front", 1), ("rear", -1)):
            base.add_geom(
                name=f"caster_{tag}",
                type=mujoco.mjtGeom.mjGEOM_SPHERE,
                size=[caster_r, 0, 0],
                pos=[sx * (length / 2 - caster_r - 0.01), 0, caster_r - radius],
                mass=CASTER_MASS,
                condim=1,
                priority=1,
                solref=[0.05, 1.0],
                rgba=[0.7, 0.7, 0.7, 1],
            )
        home = [0.0, 0.0, radius, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]

    add_imu(base, spec, pos=imu_pos)
    add_velocity_actuators(spec, joints)
    return finish(
        spec,
        name=name,
        body_class="wheeled",
        joints=joints,
        sensors=SensorLayout(imu_site="imu", base_body="base", ee_site=None, camera="front_cam"),
        floating_base=not omni,
        source=f"generator:wheeled(seed={seed})",
        home_qpos=home,
        action_kind="joint_velocity",
        params={
            "omni": omni,
            "length": length,
            "width": width,
            "chassis_height": height,
            "mass": mass,
            "wheel_radius": radius,
            "track_width": track,
            "motor_strength": strength,
            "camera_height": cam_h,
            "camera_pitch": cam_pitch,
            "imu_offset": imu_off,
        },
    )
