"""Asset library, digital twin and cousins: determinism, joints, physical checks, CLI input."""

from __future__ import annotations

import dataclasses
import json

import mujoco
import numpy as np
import pytest
import torch

from xembody.cli import main
from xembody.sim import bodies as registry
from xembody.sim.scenes import assets, cabinet
from xembody.sim.scenes.assets import CATEGORIES, sample_asset
from xembody.sim.scenes.checks import check_scene
from xembody.sim.scenes.cousins import (
    SceneRefused,
    checked,
    farthest_points,
    make_cousins,
    make_twin,
)
from xembody.sim.scenes.description import ObjectEstimate, SceneDescription, WallPlane
from xembody.sim.scenes.room import Placed, Scene, attach_scene


def _room(*extra: ObjectEstimate) -> SceneDescription:
    """A room with a cabinet and a shelf on two walls, a table with a box on it, a can."""
    walls = (
        WallPlane(point=(-1.5, 0, 0), normal=(1, 0, 0), extent=(6, 2.5)),
        WallPlane(point=(0, 2.5, 0), normal=(0, -1, 0), extent=(6, 2.5)),
    )
    floor = ("on_floor",)
    objs = (
        ObjectEstimate(id="cab", category="cabinet", center=(-1.2, 0, 0.45), size=(0.6, 0.8, 0.9),
                       relations=(*floor, "against_wall:0"),
                       descriptors={"n_drawers": 2, "n_doors": 2, "handle": True}),
        ObjectEstimate(id="shelf", category="shelf", center=(0.5, 2.3, 0.8), size=(1.0, 0.4, 1.6),
                       relations=(*floor, "against_wall:1"), descriptors={"n_shelves": 3}),
        ObjectEstimate(id="table", category="table", center=(0.8, 0, 0.375),
                       size=(0.8, 1.2, 0.75), relations=floor),
        ObjectEstimate(id="box", category="box", center=(0.8, 0, 0.85), size=(0.3, 0.2, 0.2),
                       relations=("on_top_of:table",)),
        ObjectEstimate(id="can", category="cylinder", center=(-0.2, -1.2, 0.2),
                       size=(0.2, 0.2, 0.4), relations=floor),
    )  # fmt: skip
    return SceneDescription(walls=walls, objects=objs + extra)


@pytest.mark.parametrize("category", CATEGORIES)
def test_assets_stay_in_their_documented_ranges_and_stand(category):
    size = {"box": (0.3, 0.4, 0.3), "cylinder": (0.2, 0.2, 0.5)}.get(category, (0.5, 0.9, 0.9))
    targets = {"n_shelves": 3, "n_drawers": 2, "n_doors": 1}
    twin = sample_asset(category, size, targets, seed=0)
    assert twin.size == pytest.approx(size if category != "cylinder" else (0.2, 0.2, 0.5))
    for seed in range(6):
        a = sample_asset(category, size, targets, seed=seed, spread=1.0)
        assert np.all(np.abs(np.divide(a.size, size) - 1) <= 0.5 + 1e-3)
        p = a.params
        lo, hi = assets.CATEGORY_SPECS[category].density
        assert lo <= p["density"] <= hi
        if category == "cabinet":
            assert abs(p["n_drawers"] - 2) <= 1 and abs(p["n_doors"] - 1) <= 1
            assert p["handle"] in cabinet.HANDLE_SHAPES
            assert cabinet.SLIDE_DAMPING[0] <= p["slide_damping"] <= cabinet.SLIDE_DAMPING[1]
            assert cabinet.DOOR_RANGE[0] <= p["door_range"] <= cabinet.DOOR_RANGE[1]
        if category == "shelf":
            assert 2 <= p["n_shelves"] <= 4
        scene = Scene(name=category, walls=(), objects=(Placed(id="a", asset=a, center=(0, 0, a.size[2] / 2 + 0.001), yaw=0.0),))  # fmt: skip # noqa: E501
        rep = check_scene(scene)
        assert rep.ok, (a, rep.reasons())
    with pytest.raises(ValueError, match="category='sofa'"):
        sample_asset("sofa", size, seed=0)
    with pytest.raises(ValueError, match="spread=2"):
        sample_asset(category, size, seed=0, spread=2)


def test_same_seed_same_scenes():
    desc = _room()
    a = [r.scene.digest() for r in make_cousins(desc, 2, seed=3)]
    b = [r.scene.digest() for r in make_cousins(desc, 2, seed=3)]
    c = [r.scene.digest() for r in make_cousins(desc, 2, seed=4)]
    assert a == b
    assert len(set(a)) == 2 and not set(a) & set(c)
    assert make_twin(desc).scene.digest() == make_twin(desc).scene.digest()


def test_cabinet_drawers_and_doors_move_through_their_ranges():
    cab = sample_asset("cabinet", (0.5, 0.8, 0.9), {"n_drawers": 3, "n_doors": 2}, seed=1)
    scene = Scene(name="cab", walls=(), objects=(Placed(id="c", asset=cab, center=(0, 0, 0.451), yaw=0.7),))  # fmt: skip # noqa: E501
    model = scene.spec().compile()
    names = [model.joint(j).name for j in range(1, model.njnt)]
    assert names == ["c/drawer0", "c/drawer1", "c/drawer2", "c/door0", "c/door1"]
    for name in names:
        j = model.joint(name)
        lo, hi = model.jnt_range[j.id]
        assert lo == 0 and hi > (0.15 if "drawer" in name else 1.3)
        data = mujoco.MjData(model)
        body = model.jnt_bodyid[j.id]
        mujoco.mj_forward(model, data)
        start = data.xpos[body].copy()
        for sign, goal in ((1, hi), (-1, lo)):
            data.qfrc_applied[model.jnt_dofadr[j.id]] = sign * 25.0
            mujoco.mj_step(model, data, nstep=800)
            assert data.qpos[model.jnt_qposadr[j.id]] == pytest.approx(goal, abs=0.03 * hi)
            if "drawer" in name and sign == 1:  # pulled out along the cabinet's front
                moved = data.xpos[body] - start
                front = np.array([np.cos(0.7), np.sin(0.7), 0])
                assert moved @ front == pytest.approx(hi, abs=0.03 * hi)
    rep = check_scene(scene)
    assert rep.ok and rep.n_joints_swept == 5


def test_twin_and_eight_cousins_pass_every_check():
    desc = _room()
    twin = make_twin(desc)
    cousins = make_cousins(desc, 8, seed=0)
    assert twin.report.ok and twin.report.n_joints_swept == 4
    assert all(r.report.ok for r in cousins), [r.report.reasons() for r in cousins]
    assert len({r.scene.digest() for r in [twin, *cousins]}) == 9
    assert all(r.distance > 0 for r in cousins)
    for r in cousins:  # same categories at the same places, other assets
        for o, t in zip(r.scene.objects, twin.scene.objects, strict=True):
            assert o.asset.category == t.asset.category
            assert np.allclose(o.center[:2], t.center[:2], atol=0.4)
            assert np.allclose(o.asset.size, t.asset.size, rtol=0.3)


def test_farthest_point_sampling_spreads_out():
    pts = np.array([[0.0], [1.0], [2.0], [10.0], [9.5]])
    assert farthest_points(pts, np.array([0.0]), 3) == [3, 2, 1]
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(200, 2))
    picks = farthest_points(cloud, np.zeros(2), 8)

    def min_gap(idx):
        sel = cloud[idx]
        d = np.linalg.norm(sel[:, None] - sel[None], axis=-1)
        return d[np.triu_indices(len(idx), 1)].min()

    assert min_gap(picks) > min_gap(list(range(8)))


def test_overlapping_and_floating_objects_are_repaired():
    twin = make_twin(_room()).scene
    can = twin.get("can")
    leg = np.asarray(twin.get("table").footprint()[2])  # a table corner, where a leg stands
    overlap = twin.replace(dataclasses.replace(can, center=(*leg, can.center[2])))
    rep = check_scene(overlap)
    assert any(a == "can" or b == "can" for a, b, _ in rep.penetrations), rep.reasons()
    fixed, rep2, rounds = checked(overlap)
    assert rep2.ok and rounds >= 1
    # whatever moved took what stands on it along: the box stays where it was on the table
    rel = [np.subtract(s.get("box").center, s.get("table").center) for s in (twin, fixed)]
    assert np.allclose(*rel, atol=1e-9)
    floating = twin.replace(dataclasses.replace(can, center=(-0.2, -1.2, 1.0)))
    rep = check_scene(floating)
    assert [u[0] for u in rep.unsupported] == ["can"] and "not supported" in rep.reasons()[0]
    fixed, rep2, _ = checked(floating)
    assert rep2.ok and fixed.get("can").center[2] == pytest.approx(0.201)


def test_blocked_door_is_reported_then_cleared():
    twin = make_twin(_room()).scene
    can = twin.get("can")
    blocked = twin.replace(dataclasses.replace(can, center=(-0.75, 0.0, can.center[2])))
    rep = check_scene(blocked)
    assert any("door" in j and b == "can" for j, b, _ in rep.joints), rep.reasons()
    assert checked(blocked)[1].ok


def test_unrepairable_scene_is_refused_with_its_reason():
    """A wall 15 cm in front of the cabinet: its doors cannot open wherever it is nudged."""
    desc = _room()
    close = WallPlane(point=(-0.75, 0, 0), normal=(-1, 0, 0), extent=(6, 2.5))
    narrow = dataclasses.replace(desc, walls=(*desc.walls, close))
    with pytest.raises(
        SceneRefused,
        match=r"twin refused \(4 repair .*joint cab/door0 stops at \d+% of its range against wall2",
    ):
        make_twin(narrow)


def test_scene_attaches_next_to_an_arm():
    arm = registry.sample("arm", seed=0)
    twin = make_twin(_room()).scene
    emb = attach_scene(arm, twin, offset=(2.0, 0.0, np.pi))
    model = emb.compile()
    assert model.nu == arm.compile().nu and model.nq > arm.compile().nq
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    home = arm.compile().key("home").qpos
    assert np.allclose(data.qpos[: len(home)], home)
    cab = model.body("scene/cab").id
    mujoco.mj_forward(model, data)
    start = data.xpos[cab].copy()
    assert np.linalg.norm(start[:2] - [3.2, 0.0]) < 1e-6  # (-1.2, 0) turned by pi, moved by 2
    mujoco.mj_step(model, data, nstep=250)
    assert np.linalg.norm(data.xpos[cab] - start) < 0.01


def test_room_around_a_wheeled_base():
    base = registry.sample("wheeled", seed=1)
    emb = attach_scene(base, make_twin(_room()).scene)
    model, nq = emb.compile(), base.compile().nq
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    assert np.allclose(data.qpos[:nq], base.compile().key("home").qpos)
    start = data.qpos.copy()
    mujoco.mj_step(model, data, nstep=250)  # base and furniture rest where they were put
    assert np.abs(data.qpos[:3] - start[:3]).max() < 0.01
    assert np.abs(data.qpos[nq:] - start[nq:]).max() < 0.01


def test_cousins_next_to_one_arm_step_as_per_scene_groups():
    from xembody.sim.physics import MultiBodySim

    arm = registry.sample("arm", seed=0)
    scenes = [make_twin(_room()).scene, *(r.scene for r in make_cousins(_room(), 2, seed=1))]
    models = [attach_scene(arm, s, offset=(2.0, 0.0, np.pi)).compile() for s in scenes]
    assert len({m.nq for m in models}) > 1  # drawer and door counts differ: other trees
    multi = MultiBodySim(models, 2, num_threads=1)
    assert multi.max_nu == arm.compile().nu and bool(multi.action_mask.all())
    multi.set_ctrl(torch.as_tensor(np.tile(arm.default_pose, (multi.num_envs, 1))))
    start = multi.padded("qpos").clone()
    for _ in range(25):
        multi.step(4)
    moved = (multi.padded("qpos") - start).abs().max().item()
    assert moved < 0.05  # the arms hold their pose, the furniture stays put


def test_cli_writes_scenes_and_manifest(tmp_path):
    scan = tmp_path / "scan"
    scan.mkdir()
    _room().to_json(scan / "scene.json")
    out = tmp_path / "scenes"
    assert (
        main(["cousins", "--scan", str(scan), "--n", "2", "--out", str(out), "--no-pictures"]) == 0
    )  # noqa: E501
    manifest = json.loads((out / "manifest.json").read_text())
    names = [s["name"] for s in manifest["scenes"]]
    assert names == ["twin", "cousin_00", "cousin_01"]
    for s in manifest["scenes"]:
        assert s["checks"]["ok"] and (out / s["file"]).is_file()
        mujoco.MjModel.from_xml_path(str(out / s["file"]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "xembody.scene/1", "floor": {}, "objects": [{"id": "a"}]}', "malformed"),
        ('{"schema": "xembody.scene/1", "floor": {}, "objects": []}', "no objects"),
    ],
)
def test_cli_bad_scene_json_is_a_clear_error(tmp_path, capsys, text, expected):
    path = tmp_path / "scene.json"
    path.write_text(text)
    assert main(["cousins", "--scan", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(path) in err
