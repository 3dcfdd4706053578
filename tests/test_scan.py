"""Scans and geometric extraction (issue 10 part A): description JSON, accuracy maths, a
rendered scan of a room with known layout recovered within the issue's tolerances, and bad
scan files refused with an error naming the file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from scan_scenes import room_scene

from xembody.cli import main
from xembody.real.perception.accuracy import TOLERANCES, box_iou, extraction_accuracy, yaw_error
from xembody.real.perception.extract import extract_scan, min_area_yaw
from xembody.real.perception.scan import ScanConfig, read_scan, render_scan
from xembody.sim.scenes.description import ObjectEstimate, SceneDescription


def _obj(**kw) -> ObjectEstimate:
    base = dict(id="a", category="box", center=(0, 0, 0.5), size=(1, 1, 1), yaw=0.0)
    return ObjectEstimate(**{**base, **kw})


# --- description and accuracy maths -------------------------------------------------------


def test_description_round_trips_and_refuses_bad_input(tmp_path):
    _, truth = room_scene(tmp_path / "room.xml")
    path = tmp_path / "scene.json"
    truth.to_json(path)
    assert SceneDescription.from_json(path) == truth
    d = json.loads(path.read_text())
    d["schema"] = "xembody.scene/0"
    with pytest.raises(ValueError, match="schema 'xembody.scene/0'"):
        SceneDescription.from_dict(d)
    with pytest.raises(ValueError, match="category 'sofa'"):
        _obj(category="sofa")
    with pytest.raises(ValueError, match="relation 'near:a'"):
        _obj(relations=["near:a"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=f"{bad}: not valid JSON"):
        SceneDescription.from_json(bad)


def test_box_iou_and_yaw_error_by_hand():
    a = _obj()
    assert box_iou(a, a) == pytest.approx(1.0)
    # half a unit along x: overlap 0.5, union 1.5
    assert box_iou(a, _obj(center=(0.5, 0, 0.5))) == pytest.approx(1 / 3)
    # a cube turned a quarter turn is the same cube; turned 45 deg the footprints share
    # the octagon of area 2 (sqrt 2 - 1) = 0.828
    assert box_iou(a, _obj(yaw=math.pi / 2)) == pytest.approx(1.0)
    octagon = 2 * (math.sqrt(2) - 1)
    assert box_iou(a, _obj(yaw=math.pi / 4)) == pytest.approx(octagon / (2 - octagon))
    assert box_iou(a, _obj(center=(3, 0, 0.5))) == 0.0
    # boxes repeat every quarter turn, cabinets only every full turn, cylinders never differ
    assert yaw_error(a, _obj(yaw=math.pi / 2 + 0.05)) == pytest.approx(0.05)
    cab = _obj(category="cabinet")
    assert yaw_error(cab, _obj(category="cabinet", yaw=math.pi / 2)) == pytest.approx(math.pi / 2)
    assert yaw_error(_obj(category="cylinder"), _obj(category="cylinder", yaw=1.0)) == 0.0


def test_min_area_yaw_of_a_turned_rectangle():
    rng = np.random.default_rng(0)
    local = rng.uniform([-0.6, -0.2], [0.6, 0.2], (500, 2))
    yaw = 0.3
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    assert min_area_yaw(local @ rot.T + [2.0, -1.0]) == pytest.approx(yaw, abs=0.02)


# --- a rendered scan of the test room -------------------------------------------------------


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    folder = tmp_path_factory.mktemp("room")
    return room_scene(folder / "room.xml")


def _check(acc: dict) -> None:
    rows = {r["id"]: r for r in acc["objects"]}
    assert acc["passed"] == dict.fromkeys(acc["passed"], True), (acc["passed"], rows)
    assert acc["floor_normal_deg"] < TOLERANCES["floor_normal_deg"]
    assert acc["category_accuracy"] >= 0.9
    assert acc["center_error_max"] <= 0.05 and acc["yaw_error_max"] <= 0.1
    assert acc["iou_min"] >= 0.6


def test_one_view_recovers_the_room(room, tmp_path):
    mjcf, truth = room
    scan = render_scan(mjcf, tmp_path / "scan", ScanConfig(views=1, width=320, height=240))
    depth = np.asarray(Image.open(scan / "depth_000.png"))
    assert depth.dtype == np.uint16 and depth.shape == (240, 320) and depth.max() > 1000
    est, groups, _ = extract_scan(scan)
    assert len(groups) == len(est.objects)
    _check(extraction_accuracy(truth, est))
    _check_objects(est)


def _check_objects(est: SceneDescription, handles: bool = False) -> None:
    """Relations and descriptors of the room's objects (handles: every drawer and door seen)."""
    by_cat = {}
    for o in est.objects:
        by_cat.setdefault(o.category, []).append(o)
    drawers = max(by_cat["cabinet"], key=lambda o: o.descriptors["n_drawers"])
    doors = max(by_cat["cabinet"], key=lambda o: o.descriptors["n_doors"])
    if handles:
        assert drawers.descriptors["n_drawers"] == 3 and doors.descriptors["n_doors"] == 2
    assert by_cat["shelf"][0].descriptors["n_shelves"] == 2
    assert "against_wall:1" in by_cat["shelf"][0].relations
    table = by_cat["table"][0]
    on_table = [o for o in by_cat["box"] if f"on_top_of:{table.id}" in o.relations]
    assert len(on_table) == 1


def test_views_fuse_into_one_cloud(room, tmp_path):
    mjcf, truth = room
    scan = render_scan(mjcf, tmp_path / "scan", ScanConfig(views=3, width=320, height=240))
    poses = json.loads((scan / "poses.json").read_text())["camera_to_world"]
    assert len(poses) == 3 and np.allclose(np.asarray(poses[0])[3], [0, 0, 0, 1])
    points, colours = read_scan(scan)
    # every view lands on the same world: the floor is at z = 0 within a few millimetres
    assert np.percentile(points[:, 2], 1) == pytest.approx(0.0, abs=0.005)
    assert colours.shape == points.shape
    est, _, _ = extract_scan(scan)
    _check(extraction_accuracy(truth, est))
    _check_objects(est, handles=True)


def test_cli_renders_and_extracts(room, tmp_path):
    mjcf, truth = room
    scan = tmp_path / "scan"
    assert main(["scan", "--scene", str(mjcf), "--views", "1", "--out", str(scan)]) == 0
    assert {"intrinsics.json", "poses.json", "color_000.png", "depth_000.png"} <= {
        p.name for p in scan.iterdir()
    }
    out = tmp_path / "scene.json"
    assert main(["scan", "extract", str(scan), "--out", str(out)]) == 0
    est = SceneDescription.from_json(out)
    assert extraction_accuracy(truth, est)["category_accuracy"] >= 0.9
    assert Image.open(out.with_suffix(".png")).size[0] > 100


# --- bad scan files ---------------------------------------------------------------------------


def test_bad_scan_files_fail_naming_the_file(room, tmp_path, capsys):
    mjcf, _ = room
    scan = render_scan(mjcf, tmp_path / "scan", ScanConfig(views=1, width=64, height=48))
    depth = scan / "depth_000.png"
    depth.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{depth}: empty file"):
        read_scan(scan)
    depth.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match=f"{depth}: not a readable PNG"):
        read_scan(scan)
    Image.fromarray(np.zeros((48, 64), np.uint16)).save(depth)
    with pytest.raises(ValueError, match="every depth image is empty"):
        read_scan(scan)
    intr = scan / "intrinsics.json"
    intr.write_text("")
    with pytest.raises(ValueError, match=f"{intr}: empty file"):
        read_scan(scan)
    empty = tmp_path / "empty.ply"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{empty}: empty file"):
        read_scan(empty)
    corrupt = tmp_path / "corrupt.pcd"
    corrupt.write_text("this is not a point cloud\n")
    with pytest.raises(ValueError, match=f"{corrupt}: no points could be read"):
        read_scan(corrupt)
    with pytest.raises(FileNotFoundError, match="missing.ply"):
        read_scan(tmp_path / "missing.ply")
    assert main(["scan", "extract", str(corrupt), "--out", str(tmp_path / "s.json")]) == 2
    assert str(corrupt) in capsys.readouterr().err


def test_a_ply_cloud_is_read_and_extracted(room, tmp_path):
    import open3d as o3d

    mjcf, truth = room
    scan = render_scan(mjcf, tmp_path / "scan", ScanConfig(views=1, width=320, height=240))
    points, _ = read_scan(scan)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    ply = tmp_path / "room.ply"
    o3d.io.write_point_cloud(str(ply), pcd)
    back, _ = read_scan(ply)
    assert back.shape == points.shape
    est, _, _ = extract_scan(ply)
    # no camera poses in a .ply: fronts of free-standing objects may turn, the rest holds
    acc = extraction_accuracy(truth, est)
    assert acc["category_accuracy"] >= 0.9 and acc["center_error_max"] <= 0.05


def test_one_view_of_generated_twin_and_cousins(room, tmp_path):
    """The asset library's twin of the test room and two cousins (other cabinets, shelves,
    tables), scanned from one view, are recovered within the tolerances."""
    from xembody.real.perception.accuracy import scene_truth
    from xembody.sim.scenes.cousins import make_cousins, make_twin

    _, desc = room
    for result in [make_twin(desc), *make_cousins(desc, 2, seed=1)]:
        mjcf = tmp_path / f"{result.scene.name}.xml"
        mjcf.write_text(result.scene.mjcf())
        scan = render_scan(mjcf, tmp_path / result.scene.name, ScanConfig(views=1))
        est, _, _ = extract_scan(scan)
        _check(extraction_accuracy(scene_truth(result.scene), est))


def test_noisy_scan_with_dropout_still_meets_the_tolerances(room, tmp_path):
    """Depth noise 0.3 mm x depth^2 (4 mm at the 3.6 m the camera stands) and 10% dropout,
    seeded: the same seed gives the same depth image; the room is still recovered."""
    mjcf, truth = room
    cfg = ScanConfig(views=1, noise_std=0.0003, dropout=0.1, seed=3)
    a, b = render_scan(mjcf, tmp_path / "a", cfg), render_scan(mjcf, tmp_path / "b", cfg)
    da, db = (np.asarray(Image.open(s / "depth_000.png")) for s in (a, b))
    assert np.array_equal(da, db)
    clean = np.asarray(
        Image.open(render_scan(mjcf, tmp_path / "c", ScanConfig(views=1)) / "depth_000.png")
    )
    assert 0.08 < np.mean((da == 0) & (clean > 0)) / np.mean(clean > 0) < 0.12
    est, _, _ = extract_scan(a)
    _check(extraction_accuracy(truth, est))


def test_relations_by_hand():
    from xembody.real.perception.extract import relations
    from xembody.sim.scenes.description import Floor, WallPlane

    wall = WallPlane(point=(0, 2, 0), normal=(0, -1, 0), extent=(4, 2.5))
    found = [
        dict(center=(0, 0, 0.4), size=(0.6, 1.0, 0.8), yaw=0.3),  # a table
        dict(center=(0.1, 0.1, 0.9), size=(0.2, 0.2, 0.2), yaw=0.0),  # on it
        dict(center=(0, 1.8, 1.5), size=(0.3, 0.6, 0.5), yaw=-math.pi / 2),  # on the wall
        dict(center=(0, 1.7, 0.4), size=(0.5, 0.6, 0.8), yaw=-math.pi / 2),  # against it
        dict(center=(1.5, 0, 1.5), size=(0.2, 0.2, 0.2), yaw=0.0),  # floating, off the wall
    ]
    rel = [relations(i, found, Floor(), [wall]) for i in range(len(found))]
    assert rel == [
        ["on_floor"],
        ["on_top_of:obj0"],
        ["wall_mounted:0"],
        ["on_floor", "against_wall:0"],
        [],
    ]


def test_render_refuses_a_bad_scene(tmp_path, capsys):
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><geom type='box'")
    with pytest.raises(ValueError, match=f"{broken}: MuJoCo cannot load it"):
        render_scan(broken, tmp_path / "scan")
    assert main(["scan", "--scene", str(tmp_path / "none.xml"), "--out", str(tmp_path)]) == 2
    assert "none.xml: no such MJCF file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="views = 0"):
        ScanConfig(views=0)


# --- free objects off a wall's direction; objects near the camera ------------


def _surface(center, size, yaw: float, step: float = 0.01) -> np.ndarray:
    """Points on the top and the four sides of a gravity-aligned box (no bottom)."""
    d, w, h = size
    faces = []
    for a, b, fix in ((d, w, "top"), (w, h, "x"), (d, h, "y")):
        u, v = np.meshgrid(np.arange(-a / 2, a / 2, step), np.arange(-b / 2, b / 2, step))
        u, v = u.ravel(), v.ravel()
        if fix == "top":
            faces.append(np.column_stack([u, v, np.full_like(u, h / 2)]))
        else:
            for s in (-1, 1):
                const = np.full_like(u, s * (d if fix == "x" else w) / 2)
                faces.append(np.column_stack([const, u, v] if fix == "x" else [u, const, v]))
    pts = np.concatenate(faces)
    c, s = math.cos(yaw), math.sin(yaw)
    pts[:, :2] = pts[:, :2] @ np.array([[c, s], [-s, c]])
    return pts + np.asarray(center)


def _room_cloud(*objects) -> np.ndarray:
    """A floor (z = 0), a back wall (y = 2) and a left wall (x = -2), plus object points."""
    g = np.arange(-2.0, 2.0, 0.01)
    fx, fy = np.meshgrid(g, g)
    floor = np.column_stack([fx.ravel(), fy.ravel(), np.zeros(fx.size)])
    a, z = np.meshgrid(g, np.arange(0.0, 2.0, 0.01))
    back = np.column_stack([a.ravel(), np.full(a.size, 2.0), z.ravel()])
    left = np.column_stack([np.full(a.size, -2.0), a.ravel(), z.ravel()])
    return np.concatenate([floor, back, left, *objects])


def test_a_free_object_off_a_wall_keeps_its_yaw_and_a_wall_backed_one_snaps():
    from xembody.real.perception.extract import ExtractConfig, extract, snap_yaw
    from xembody.sim.scenes.description import WallPlane

    yaw = math.radians(10)  # inside the 12 deg wall snap, beyond the 0.1 rad yaw target
    free = _obj(center=(0.3, 0.2, 0.2), size=(0.4, 0.5, 0.4), yaw=yaw)
    est, _ = extract(_room_cloud(_surface(free.center, free.size, yaw)), views_xy=(2.0, -2.0))
    assert len(est.objects) == 1
    assert yaw_error(free, est.objects[0]) < 0.02 < TOLERANCES["yaw_rad"]
    # the same footprint backed onto the wall (nearest corner 3 cm off it) turns onto the wall
    wall = WallPlane(point=(0, 2, 0), normal=(0, -1, 0), extent=(4, 2.5))
    xy = _surface((0.0, 0.0, 0.2), free.size, yaw)[:, :2]
    xy[:, 1] += 2.0 - 0.03 - xy[:, 1].max()
    assert snap_yaw(yaw, xy, [wall], ExtractConfig()) == pytest.approx(0.0, abs=1e-9)
    assert snap_yaw(yaw, xy - [0, 0.5], [wall], ExtractConfig()) == yaw  # 53 cm off: free
    assert snap_yaw(0.04, xy - [0, 0.5], [wall], ExtractConfig()) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="free_snap_deg = 20, snap_deg = 12.0"):
        ExtractConfig(free_snap_deg=20)


def test_one_view_sees_objects_near_the_camera(tmp_path):
    """Rooms 2 and 7 of `cousins eval --seed 0`: a table and a box stand close to the camera;
    the view backs off until every object is in the image, and both are recovered. Room 2's
    table is nearly square: the rims of its top and its legs lie close to one circle (fit
    0.057), but its sides are mostly empty, so it is a table, not a cylinder."""
    from xembody.real.perception.accuracy import scene_truth
    from xembody.sim.scenes.cousins import make_twin
    from xembody.sim.scenes.random_room import random_room

    rng = np.random.default_rng(0)
    rooms = [random_room(rng) for _ in range(8)]
    for i in (2, 7):
        scene = make_twin(rooms[i], seed=0).scene
        mjcf = tmp_path / f"room{i}.xml"
        mjcf.write_text(scene.mjcf())
        scan = render_scan(mjcf, tmp_path / f"scan{i}", ScanConfig(views=1))
        est, _, _ = extract_scan(scan)
        acc = extraction_accuracy(scene_truth(scene), est)
        _check(acc)
        assert [r["found"] for r in acc["objects"]] == [r["category"] for r in acc["objects"]]
