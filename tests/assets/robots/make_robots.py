"""Write the robot fixtures of this folder: robot files with the conventions vendors use.

    .venv/bin/python tests/assets/robots/make_robots.py     # rewrites every file below

Nothing is downloaded; every file comes from this script (numpy writes the meshes), so
`git diff` after a rerun is empty.

- `fixture_arm_description/urdf/arm6.urdf`: a 6-joint arm in a ROS description package,
  `package://` binary STL meshes (visual and collision), fixed frames `base`, `flange` and
  `tool0` on fixed joints, effort and velocity limits, `ros2_control` and `transmission`
  tags, no floating joint (the base is fixed to the world).
- `fixture_quad_description/urdf/quad.urdf`: a 12-joint quadruped in the Unitree style:
  no floating joint, root link `base` fixed to `trunk`, legs `FL_hip_joint` /
  `FL_thigh_joint` / `FL_calf_joint`, feet as fixed-joint links `FL_calf_foot`, an
  `imu_link`; `quad.yaml` is its body card (the standing pose).
- `fixture_humanoid_description/urdf/humanoid.urdf`: a 23-joint humanoid in the Unitree
  G1 style (34 kg, 1.29 m): root link `pelvis`, no floating joint, legs
  `left_hip_pitch_joint` ... `left_ankle_roll_joint` (the foot is `left_ankle_roll_link`),
  `waist_yaw_joint` to `torso_link`, arms `left_shoulder_pitch_joint` ...
  `left_wrist_roll_joint`, fixed frames `imu_link`, `head_link`, `logo_link` and
  `*_hand_palm_link`, `package://` binary `.STL` meshes; `humanoid.yaml` is its body card
  (feet, IMU, the knees-bent standing pose, PD gains, spawn height).
- `dae_robot/urdf/pan_tilt.urdf`: a 2-joint pan-tilt unit whose meshes are COLLADA (.dae),
  which MuJoCo cannot read (written as plain COLLADA XML).
- `mjcf/arm7_armature.xml`: a 7-joint MJCF arm with joint armature and damping, no
  actuators and no keyframe, its tool frame a site `attachment_site`.
"""

# ruff: noqa: E501  (tables of link data and URDF snippets read best one per line)
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STL_DTYPE = np.dtype(
    [("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")]
)  # one binary STL triangle


# --- meshes ----------------------------------------------------------------------------
def box_mesh(size: tuple[float, float, float], center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(12, 3, 3) triangles of a box with full side lengths `size` around `center`."""
    h = np.asarray(size) / 2
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * h
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return corners[np.array(tris)] + np.asarray(center)


def cylinder_mesh(radius: float, length: float, n: int = 24, center=(0, 0, 0)) -> np.ndarray:
    """(4n, 3, 3) triangles of a z-axis cylinder of `length` around `center`."""
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    ring = np.stack([radius * np.cos(a), radius * np.sin(a), np.zeros(n)], 1)
    lo, hi = ring - [0, 0, length / 2], ring + [0, 0, length / 2]
    tris = []
    for i in range(n):
        k = (i + 1) % n
        tris += [(lo[i], lo[k], hi[k]), (lo[i], hi[k], hi[i])]  # side
        tris += [((0, 0, length / 2), hi[i], hi[k]), ((0, 0, -length / 2), lo[k], lo[i])]
    return np.asarray(tris, dtype=float) + np.asarray(center)


def write_stl(path: Path, tris: np.ndarray) -> None:
    """Binary STL: 80-byte header, triangle count, then normal + 3 vertices per triangle."""
    rec = np.zeros(len(tris), STL_DTYPE)
    n = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    rec["normal"] = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    rec["v"] = tris
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"xembody fixture mesh".ljust(80, b" ")
    path.write_bytes(header + np.uint32(len(tris)).tobytes() + rec.tobytes())


def write_dae(path: Path, tris: np.ndarray) -> None:
    """A minimal COLLADA 1.4.1 file of the triangles (one geometry, one node, metres, Z up)."""
    pos = " ".join(f"{x:.6g}" for x in tris.reshape(-1))
    idx = " ".join(str(i) for i in range(len(tris) * 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        DAE.format(
            name=path.stem, n=len(tris), nv=3 * len(tris), nf=9 * len(tris), pos=pos, idx=idx
        )
    )


DAE = """<?xml version="1.0" encoding="utf-8"?>
<COLLADA xmlns="http://www.collada.org/2005/11/COLLADASchema" version="1.4.1">
  <asset><unit name="meter" meter="1"/><up_axis>Z_UP</up_axis></asset>
  <library_geometries>
    <geometry id="{name}-mesh" name="{name}"><mesh>
      <source id="{name}-pos">
        <float_array id="{name}-pos-array" count="{nf}">{pos}</float_array>
        <technique_common><accessor source="#{name}-pos-array" count="{nv}" stride="3">
          <param name="X" type="float"/><param name="Y" type="float"/><param name="Z" type="float"/>
        </accessor></technique_common>
      </source>
      <vertices id="{name}-vtx"><input semantic="POSITION" source="#{name}-pos"/></vertices>
      <triangles count="{n}"><input semantic="VERTEX" source="#{name}-vtx" offset="0"/><p>{idx}</p></triangles>
    </mesh></geometry>
  </library_geometries>
  <library_visual_scenes>
    <visual_scene id="scene"><node id="{name}" name="{name}">
      <instance_geometry url="#{name}-mesh"/>
    </node></visual_scene>
  </library_visual_scenes>
  <scene><instance_visual_scene url="#scene"/></scene>
</COLLADA>
"""


# --- URDF pieces -----------------------------------------------------------------------
def inertial(mass: float, size: tuple[float, float, float], xyz=(0, 0, 0)) -> str:
    """<inertial> of a solid box of full sides `size` (a fair stand-in for any link)."""
    x, y, z = size
    i = [mass / 12 * (b * b + c * c) for b, c in ((y, z), (x, z), (x, y))]
    return (
        f'<inertial><origin xyz="{_v(xyz)}"/><mass value="{mass}"/>'
        f'<inertia ixx="{i[0]:.6g}" iyy="{i[1]:.6g}" izz="{i[2]:.6g}" ixy="0" ixz="0" iyz="0"/>'
        "</inertial>"
    )


def _v(xs) -> str:
    return " ".join(f"{x:.6g}" for x in xs)


def joint(name, kind, parent, child, xyz, axis=None, limit=None, rpy=(0, 0, 0)) -> str:
    s = f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
    s += f'<origin xyz="{_v(xyz)}" rpy="{_v(rpy)}"/>'
    if axis is not None:
        s += f'<axis xyz="{_v(axis)}"/>'
    if limit is not None:
        lo, hi, effort, vel = limit
        s += f'<limit lower="{lo}" upper="{hi}" effort="{effort}" velocity="{vel}"/>'
        s += '<dynamics damping="0.1" friction="0.0"/>'
    return s + "</joint>"


def ros2_control(joints: list[str]) -> str:
    body = "".join(
        f'<joint name="{j}"><command_interface name="position"/>'
        '<state_interface name="position"/><state_interface name="velocity"/></joint>'
        for j in joints
    )
    return (
        '<ros2_control name="FakeSystem" type="system"><hardware>'
        "<plugin>mock_components/GenericSystem</plugin></hardware>" + body + "</ros2_control>"
    )


def transmission(j: str) -> str:
    return (
        f'<transmission name="{j}_trans"><type>transmission_interface/SimpleTransmission</type>'
        f'<joint name="{j}"><hardwareInterface>hardware_interface/EffortJointInterface'
        f'</hardwareInterface></joint><actuator name="{j}_motor"><mechanicalReduction>1'
        "</mechanicalReduction></actuator></transmission>"
    )


def robot(name: str, parts: list[str]) -> str:
    return f'<?xml version="1.0"?>\n<robot name="{name}">\n  ' + "\n  ".join(parts) + "\n</robot>\n"


# --- the fixtures ----------------------------------------------------------------------
ARM_PKG = "fixture_arm_description"
# link, mesh kind, size (cylinder: radius, -, length), mass, joint to it (name, axis, xyz,
# lower, upper, effort N m, velocity rad/s)
ARM_LINKS = [
    ("base_link", "cyl", (0.06, 0, 0.08), 2.0, None),
    ("shoulder_link", "cyl", (0.05, 0, 0.10), 1.5, ("shoulder_pan_joint", (0, 0, 1), (0, 0, 0.08), -3.14, 3.14, 60, 3.14)),
    ("upper_arm_link", "box", (0.05, 0.05, 0.30), 1.2, ("shoulder_lift_joint", (0, 1, 0), (0, 0, 0.10), -2.0, 2.0, 60, 3.14)),
    ("forearm_link", "box", (0.04, 0.04, 0.25), 0.8, ("elbow_joint", (0, 1, 0), (0, 0, 0.30), -2.5, 2.5, 30, 3.14)),
    ("wrist_1_link", "cyl", (0.03, 0, 0.06), 0.3, ("wrist_1_joint", (0, 1, 0), (0, 0, 0.25), -3.14, 3.14, 10, 6.28)),
    ("wrist_2_link", "cyl", (0.03, 0, 0.06), 0.3, ("wrist_2_joint", (0, 0, 1), (0, 0, 0.06), -3.14, 3.14, 10, 6.28)),
    ("wrist_3_link", "cyl", (0.03, 0, 0.03), 0.15, ("wrist_3_joint", (0, 1, 0), (0, 0, 0.06), -3.14, 3.14, 10, 6.28)),
]  # fmt: skip


def make_arm() -> Path:
    folder = HERE / ARM_PKG
    parts, parent, names = [], None, []
    for link, kind, size, mass, jnt in ARM_LINKS:
        length = size[2]
        center = (0, 0, length / 2)
        if kind == "cyl":
            tris, box = (
                cylinder_mesh(size[0], length, center=center),
                (2 * size[0],) * 2 + (length,),
            )
        else:
            tris, box = box_mesh(size, center), size
        write_stl(folder / "meshes" / "visual" / f"{link}.stl", tris)
        write_stl(folder / "meshes" / "collision" / f"{link}.stl", tris)
        mesh = f"package://{ARM_PKG}/meshes/%s/{link}.stl"
        parts.append(
            f'<link name="{link}">'
            f'<visual><geometry><mesh filename="{mesh % "visual"}"/></geometry>'
            '<material name="grey"><color rgba="0.6 0.6 0.65 1"/></material></visual>'
            f'<collision><geometry><mesh filename="{mesh % "collision"}"/></geometry></collision>'
            f"{inertial(mass, box, center)}</link>"
        )
        if jnt:
            name, axis, xyz, lo, hi, effort, vel = jnt
            parts.append(joint(name, "revolute", parent, link, xyz, axis, (lo, hi, effort, vel)))
            names.append(name)
        parent = link
    # Fixed frames as ROS-Industrial has them: base (at the root), flange and tool0.
    parts += ['<link name="base"/>', '<link name="flange"/>', '<link name="tool0"/>']
    parts.append(
        joint(
            "base_link-base_fixed_joint",
            "fixed",
            "base_link",
            "base",
            (0, 0, 0),
            rpy=(0, 0, math.pi),
        )
    )
    parts.append(joint("wrist_3-flange", "fixed", "wrist_3_link", "flange", (0, 0, 0.03)))
    parts.append(
        joint("flange-tool0", "fixed", "flange", "tool0", (0, 0, 0.02), rpy=(0, 0, math.pi / 2))
    )
    parts.append(ros2_control(names))
    path = folder / "urdf" / "arm6.urdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(robot("fixture_arm6", parts))
    return path


LEGS = {"FL": (1, 1), "FR": (1, -1), "RL": (-1, 1), "RR": (-1, -1)}


def make_quad() -> Path:
    folder = HERE / "fixture_quad_description"
    trunk = (0.38, 0.19, 0.10)
    parts = [
        '<link name="base"/>',  # Unitree style: an empty root link fixed to the trunk
        f'<link name="trunk"><visual><geometry><box size="{_v(trunk)}"/></geometry></visual>'
        f'<collision><geometry><box size="{_v(trunk)}"/></geometry></collision>'
        f"{inertial(6.0, trunk)}</link>",
        joint("floating_base", "fixed", "base", "trunk", (0, 0, 0)),
        '<link name="imu_link"/>',
        joint("imu_joint", "fixed", "trunk", "imu_link", (-0.02, 0, 0.01)),
    ]
    for leg, (sx, sy) in LEGS.items():
        hip, thigh, calf, foot = (f"{leg}_{p}" for p in ("hip", "thigh", "calf", "calf_foot"))
        parts += [
            f'<link name="{hip}"><visual><origin rpy="1.5708 0 0"/><geometry><cylinder radius="0.04" length="0.04"/></geometry></visual>'
            f"{inertial(0.7, (0.08, 0.04, 0.08))}</link>",
            joint(f"{hip}_joint", "revolute", "trunk", hip, (0.19 * sx, 0.05 * sy, 0), (1, 0, 0), (-0.8, 0.8, 23.7, 30.1)),
            f'<link name="{thigh}"><visual><origin xyz="0 0 -0.1"/><geometry><box size="0.03 0.03 0.2"/></geometry></visual>'
            f'<collision><origin xyz="0 0 -0.1"/><geometry><box size="0.03 0.03 0.2"/></geometry></collision>'
            f"{inertial(1.0, (0.03, 0.03, 0.2), (0, 0, -0.03))}</link>",
            joint(f"{thigh}_joint", "revolute", hip, thigh, (0, 0.08 * sy, 0), (0, 1, 0), (-1.0, 3.5, 23.7, 30.1)),
            f'<link name="{calf}"><visual><origin xyz="0 0 -0.1"/><geometry><cylinder radius="0.013" length="0.2"/></geometry></visual>'
            f"{inertial(0.2, (0.026, 0.026, 0.2), (0, 0, -0.1))}</link>",
            joint(f"{calf}_joint", "revolute", thigh, calf, (0, 0, -0.2), (0, 1, 0), (-2.7, -0.9, 35.5, 20.0)),
            f'<link name="{foot}"><visual><geometry><sphere radius="0.02"/></geometry></visual>'
            f'<collision><geometry><sphere radius="0.02"/></geometry></collision>'
            f"{inertial(0.06, (0.04, 0.04, 0.04))}</link>",
            joint(f"{leg}_foot_fixed", "fixed", calf, foot, (0, 0, -0.2)),
        ]  # fmt: skip
        parts += [transmission(f"{p}_joint") for p in (hip, thigh, calf)]
    path = folder / "urdf" / "quad.urdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(robot("fixture_quad", parts))
    (folder / "urdf" / "quad.yaml").write_text(
        "# Body card of quad.urdf (xembody bodies check quad.urdf --card quad.yaml)\n"
        "class: quadruped\n"
        "base: floating\n"
        "default_pose:  # rad; fnmatch patterns over joint names\n"
        '  "*_hip_joint": 0.0\n'
        '  "*_thigh_joint": 0.8\n'
        '  "*_calf_joint": -1.5\n'
    )
    return path


HUMANOID_PKG = "fixture_humanoid_description"
STAND_BEND = 0.3  # rad: hip pitch -b, knee 2b, ankle pitch -b in the card's standing pose
# One row per link: link, parent, the joint to it as (name, xyz, axis, lower, upper, effort
# N m, velocity rad/s) or a fixed joint's origin xyz, shape (box: full sides; cyl: radius,
# length, axis), shape centre, mass kg, collision ("mesh": the visual STL; "box": a URDF
# box primitive, as vendors often give the trunk; "": none). Limb rows are the left side
# ("{s}"); the right side mirrors y and the roll limits. The small joint housings have no
# collision shape, so none overlap at rest (MuJoCo skips parent-child pairs only).
HUMANOID_LEG = [
    ("{s}_hip_pitch_link", "pelvis", ("{s}_hip_pitch_joint", (0, 0.06, -0.09), (0, 1, 0), -2.5, 2.8, 90, 30), ("cyl", 0.05, 0.06, "y"), (0, 0.02, 0), 1.3, ""),
    ("{s}_hip_roll_link", "{s}_hip_pitch_link", ("{s}_hip_roll_joint", (0, 0.04, -0.02), (1, 0, 0), -0.5, 2.9, 90, 30), ("cyl", 0.045, 0.10, "x"), (0, 0, 0), 1.4, ""),
    ("{s}_hip_yaw_link", "{s}_hip_roll_link", ("{s}_hip_yaw_joint", (0, 0, -0.06), (0, 0, 1), -2.7, 2.7, 90, 30), ("cyl", 0.05, 0.16, "z"), (0, 0, -0.11), 2.2, "mesh"),
    ("{s}_knee_link", "{s}_hip_yaw_link", ("{s}_knee_joint", (0, 0, -0.22), (0, 1, 0), -0.08, 2.8, 130, 20), ("cyl", 0.04, 0.22, "z"), (0, 0, -0.14), 1.6, "mesh"),
    ("{s}_ankle_pitch_link", "{s}_knee_link", ("{s}_ankle_pitch_joint", (0, 0, -0.30), (0, 1, 0), -0.87, 0.52, 45, 35), ("box", 0.03, 0.05, 0.03), (0, 0, 0), 0.1, ""),
    ("{s}_ankle_roll_link", "{s}_ankle_pitch_link", ("{s}_ankle_roll_joint", (0, 0, -0.02), (1, 0, 0), -0.26, 0.26, 45, 35), ("box", 0.21, 0.08, 0.03), (0.03, 0, -0.025), 0.6, "mesh"),
]  # fmt: skip
HUMANOID_ARM = [
    ("{s}_shoulder_pitch_link", "torso_link", ("{s}_shoulder_pitch_joint", (0, 0.15, 0.28), (0, 1, 0), -3.0, 2.6, 25, 37), ("cyl", 0.04, 0.05, "y"), (0, 0.02, 0), 0.7, ""),
    ("{s}_shoulder_roll_link", "{s}_shoulder_pitch_link", ("{s}_shoulder_roll_joint", (0, 0.05, 0), (1, 0, 0), -1.5, 2.2, 25, 37), ("cyl", 0.035, 0.08, "z"), (0, 0, -0.03), 0.6, ""),
    ("{s}_shoulder_yaw_link", "{s}_shoulder_roll_link", ("{s}_shoulder_yaw_joint", (0, 0, -0.07), (0, 0, 1), -2.6, 2.6, 25, 37), ("cyl", 0.035, 0.12, "z"), (0, 0, -0.07), 0.6, "mesh"),
    ("{s}_elbow_link", "{s}_shoulder_yaw_link", ("{s}_elbow_joint", (0, 0, -0.15), (0, 1, 0), -2.1, 0.3, 25, 37), ("cyl", 0.03, 0.14, "z"), (0, 0, -0.09), 0.6, "mesh"),
    ("{s}_wrist_roll_link", "{s}_elbow_link", ("{s}_wrist_roll_joint", (0, 0, -0.18), (0, 0, 1), -1.9, 1.9, 20, 37), ("cyl", 0.03, 0.04, "z"), (0, 0, -0.02), 0.25, ""),
    ("{s}_hand_palm_link", "{s}_wrist_roll_link", (0, 0, -0.05), ("box", 0.06, 0.03, 0.08), (0, 0, -0.04), 0.2, "mesh"),
]  # fmt: skip
HUMANOID_TRUNK = [  # the pelvis (root), the waist and the fixed frames on them
    ("pelvis", None, None, ("box", 0.12, 0.20, 0.10), (0, 0, 0), 4.0, "box"),
    ("imu_link", "pelvis", (-0.04, 0, -0.03), None, None, 0, ""),
    ("torso_link", "pelvis", ("waist_yaw_joint", (0, 0, 0.06), (0, 0, 1), -2.6, 2.6, 90, 30), ("box", 0.13, 0.24, 0.30), (0, 0, 0.17), 8.5, "mesh"),
    ("head_link", "torso_link", (0, 0, 0.42), ("cyl", 0.075, 0.16, "z"), (0, 0, 0), 1.2, "mesh"),
    ("logo_link", "torso_link", (0.066, 0, 0.25), None, None, 0, ""),
]  # fmt: skip
HUMANOID_POSE = {  # the card's standing pose: knees bent, feet flat, arms relaxed
    "*_hip_pitch_joint": -STAND_BEND,
    "*_knee_joint": 2 * STAND_BEND,
    "*_ankle_pitch_joint": -STAND_BEND,
    "left_shoulder_roll_joint": 0.1,
    "right_shoulder_roll_joint": -0.1,
    "*_elbow_joint": -0.4,
}
HUMANOID_GAINS = {  # the card's PD gains, kp N m/rad and kd N m s/rad, as a deploy config has
    "*_hip_*_joint": (150, 4),
    "*_knee_joint": (200, 5),
    "*_ankle_*_joint": (60, 2),
    "waist_yaw_joint": (150, 4),
    "*_shoulder_*_joint": (40, 1.5),
    "*_elbow_joint": (40, 1.5),
    "*_wrist_roll_joint": (10, 0.3),
}


def shape_mesh(shape: tuple, center) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Triangles of a box (full sides) or a cylinder along x, y or z; its bounding box."""
    if shape[0] == "box":
        size = tuple(shape[1:])
        return box_mesh(size, center), size
    _, radius, length, axis = shape
    tris = cylinder_mesh(radius, length, n=16)
    order = {"x": [2, 1, 0], "y": [0, 2, 1], "z": [0, 1, 2]}[axis]  # swap z onto the axis
    size = np.full(3, 2 * radius)
    size[order.index(2)] = length
    return tris[..., order] + np.asarray(center), tuple(size)


def humanoid_side(rows: list[tuple], side: str) -> list[tuple]:
    """Rows of one side: "{s}" filled in, y mirrored on the right, roll limits mirrored."""
    sy = 1 if side == "left" else -1
    mirror = lambda v: (v[0], sy * v[1], v[2])  # noqa: E731
    out = []
    for link, parent, jnt, shape, center, mass, collide in rows:
        if isinstance(jnt[0], str):
            name, xyz, axis, lo, hi, effort, vel = jnt
            if "roll" in name and sy < 0:
                lo, hi = -hi, -lo
            jnt = (name.format(s=side), mirror(xyz), axis, lo, hi, effort, vel)
        else:
            jnt = mirror(jnt)
        out.append(
            (link.format(s=side), parent.format(s=side), jnt, shape, mirror(center), mass, collide)
        )
    return out


def make_humanoid() -> Path:
    folder = HERE / HUMANOID_PKG
    legs = [*humanoid_side(HUMANOID_LEG, "left"), *humanoid_side(HUMANOID_LEG, "right")]
    arms = [*humanoid_side(HUMANOID_ARM, "left"), *humanoid_side(HUMANOID_ARM, "right")]
    pelvis, waist = HUMANOID_TRUNK[:2], HUMANOID_TRUNK[2:]  # pelvis + IMU, torso + frames
    rows = [*pelvis, *legs, *waist, *arms]  # the vendor's order, and so the joints' order
    links, joints = [], []
    for link, parent, jnt, shape, center, mass, collide in rows:
        body = ""
        if shape is not None:
            tris, size = shape_mesh(shape, center)
            write_stl(folder / "meshes" / f"{link}.STL", tris)
            mesh = f'<geometry><mesh filename="package://{HUMANOID_PKG}/meshes/{link}.STL"/></geometry>'
            colour = "0.2 0.2 0.2 1" if collide else "0.7 0.7 0.7 1"
            body = f'<visual>{mesh}<material name="{link}_colour"><color rgba="{colour}"/></material></visual>'
            if collide == "mesh":
                body += f"<collision>{mesh}</collision>"
            elif collide == "box":
                body += f'<collision><origin xyz="{_v(center)}"/><geometry><box size="{_v(size)}"/></geometry></collision>'
            body += inertial(mass, size, center)
        links.append(f'<link name="{link}">{body}</link>' if body else f'<link name="{link}"/>')
        if parent is None:
            continue
        if isinstance(jnt[0], str):
            name, xyz, axis, lo, hi, effort, vel = jnt
            joints.append(joint(name, "revolute", parent, link, xyz, axis, (lo, hi, effort, vel)))
        else:
            name = link.removesuffix("_link") + "_joint"
            joints.append(joint(name, "fixed", parent, link, jnt))
    parts = []
    for lk, jt in zip(links[1:], joints, strict=True):  # vendor order: each link, then its joint
        parts += [lk, jt]
    path = folder / "urdf" / "humanoid.urdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(robot("fixture_humanoid", [links[0], *parts]))
    pose = "".join(f'  "{k}": {v:g}\n' for k, v in HUMANOID_POSE.items())
    pd = "".join(f'    "{k}": {{kp: {p:g}, kd: {d:g}}}\n' for k, (p, d) in HUMANOID_GAINS.items())
    (folder / "urdf" / "humanoid.yaml").write_text(
        "# Body card of humanoid.urdf (xembody bodies check humanoid.urdf --card humanoid.yaml)\n"
        "class: humanoid\n"
        "base: floating\n"
        "feet: [left_ankle_roll_link, right_ankle_roll_link]  # the foot links, sole down\n"
        "imu: imu_link\n"
        "default_pose:  # rad; fnmatch patterns over joint names; knees bent, feet flat\n"
        + pose
        + "gains:  # per joint, as the robot's deploy config sets them\n  joints:\n"
        + pd
        + f"spawn_height: {humanoid_spawn_height():.3f}  # m, pelvis; soles 2-3 mm above the floor\n"
    )
    return path


def humanoid_spawn_height() -> float:
    """Pelvis height (rounded up to the mm) with the soles >= 2 mm above the floor in the
    standing pose."""
    leg = {row[0]: row for row in HUMANOID_LEG}
    z = lambda link: leg[link][2][1][2]  # noqa: E731  joint origin z in the parent
    hip = -z("{s}_hip_pitch_link")
    thigh = -(z("{s}_hip_roll_link") + z("{s}_hip_yaw_link") + z("{s}_knee_link"))
    shin = -z("{s}_ankle_pitch_link")
    _, _, jnt, shape, center, *_ = leg["{s}_ankle_roll_link"]
    sole = -jnt[1][2] - center[2] + shape[3] / 2
    return math.ceil((hip + (thigh + shin) * math.cos(STAND_BEND) + sole + 0.002) * 1000) / 1000


def make_dae() -> Path:
    folder = HERE / "dae_robot"
    write_dae(folder / "meshes" / "base.dae", cylinder_mesh(0.05, 0.06, center=(0, 0, 0.03)))
    write_dae(folder / "meshes" / "head.dae", box_mesh((0.06, 0.12, 0.05), (0, 0, 0.03)))
    parts = [
        '<link name="base_link"><visual><geometry><mesh filename="../meshes/base.dae"/></geometry></visual>'
        '<collision><geometry><mesh filename="../meshes/base.dae"/></geometry></collision>'
        f"{inertial(0.5, (0.1, 0.1, 0.06), (0, 0, 0.03))}</link>",
        f'<link name="pan_link">{inertial(0.1, (0.04, 0.04, 0.04), (0, 0, 0.02))}'
        '<collision><origin xyz="0 0 0.02"/><geometry><cylinder radius="0.02" length="0.04"/></geometry></collision></link>',
        joint("pan_joint", "revolute", "base_link", "pan_link", (0, 0, 0.06), (0, 0, 1), (-2.5, 2.5, 2.0, 4.0)),
        '<link name="tilt_link"><visual><geometry><mesh filename="../meshes/head.dae"/></geometry></visual>'
        '<collision><geometry><mesh filename="../meshes/head.dae"/></geometry></collision>'
        f"{inertial(0.2, (0.06, 0.12, 0.05), (0, 0, 0.03))}</link>",
        joint("tilt_joint", "revolute", "pan_link", "tilt_link", (0, 0, 0.04), (0, 1, 0), (-1.2, 1.2, 2.0, 4.0)),
        '<link name="camera_link"/>',
        joint("camera_joint", "fixed", "tilt_link", "camera_link", (0.03, 0, 0.03)),
    ]  # fmt: skip
    path = folder / "urdf" / "pan_tilt.urdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(robot("fixture_pan_tilt", parts))
    return path


ARM7 = """<mujoco model="fixture_arm7">
  <!-- A 7-joint arm written like a menagerie arm: armature and damping on every joint,
       no actuators, no keyframe; the tool frame is the site "attachment_site". -->
  <compiler angle="radian" autolimits="true"/>
  <option integrator="implicitfast"/>
  <default>
    <joint armature="0.1" damping="1" actuatorfrcrange="-87 87"/>
    <default class="wrist"><joint armature="0.02" damping="0.2" actuatorfrcrange="-12 12"/></default>
    <geom type="capsule" rgba="0.9 0.9 0.9 1"/>
  </default>
  <worldbody>
    <body name="link0">
      <geom type="cylinder" size="0.06 0.05" pos="0 0 0.05" mass="3"/>
      <body name="link1" pos="0 0 0.1">
        <joint name="joint1" axis="0 0 1" range="-2.9 2.9"/>
        <geom fromto="0 0 0 0 0 0.2" size="0.05" mass="2.5"/>
        <body name="link2" pos="0 0 0.2">
          <joint name="joint2" axis="0 1 0" range="-1.76 1.76"/>
          <geom fromto="0 0 0 0 0 0.12" size="0.045" mass="2"/>
          <body name="link3" pos="0 0 0.12">
            <joint name="joint3" axis="0 0 1" range="-2.9 2.9"/>
            <geom fromto="0 0 0 0 0 0.2" size="0.04" mass="1.6"/>
            <body name="link4" pos="0 0 0.2">
              <joint name="joint4" axis="0 1 0" range="-3.07 -0.07"/>
              <geom fromto="0 0 0 0 0 0.12" size="0.04" mass="1.2"/>
              <body name="link5" pos="0 0 0.12">
                <joint name="joint5" class="wrist" axis="0 0 1" range="-2.9 2.9"/>
                <geom fromto="0 0 0 0 0 0.18" size="0.035" mass="0.8"/>
                <body name="link6" pos="0 0 0.18">
                  <joint name="joint6" class="wrist" axis="0 1 0" range="-0.02 3.75"/>
                  <geom fromto="0 0 0 0 0 0.06" size="0.03" mass="0.5"/>
                  <body name="link7" pos="0 0 0.06">
                    <joint name="joint7" class="wrist" axis="0 0 1" range="-2.9 2.9"/>
                    <geom type="cylinder" size="0.04 0.01" pos="0 0 0.01" mass="0.3"/>
                    <site name="attachment_site" pos="0 0 0.02" size="0.005"/>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def make_arm7() -> Path:
    path = HERE / "mjcf" / "arm7_armature.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ARM7)
    return path


FIXTURES = {
    "arm6": make_arm,
    "quad": make_quad,
    "humanoid": make_humanoid,
    "pan_tilt": make_dae,
    "arm7": make_arm7,
}

if __name__ == "__main__":
    for name, make in FIXTURES.items():
        print(f"{name}: {make().relative_to(HERE)}")
