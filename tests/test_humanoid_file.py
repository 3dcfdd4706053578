"""The vendor-style humanoid of tests/assets/robots (a G1/H1-like URDF written by
make_robots.py, with its body card beside it) loads, does the `velocity` task and trains
from the CLI: 23 revolute joints, no floating joint, `package://` STL meshes, feet given as
the vendor's `*_ankle_roll_link` links, a fixed-joint `imu_link`, fixed frames."""

from __future__ import annotations

import importlib.util
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from xembody.cli import main
from xembody.sim import tasks
from xembody.sim.bodies.build import IMU_SENSORS
from xembody.sim.bodies.for_training import check_for_task, load_for_training
from xembody.sim.bodies.guess import collision_geoms, geom_bottom
from xembody.sim.bodies.loader import load_report
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg
from xembody.sim.tasks.locomotion import VelocityConfig

ROBOTS = Path(__file__).parent / "assets" / "robots"
PACKAGE = ROBOTS / "fixture_humanoid_description"
HUMANOID = PACKAGE / "urdf" / "humanoid.urdf"
FEET = ["left_ankle_roll_link", "right_ankle_roll_link"]


@pytest.fixture(autouse=True)
def _mesh_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XEMBODY_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _file_joints(kind: str) -> list[str]:
    root = ET.parse(HUMANOID).getroot()
    return [j.get("name") for j in root.iter("joint") if j.get("type") == kind]


def test_the_files_are_what_make_robots_writes(tmp_path: Path, monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("make_robots", ROBOTS / "make_robots.py")
    make_robots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_robots)
    monkeypatch.setattr(make_robots, "HERE", tmp_path)
    make_robots.make_humanoid()
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROBOTS) for p in PACKAGE.rglob("*") if p.is_file())
    assert written == committed
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (ROBOTS / rel).read_bytes(), rel


def test_the_file_is_a_vendor_humanoid_without_simulator_tags() -> None:
    text = HUMANOID.read_text()
    root = ET.fromstring(text)
    assert root.find("mujoco") is None and "floating" not in text
    assert len(_file_joints("revolute")) == 23 and not _file_joints("floating")
    fixed = {j.find("child").get("link") for j in root.iter("joint") if j.get("type") == "fixed"}
    palms = {"left_hand_palm_link", "right_hand_palm_link"}
    assert fixed == {"imu_link", "head_link", "logo_link", *palms}
    meshes = [m.get("filename") for m in root.iter("mesh")]
    package = "package://fixture_humanoid_description/meshes/"
    assert meshes and all(m.startswith(package) and m.endswith(".STL") for m in meshes)
    for j in root.iter("joint"):
        if j.get("type") == "revolute":
            lim = j.find("limit")
            assert float(lim.get("effort")) > 0 and float(lim.get("velocity")) > 0


def test_loads_through_its_card_with_feet_imu_and_a_floating_base() -> None:
    emb = load_for_training(str(HUMANOID))  # what `train --body humanoid.urdf` loads
    assert emb.body_class == "humanoid" and emb.floating_base
    assert list(emb.joint_names) == _file_joints("revolute")  # the file's order, all actuated
    assert emb.sensors.imu_site == "imu_link" and emb.sensors.base_body == "pelvis"
    assert [j.kp for j in emb.joints[:6]] == [150, 150, 150, 200, 60, 60]  # card gains
    r = load_report(HUMANOID)
    assert r.card.path == str(HUMANOID.with_suffix(".yaml"))
    assert {k: (d.value, d.how) for k, d in r.decisions.items() if k in ("feet", "imu")} == {
        "feet": (FEET, "card"),
        "imu": ("imu_link", "card"),
    }
    model = emb.compile()
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and model.nu == 23
    assert all(model.sensor(s).type == k for s, k in zip(IMU_SENSORS, (
        mujoco.mjtSensor.mjSENS_GYRO, mujoco.mjtSensor.mjSENS_ACCELEROMETER,
        mujoco.mjtSensor.mjSENS_FRAMEQUAT), strict=True))  # fmt: skip
    assert model.nmesh == 27  # package:// STL meshes, one per link with a shape
    assert 30 < model.body_subtreemass[0] < 40  # 34 kg


def test_spawns_with_both_soles_flat_on_the_floor() -> None:
    emb = load_for_training(str(HUMANOID))
    model = emb.compile()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    assert data.qpos[2] == pytest.approx(0.726)  # the card's spawn_height
    coll = collision_geoms(model)
    low = dict(zip(coll.tolist(), geom_bottom(model, data, coll), strict=True))
    for foot in FEET:
        b = model.body(foot).id
        (sole,) = [g for g in coll if model.geom_bodyid[g] == b]
        assert 0.002 <= low[sole] < 0.003  # a few mm above the floor
        assert data.xmat[b][8] == pytest.approx(1.0, abs=1e-9)  # flat: the foot's z is up
    assert min(low.values()) == pytest.approx(low[sole])  # nothing lower than the soles
    top = 0.0  # the highest mesh vertex
    for g in np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH):
        mesh, rot = model.geom_dataid[g], data.geom_xmat[g].reshape(3, 3)
        verts = model.mesh_vert[model.mesh_vertadr[mesh] :][: model.mesh_vertnum[mesh]]
        top = max(top, float((verts @ rot.T)[:, 2].max() + data.geom_xpos[g][2]))
    assert top == pytest.approx(1.286, abs=1e-3)  # the head: 1.29 m tall standing


def test_velocity_env_steps_and_stands_on_zero_action() -> None:
    emb = load_for_training(str(HUMANOID))
    check_for_task("velocity", emb)
    cfg = VelocityConfig(randomization=RandomizationCfg.off(), init_joint_noise=0.0)
    env = BodyEnv(tasks.make_task("velocity", emb, cfg), 2, seed=0, num_threads=1)
    task = env.task
    assert task.feet == tuple(f"{f}_foot" for f in FEET)
    assert task.foot_contact().all()  # both feet on the floor in the standing pose
    start = task.sensor("base_pos")[:, 2].clone()
    zero = torch.zeros(2, env.num_actions)
    upright = None  # s until the base first sinks below 80 % of its start height
    for k in range(300):
        obs, rew, dones, _ = env.step(zero)
        if k == 0:
            assert task.foot_contact().all() and not dones.any()
        assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all()
        if upright is None and (task.sensor("base_pos")[:, 2] < 0.8 * start).any():
            upright = (k + 1) / cfg.control_hz
    # Measured: 2.2 s above 80 % of the start height on the card's PD gains, then it tips
    # forward (a biped does not balance on PD alone; the ankles hold 60 N m/rad).
    assert upright is None or upright >= 1.0
    env.close()


def test_trains_from_the_cli(tmp_path: Path) -> None:
    argv = ["train", "--task", "velocity", "--body", str(HUMANOID), "--iterations", "2"]
    argv += ["--num-envs", "8", "--threads", "1", "--log-root", str(tmp_path), "--run-name", "h"]
    assert main(argv) == 0
    (run,) = tmp_path.glob("*/h")
    assert (run / "model_1.pt").is_file()
    trained = mujoco.MjModel.from_xml_path(str(run / "body.xml"))  # the body the run keeps
    assert trained.nu == 23 and trained.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE


def test_falls_are_sensed_on_the_upper_body_and_a_mesh_pelvis(tmp_path: Path) -> None:
    # Vendors give the pelvis a mesh collision; the fixture's is a box. A copy of the
    # package whose pelvis collides as its mesh must build and sense its falls too.
    package = tmp_path / "src" / PACKAGE.name
    shutil.copytree(PACKAGE, package)
    urdf = package / "urdf" / "humanoid.urdf"
    box = '<collision><origin xyz="0 0 0"/><geometry><box size="0.12 0.2 0.1"/></geometry>'
    mesh = '<collision><geometry><mesh filename="package://{}/meshes/pelvis.STL"/></geometry>'
    text = urdf.read_text()
    assert box in text
    urdf.write_text(text.replace(box, mesh.format(PACKAGE.name)))
    for path in (HUMANOID, urdf):
        emb = load_for_training(str(path), package_path=(str(tmp_path / "src"),))
        task = tasks.make_task("velocity", emb, VelocityConfig())
        m = task.build_model()
        sensed = {m.body(int(m.sensor(t).objid[0])).name for t in task.touch}
        # pelvis, torso, head and arms end an episode when they touch the ground (the world
        # body's geoms); no leg link does
        assert {"pelvis", "torso_link", "left_elbow_link", "right_elbow_link"} <= sensed
        assert not any(("hip" in b or "knee" in b or "ankle" in b) for b in sensed), sensed
        assert all(m.sensor(t).refid[0] == 0 for t in task.touch)  # against the world only
        env = BodyEnv(tasks.make_task("velocity", emb, VelocityConfig()), 2, num_threads=1)
        _, _, dones, _ = env.step(torch.zeros(2, env.num_actions))
        assert not dones.any()  # standing: nothing but the feet touches
        env.close()
