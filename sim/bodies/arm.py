"""Procedural fixed-base serial arm with a parallel gripper ("arm" body class).

The base body "base" (a pedestal) is welded to the world. A chain of 5 to 7 revolute
joints follows: yaw at the base, then a pitch/roll pattern (5: y p p p r, 6: y p p r p r,
7: y p r p r p r; y = yaw about z, p = pitch about y, r = roll about the link axis). Links
are capsules along their local z. The flange carries the site "ee" (z = approach axis),
a palm, a wrist camera "wrist_cam" and two fingers on slide joints: the left finger's
joint "gripper" is actuated, the right finger's "gripper_r" copies it through an equality
joint constraint, so one action drives both. Arm links do not collide with each other
(they do collide with the floor and with objects).

Action (joint_position): arm joint angles in rad, then "gripper" = each finger's travel
from closed in m (the gap between the fingers is twice that). PD gains are sized from the
worst-case gravity torque of each joint, so the default pose holds to about 0.03 rad.

Ranges (`ArmRanges`, all (low, high)):
  n_joints            (5, 7)            number of arm joints (integer)
  link_length         (0.08, 0.30) m    per-link length, one entry per joint
  link_mass           (0.3, 2.0) kg     per-link mass, one entry per joint
  base_height         (0.05, 0.30) m    pedestal height
  motor_strength      (0.8, 1.5)        scale on kp, kd and effort limits
  gripper_stroke      (0.02, 0.05) m    travel of each finger (joint range of "gripper")
  finger_length       (0.04, 0.09) m    finger length
  wrist_cam_offset    (-0.02, 0.02) m   x, y, z offset of the wrist camera from its mount
  wrist_cam_pitch     (0.0, 0.5) rad    tilt of the wrist camera toward the fingers
  scene_cam_distance  (1.2, 2.5) m      fixed scene camera "scene_cam": distance to target
  scene_cam_azimuth   (-0.8, 0.8) rad   its azimuth about z, measured from +x
  scene_cam_elevation (0.25, 0.7) rad   its elevation above the horizontal
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from .build import add_position_actuators, finish, new_spec, uniform
from .embodiment import Embodiment, JointInfo, SensorLayout
from .registry import register

GRAVITY = 9.81
PATTERNS = {5: "ypppr", 6: "ypprpr", 7: "yprprpr"}
AXES = {"y": (0.0, 0.0, 1.0), "p": (0.0, 1.0, 0.0), "r": (0.0, 0.0, 1.0)}
LIMITS = {"y": 2.9, "p": 2.2, "r": 2.9}
HAND_MASS, FINGER_MASS, PALM_HEIGHT, FINGER_HALF = 0.3, 0.05, 0.03, 0.008
CLEARANCE = 0.08  # minimum height of joints and fingertips in the default pose (m)


@dataclass(frozen=True, kw_only=True)
class ArmRanges:
    """Sampling ranges of the arm generator; see the module docstring for units."""

    n_joints: tuple[int, int] = (5, 7)
    link_length: tuple[float, float] = (0.08, 0.30)
    link_mass: tuple[float, float] = (0.3, 2.0)
    base_height: tuple[float, float] = (0.05, 0.30)
    motor_strength: tuple[float, float] = (0.8, 1.5)
    gripper_stroke: tuple[float, float] = (0.02, 0.05)
    finger_length: tuple[float, float] = (0.04, 0.09)
    wrist_cam_offset: tuple[float, float] = (-0.02, 0.02)
    wrist_cam_pitch: tuple[float, float] = (0.0, 0.5)
    scene_cam_distance: tuple[float, float] = (1.2, 2.5)
    scene_cam_azimuth: tuple[float, float] = (-0.8, 0.8)
    scene_cam_elevation: tuple[float, float] = (0.25, 0.7)


def _frame_quat(x: np.ndarray, y: np.ndarray) -> list[float]:
    """Quaternion of the frame whose x and y axes (in parent coordinates) are given."""
    x = x / np.linalg.norm(x)
    y = y / np.linalg.norm(y)
    mat = np.column_stack([x, y, np.cross(x, y)])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.flatten())
    return quat.tolist()


def _default_pose(pattern: str, lengths: list[float], base_h: float, tip: float) -> list[float]:
    """A bent pose (shoulder forward, elbow and wrist bent) that keeps clear of the floor.

    Yaw and roll joints stay at 0, so the arm lies in the x-z plane; the pitch bends are
    scaled down until every joint and the fingertips sit above `CLEARANCE`.
    """
    bends = [0.5, 1.3, 0.6, 0.0]
    for scale in np.linspace(1.0, 0.3, 15):
        q, theta, x, z, zmin, k = [], 0.0, 0.0, base_h, base_h, 0
        for axis, length in zip(pattern, lengths, strict=True):
            angle = 0.0
            if axis == "p":
                angle = float(scale * bends[min(k, 3)])
                k += 1
            q.append(angle)
            theta += angle
            x, z = x + length * math.sin(theta), z + length * math.cos(theta)
            zmin = min(zmin, z)
        zmin = min(zmin, z + tip * math.cos(theta))
        if zmin >= CLEARANCE:
            break
    return q


@register("arm", ArmRanges, "fixed-base serial arm, 5-7 revolute joints, parallel gripper")
def sample_arm(seed: int, ranges: ArmRanges) -> Embodiment:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(int(ranges.n_joints[0]), int(ranges.n_joints[1]) + 1))
    lengths = [uniform(rng, ranges.link_length) for _ in range(n)]
    masses = [uniform(rng, ranges.link_mass) for _ in range(n)]
    base_h = uniform(rng, ranges.base_height)
    strength = uniform(rng, ranges.motor_strength)
    stroke = uniform(rng, ranges.gripper_stroke)
    finger_len = uniform(rng, ranges.finger_length)
    cam_off = [uniform(rng, ranges.wrist_cam_offset) for _ in range(3)]
    cam_pitch = uniform(rng, ranges.wrist_cam_pitch)
    scene_d = uniform(rng, ranges.scene_cam_distance)
    scene_az = uniform(rng, ranges.scene_cam_azimuth)
    scene_el = uniform(rng, ranges.scene_cam_elevation)
    pattern = PATTERNS.get(n, ("y" + "pr" * n)[:n])

    name = f"arm_s{seed}"
    spec = new_spec(name, timestep=0.002)
    base = spec.worldbody.add_body(name="base")
    base.add_geom(
        name="pedestal",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.07, base_h / 2, 0],
        pos=[0, 0, base_h / 2],
        mass=5.0,
        contype=2,
        conaffinity=1,
        rgba=[0.3, 0.3, 0.35, 1],
    )

    # Worst-case gravity torque and inertia about each joint (fully stretched chain).
    hand_mass = HAND_MASS + 2 * FINGER_MASS
    tip = PALM_HEIGHT + finger_len
    joints: list[JointInfo] = []
    defaults = _default_pose(pattern, lengths, base_h, tip)
    parent, pos = base, [0.0, 0.0, base_h]
    for i, (axis, length, mass) in enumerate(zip(pattern, lengths, masses, strict=True)):
        dist = np.cumsum([0.0, *lengths[i:]])
        load = [(m, dist[k] + lengths[i + k] / 2) for k, m in enumerate(masses[i:])]
        load.append((hand_mass, dist[-1] + tip / 2))
        tau = GRAVITY * sum(m * r for m, r in load)
        inertia = sum(m * r * r for m, r in load)
        armature = 0.02 + 0.05 * inertia
        kp = strength * max(30.0, 40.0 * tau)
        kd = 2.0 * math.sqrt(kp * (inertia + armature))
        jname = f"joint{i + 1}"
        joints.append(
            JointInfo(
                name=jname,
                kind="hinge",
                range=(-LIMITS[axis], LIMITS[axis]),
                default=defaults[i],
                kp=kp,
                kd=kd,
                effort_limit=strength * max(10.0, 3.0 * tau),
                velocity_limit=3.0,
            )
        )
        body = parent.add_body(name=f"link{i + 1}", pos=pos)
        body.add_joint(
            name=jname,
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=list(AXES[axis]),
            range=[-LIMITS[axis], LIMITS[axis]],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            armature=armature,
            damping=[0.05 * kd, 0, 0],
        )
        radius = 0.045 - 0.017 * i / max(n - 1, 1)
        body.add_geom(
            name=f"link{i + 1}",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            size=[radius, 0, 0],
            fromto=[0, 0, 0, 0, 0, length],
            mass=mass,
            contype=2,
            conaffinity=1,
            rgba=[0.85, 0.55 + 0.05 * (i % 2), 0.2, 1],
        )
        parent, pos = body, [0.0, 0.0, length]

    # Flange: ee site, palm, wrist camera and the two fingers.
    hand = parent.add_body(name="hand", pos=pos)
    hand.add_site(name="ee", size=[0.01, 0, 0], rgba=[0, 1, 0, 1])
    hand.add_geom(
        name="palm",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.02, 0.06, PALM_HEIGHT / 2],
        pos=[0, 0, PALM_HEIGHT / 2],
        mass=HAND_MASS,
        contype=2,
        conaffinity=1,
        rgba=[0.2, 0.2, 0.22, 1],
    )
    cam_pos = [-0.035 + cam_off[0], cam_off[1], 0.01 + cam_off[2]]
    s, c = math.sin(cam_pitch), math.cos(cam_pitch)  # looks along (s, 0, c): out of the flange
    hand.add_camera(
        name="wrist_cam",
        pos=cam_pos,
        fovy=70.0,
        quat=_frame_quat(np.array([0.0, -1.0, 0.0]), np.array([-c, 0.0, s])),
    )
    finger_kp = strength * 300.0
    for side, sign in (("left", 1.0), ("right", -1.0)):
        finger = hand.add_body(name=f"finger_{side}", pos=[0, sign * FINGER_HALF, PALM_HEIGHT])
        finger.add_joint(
            name="gripper" if side == "left" else "gripper_r",
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, sign, 0],
            range=[0, stroke],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            armature=0.01,
            damping=[1.0, 0, 0],
        )
        finger.add_geom(
            name=f"finger_{side}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.012, FINGER_HALF, finger_len / 2],
            pos=[0, 0, finger_len / 2],
            mass=FINGER_MASS,
            contype=2,
            conaffinity=1,
            friction=[1.5, 0.01, 0.001],
            rgba=[0.15, 0.15, 0.15, 1],
        )
    coupling = spec.add_equality(
        name="finger_coupling", type=mujoco.mjtEq.mjEQ_JOINT, name1="gripper_r", name2="gripper"
    )
    coupling.data[:5] = [0, 1, 0, 0, 0]  # polycoef: gripper_r = gripper
    joints.append(
        JointInfo(
            name="gripper",
            kind="slide",
            range=(0.0, stroke),
            default=stroke,
            kp=finger_kp,
            kd=2.0 * math.sqrt(finger_kp * 0.03),
            effort_limit=strength * 40.0,
            velocity_limit=0.2,
        )
    )

    # Fixed scene camera looking at the arm's working volume.
    target = np.array([0.0, 0.0, base_h + 0.4 * sum(lengths)])
    ray = np.array(
        [
            math.cos(scene_el) * math.cos(scene_az),
            math.cos(scene_el) * math.sin(scene_az),
            math.sin(scene_el),
        ]
    )
    forward = -ray
    right = np.cross(forward, [0.0, 0.0, 1.0])
    spec.worldbody.add_camera(
        name="scene_cam",
        pos=(target + scene_d * ray).tolist(),
        fovy=55.0,
        quat=_frame_quat(right, np.cross(right, forward)),
    )

    add_position_actuators(spec, joints)
    home = [j.default for j in joints] + [stroke]  # arm joints, gripper, gripper_r
    return finish(
        spec,
        name=name,
        body_class="arm",
        joints=joints,
        sensors=SensorLayout(imu_site=None, base_body="base", ee_site="ee", camera="wrist_cam"),
        floating_base=False,
        source=f"generator:arm(seed={seed})",
        home_qpos=home,
        params={
            "n_joints": n,
            "link_length": lengths,
            "link_mass": masses,
            "base_height": base_h,
            "motor_strength": strength,
            "gripper_stroke": stroke,
            "finger_length": finger_len,
            "wrist_cam_offset": cam_off,
            "wrist_cam_pitch": cam_pitch,
            "scene_cam_distance": scene_d,
            "scene_cam_azimuth": scene_az,
            "scene_cam_elevation": scene_el,
        },
    )
