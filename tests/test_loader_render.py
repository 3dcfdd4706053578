"""Tests for `xembody.sim.bodies.loader.load_body` and `xembody.sim.render`."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
from PIL import Image

from xembody.sim import render
from xembody.sim.bodies.loader import load_body

# A floating torso with three hinge legs and no actuators; {key} is replaced per test.
FLOATING = """<mujoco model="tripod">
  <compiler angle="radian"/>
  <worldbody>
    <body name="torso" pos="0 0 0.5">
      <freejoint/>
      <site name="imu" size="0.01"/>
      <geom type="box" size="0.2 0.1 0.05" mass="4" rgba="0.8 0.3 0.2 1"/>
      <body name="leg1" pos="0.2 0 0">
        <joint name="hip1" axis="0 1 0" range="-1 1"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.03" mass="1"/>
        <body name="foot1" pos="0 0 -0.3">
          <joint name="knee1" axis="0 1 0" range="0.2 2"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.2" size="0.02" mass="0.5"/>
          <site name="ee_site"/>
        </body>
      </body>
      <body name="leg2" pos="-0.2 0 0">
        <joint name="hip2" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.03" mass="1"/>
      </body>
    </body>
  </worldbody>
  {key}
</mujoco>
"""

INERTIA = '<inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/>'
URDF = """<robot name="twolink">
  <mujoco><compiler discardvisual="false"/></mujoco>
  <link name="base">
    <visual><geometry><mesh filename="package://twolink/meshes/cube.obj"/></geometry></visual>
    <inertial><mass value="2"/>{inertia}</inertial>
  </link>
  <link name="upper">
    <collision><geometry><box size="0.05 0.05 0.3"/></geometry></collision>
    <inertial><mass value="1"/>{inertia}</inertial>
  </link>
  <link name="lower">
    <collision><geometry><cylinder radius="0.02" length="0.3"/></geometry></collision>
    <inertial><mass value="0.5"/>{inertia}</inertial>
  </link>
  <joint name="shoulder" type="revolute">
    <parent link="base"/><child link="upper"/><origin xyz="0 0 0.1"/><axis xyz="0 1 0"/>
    <limit lower="-1.5" upper="1.5" effort="12" velocity="3"/>
  </joint>
  <joint name="elbow" type="revolute">
    <parent link="upper"/><child link="lower"/><origin xyz="0 0 0.3"/><axis xyz="0 1 0"/>
    <limit lower="-2" upper="2" effort="6" velocity="3"/>
  </joint>
</robot>
""".replace("{inertia}", INERTIA)

CUBE_OBJ = "\n".join(
    [f"v {x} {y} {z}" for x in (0, 0.1) for y in (0, 0.1) for z in (0, 0.1)]
    + ["f 1 2 4", "f 1 4 3", "f 5 7 8", "f 5 8 6", "f 1 5 6", "f 1 6 2"]
    + ["f 3 4 8", "f 3 8 7", "f 1 3 7", "f 1 7 5", "f 2 6 8", "f 2 8 4"]
)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _forwarded(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    return data


def test_mjcf_without_actuators_gets_pd_actuators(tmp_path: Path) -> None:
    emb = load_body(_write(tmp_path, "tripod.xml", FLOATING.format(key="")), body_class="quadruped")
    assert emb.joint_names == ("hip1", "knee1", "hip2")
    assert emb.floating_base and emb.body_class == "quadruped" and emb.name == "tripod"
    hip1, knee1, hip2 = emb.joints
    assert hip2.range == pytest.approx((-math.pi, math.pi))  # unlimited hinge
    assert knee1.default == pytest.approx(0.2)  # qpos0 = 0 clamped into range
    assert hip1.kp > knee1.kp > 0  # scaled by the moved inertia and load
    assert all(j.kd > 0 for j in emb.joints)  # the rule's values: tests/test_body_card.py
    assert emb.params["default_pose"] == "qpos0"
    assert emb.sensors.imu_site == "imu" and emb.sensors.ee_site == "ee_site"
    assert emb.sensors.base_body == "torso"
    model = emb.compile()
    assert model.nu == 3 and model.actuator("knee1").id == 1
    assert model.sensor("imu_gyro").id >= 0
    assert (model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE).sum() == 1  # floor added
    data = _forwarded(model)
    assert data.ctrl[1] == pytest.approx(0.2)  # the home key holds PD targets
    mujoco.mj_step(model, data, 50)
    assert np.isfinite(data.qpos).all()


def test_degrees_are_read_as_radians(tmp_path: Path) -> None:
    mjcf = FLOATING.format(key="").replace('<compiler angle="radian"/>', "")  # MJCF: degrees
    emb = load_body(_write(tmp_path, "deg.xml", mjcf))
    assert emb.joints[1].range == pytest.approx((math.radians(0.2), math.radians(2)))


def test_kp_kd_arguments_and_keyframe_pose(tmp_path: Path) -> None:
    keys = '<keyframe><key name="first" qpos="0 0 0.5 1 0 0 0 0.1 0.3 0.2"/>'
    keys += '<key name="stand" qpos="0 0 0.5 1 0 0 0 -0.5 1.0 0.4"/></keyframe>'
    emb = load_body(_write(tmp_path, "tripod.xml", FLOATING.format(key=keys)), kp=30.0, kd=2.0)
    assert emb.default_pose == pytest.approx([-0.5, 1.0, 0.4])  # "stand" beats the first
    assert emb.params["default_pose"] == "keyframe 'stand'"
    assert all(j.kp == 30.0 and j.kd == 2.0 for j in emb.joints)
    assert emb.compile().key("home").qpos[7:] == pytest.approx([-0.5, 1.0, 0.4])


def test_actuators_in_the_file_are_read(tmp_path: Path) -> None:
    acts = """<actuator>
      <position joint="knee1" kp="50" kv="3" forcerange="-7 7"/>
      <motor joint="hip1" gear="2" ctrlrange="-5 5"/>
    </actuator>"""
    emb = load_body(_write(tmp_path, "tripod.xml", FLOATING.format(key=acts)))
    knee1, hip1 = emb.joints
    assert (knee1.name, knee1.kp, knee1.kd, knee1.effort_limit) == ("knee1", 50, 3, 7)
    assert hip1.name == "hip1" and hip1.effort_limit == pytest.approx(10.0)  # 2 x 5 N m
    model = emb.compile()
    assert model.actuator_biastype[1] == mujoco.mjtBias.mjBIAS_AFFINE  # motor -> PD


def test_mesh_paths_survive_to_xml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "robot/assets/cube.obj", CUBE_OBJ)
    mjcf = (
        FLOATING.format(key="")
        .replace(
            '<compiler angle="radian"/>',
            '<compiler angle="radian" meshdir="assets"/><asset><mesh file="cube.obj"/></asset>',
        )
        .replace('<site name="imu"', '<geom type="mesh" mesh="cube"/><site name="imu"')
    )
    emb = load_body(_write(tmp_path, "robot/tripod.xml", mjcf))
    monkeypatch.chdir(tmp_path)  # somewhere the relative mesh path would not resolve
    assert mujoco.MjModel.from_xml_string(emb.mjcf).nmesh == 1


def test_urdf_with_two_revolute_links(tmp_path: Path) -> None:
    _write(tmp_path, "twolink/meshes/cube.obj", CUBE_OBJ)
    emb = load_body(_write(tmp_path, "twolink/urdf/twolink.urdf", URDF), body_class="arm")
    assert emb.joint_names == ("shoulder", "elbow")
    assert not emb.floating_base
    assert emb.joints[0].range == pytest.approx((-1.5, 1.5))
    assert [j.effort_limit for j in emb.joints] == pytest.approx([12, 6])  # from URDF
    model = emb.compile()
    assert model.nu == 2 and model.nmesh == 1  # package:// mesh found


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "robot.xml"
    with pytest.raises(FileNotFoundError, match="robot.xml"):
        load_body(path)


def test_malformed_files_name_file_and_problem(tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.xml", "<mujoco><worldbody><body></worldbody>")
    with pytest.raises(ValueError, match=r"broken\.xml.*(?i:xml)"):
        load_body(broken)
    unknown = _write(tmp_path, "unknown.xml", "<mujoco><worldbody><gizmo/></worldbody></mujoco>")
    with pytest.raises(ValueError, match=r"(?s)unknown\.xml.*gizmo"):
        load_body(unknown)
    badref = FLOATING.format(key="").replace('mass="4"', 'mass="4" material="nope"')
    with pytest.raises(ValueError, match=r"(?s)badref\.xml.*nope"):
        load_body(_write(tmp_path, "badref.xml", badref))


def test_wrong_extension_and_no_joints(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'\.txt'.*\.urdf"):
        load_body(_write(tmp_path, "robot.txt", "hello"))
    rock = "<mujoco><worldbody><body><geom size='0.1'/></body></worldbody></mujoco>"
    with pytest.raises(ValueError, match="no movable"):
        load_body(_write(tmp_path, "rock.xml", rock))


@pytest.fixture(scope="module")
def tripod(tmp_path_factory: pytest.TempPathFactory) -> tuple[mujoco.MjModel, mujoco.MjData]:
    mjcf = FLOATING.format(key="").replace(
        '<site name="imu"',
        '<camera name="front" pos="1.5 0 0" xyaxes="0 1 0 0 0 1"/><site name="imu"',
    )
    model = load_body(_write(tmp_path_factory.mktemp("tripod"), "t.xml", mjcf)).compile()
    return model, _forwarded(model)


def test_render_model_gives_a_picture(tripod: tuple[mujoco.MjModel, mujoco.MjData]) -> None:
    model, data = tripod
    image = render.render_model(model, data, width=96, height=64)
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.std() > 5
    assert isinstance(render.gl_backend(), str)  # "egl" here; "raycast" without GL


def test_render_model_falls_back_without_gl(
    tripod: tuple[mujoco.MjModel, mujoco.MjData], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, data = tripod
    monkeypatch.setattr(render, "_probe", lambda backend: False)  # no GL backend works
    render.gl_backend.cache_clear()
    try:
        assert render.gl_backend() == "raycast"
        image = render.render_model(model, data, width=40, height=30)
        assert image.shape == (30, 40, 3) and image.std() > 5
    finally:
        render.gl_backend.cache_clear()


def test_raycast_fallback_gives_a_picture(tripod: tuple[mujoco.MjModel, mujoco.MjData]) -> None:
    model, data = tripod
    image = render.raycast_render(model, data, width=80, height=60)
    assert image.shape == (60, 80, 3) and image.std() > 5
    robot = np.array([0.8, 0.3, 0.2]) * 255  # the torso's colour, shaded
    hue = image.astype(float) / np.maximum(image.max(axis=-1, keepdims=True), 1)
    assert (np.abs(hue - robot / robot.max()).max(axis=-1) < 0.1).any()
    onboard = render.raycast_render(model, data, width=40, height=30, camera="front")
    assert onboard.std() > 5
    forced = render.render_model(model, data, width=40, height=30, backend="raycast")
    assert forced.shape == (30, 40, 3)


def test_grid_and_png(tmp_path: Path) -> None:
    images = [np.full((30, 40, 3), v, np.uint8) for v in (0, 100, 200)]
    grid = render.render_grid(images, ["a", "b", "c"], cols=2)
    assert grid.shape == (60, 80, 3)
    assert grid[5:25, 0:40].std() > 0  # the label is drawn
    path = render.save_png(grid, tmp_path / "out" / "grid.png")
    assert np.array_equal(np.asarray(Image.open(path)), grid)
    with pytest.raises(ValueError):
        render.render_grid(images, ["a"], cols=2)
