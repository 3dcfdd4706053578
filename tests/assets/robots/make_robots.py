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


FIXTURES = {"arm6": make_arm, "quad": make_quad, "pan_tilt": make_dae, "arm7": make_arm7}

if __name__ == "__main__":
    for name, make in FIXTURES.items():
        print(f"{name}: {make().relative_to(HERE)}")
