"""RGB-D scans: render them from a MuJoCo scene, and read them back as one world-frame cloud.

A scan folder holds, per view i, `color_XXX.png` (H, W, 3 uint8), `depth_XXX.png` (H, W
uint16, depth along the optical axis in millimetres, 0 = no return), and two JSON files:
`intrinsics.json` {width, height, fx, fy, cx, cy, depth_scale (units per metre: 1000)} and
`poses.json` {"camera_to_world": [4x4 per view]} in the OpenCV camera convention (x right,
y down, z forward), world z up. `read_scan` back-projects every view with its pose and
returns (points (N, 3) m, colours (N, 3) 0..1); it also reads .ply / .pcd point clouds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
from PIL import Image

DEPTH_SCALE = 1000.0  # depth PNG units per metre
MAX_DEPTH = 8.0  # m; farther returns are dropped


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    """Views on an arc in front of the scene (around its centre, looking at it)."""

    views: int = 4
    width: int = 320
    height: int = 240
    arc_deg: float = 100.0  # total azimuth spread of the views
    azimuth_deg: float | None = None  # centre azimuth; None: away from the walls
    distance: float = 3.6  # m from the look-at point, at least (farther for wide scenes)
    elevation_deg: float = 40.0  # camera above the horizon, looking down
    noise_std: float = 0.0  # m, depth noise grows with depth^2 (scaled at 1 m)
    dropout: float = 0.0  # fraction of pixels with no return
    seed: int = 0

    def __post_init__(self) -> None:
        if self.views < 1:
            raise ValueError(f"views = {self.views}: expected at least 1")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image {self.width}x{self.height}: expected at least 16x16")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout = {self.dropout}: expected 0 <= dropout < 1")
        if self.noise_std < 0:
            raise ValueError(f"noise_std = {self.noise_std}: expected >= 0")


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 camera-to-world (OpenCV axes) for a camera at `eye` looking at `target`, z up."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, fwd], axis=1)
    pose[:3, 3] = eye
    return pose


def _scene_bounds(model: mujoco.MjModel, data: mujoco.MjData) -> tuple:
    """Centre of the furniture (geoms that are neither planes nor walls: > 1 m long boxes),
    the (x, y) sum of the walls' inward normals, and the furniture's horizontal radius."""
    keep = [g for g in range(model.ngeom) if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_PLANE]
    if not keep:
        raise ValueError("the scene has no geoms besides planes: nothing to scan")
    big = [g for g in keep if model.geom_size[g].max() > 1.0]  # walls: long thin boxes
    small = [g for g in keep if g not in big] or keep
    inside = data.geom_xpos[small]
    centre = (inside.min(axis=0) + inside.max(axis=0)) / 2  # the middle of the furniture
    radius = float(np.linalg.norm(np.ptp(inside[:, :2], axis=0)) / 2) + 0.3  # + half an object
    inward = np.zeros(2)
    for g in big:
        d = centre[:2] - data.geom_xpos[g, :2]
        axis = np.argmin(model.geom_size[g][:2])  # the thin axis is the wall's normal
        n = data.geom_xmat[g].reshape(3, 3)[:2, axis]
        inward += n * np.sign(n @ d)
    return centre, inward, radius, _corners(model, data, small)


def _corners(model: mujoco.MjModel, data: mujoco.MjData, geoms: list[int]) -> np.ndarray:
    """World corners (8 per geom) of the geoms' bounding boxes."""
    signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
    out = []
    for g in geoms:
        c, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
        local = c + signs * half
        out.append(local @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g])
    return np.concatenate(out)


def _in_view(pose, points, tan_h: float, tan_v: float, margin: float = 0.03) -> bool:
    """Whether every point lies in front of camera `pose` (OpenCV axes) and inside its field
    of view, shrunk by `margin` (a fraction of the half-width) on each side."""
    cam = (points - pose[:3, 3]) @ pose[:3, :3]
    z = cam[:, 2]
    if (z <= 0.05).any():
        return False
    return bool(
        (np.abs(cam[:, 0] / z) <= (1 - margin) * tan_h).all()
        and (np.abs(cam[:, 1] / z) <= (1 - margin) * tan_v).all()
    )


def camera_poses(model: mujoco.MjModel, data: mujoco.MjData, cfg: ScanConfig) -> list[np.ndarray]:
    """One pose per view, on a ray from the furniture's middle (`cfg.elevation_deg` up); each
    camera turns to centre the furniture's geoms in its image and backs off from
    `cfg.distance` until every corner of them lies inside it (no object cut by the edge)."""
    centre, inward, radius, corners = _scene_bounds(model, data)
    target = np.array([centre[0], centre[1], 0.5])
    # far enough that the furniture's footprint fits the horizontal field of view
    tan_v = math.tan(math.radians(model.vis.global_.fovy) / 2)
    tan_h = tan_v * cfg.width / cfg.height
    distance = max(cfg.distance, radius / tan_h)
    if cfg.azimuth_deg is not None:
        az0 = math.radians(cfg.azimuth_deg)
    elif np.linalg.norm(inward) > 1e-6:
        az0 = math.atan2(inward[1], inward[0])  # stand where the walls face
    else:
        az0 = 0.0
    spread = math.radians(cfg.arc_deg)
    offsets = [0.0] if cfg.views == 1 else np.linspace(-spread / 2, spread / 2, cfg.views)
    el = math.radians(cfg.elevation_deg)
    poses = []
    for off in offsets:
        az = az0 + off
        ray = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        d = distance
        for _ in range(100):  # back off 2% at a time until the furniture fits the image
            pose = _aim(target + d * ray, target, corners)
            if _in_view(pose, corners, tan_h, tan_v):
                break
            d *= 1.02
        poses.append(pose)
    return poses


def _aim(eye: np.ndarray, target: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The pose at `eye` looking at `target`, turned until `points` span equal angles on
    either side of the image's centre (seen from above, near objects would otherwise fall
    off the image's bottom long before far ones leave its top)."""
    pose = _look_at(eye, target)
    for _ in range(4):
        cam = (points - eye) @ pose[:3, :3]
        if (cam[:, 2] <= 0.05).any():
            return pose
        ax, ay = np.arctan2(cam[:, 0], cam[:, 2]), np.arctan2(cam[:, 1], cam[:, 2])
        mid = np.array([math.tan((ax.min() + ax.max()) / 2), math.tan((ay.min() + ay.max()) / 2)])
        pose = _look_at(eye, eye + pose[:3, :3] @ np.array([*mid, 1.0]))
    return pose


def render_scan(mjcf: str | Path, out: str | Path, cfg: ScanConfig = ScanConfig()) -> Path:
    """Render `cfg.views` RGB-D views of the scene in file `mjcf` into folder `out`."""
    from xembody.sim.render import gl_backend

    path = Path(mjcf)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MJCF file")
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except ValueError as err:
        raise ValueError(f"{path}: MuJoCo cannot load it ({err})") from None
    if gl_backend() == "raycast":
        raise RuntimeError("scan rendering needs OpenGL (MUJOCO_GL=egl or osmesa); none works")
    data = mujoco.MjData(model)
    if model.nkey:
        mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, cfg.width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, cfg.height)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("color_*.png"), *out.glob("depth_*.png")]:
        old.unlink()  # views of an earlier scan would be read with this scan's poses
    fovy = math.radians(model.vis.global_.fovy)
    f = cfg.height / 2 / math.tan(fovy / 2)
    intr = dict(width=cfg.width, height=cfg.height, fx=f, fy=f, cx=(cfg.width - 1) / 2,
                cy=(cfg.height - 1) / 2, depth_scale=DEPTH_SCALE)  # fmt: skip
    rng = np.random.default_rng(cfg.seed)
    poses = camera_poses(model, data, cfg)
    renderer = mujoco.Renderer(model, height=cfg.height, width=cfg.width)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    try:
        for i, pose in enumerate(poses):
            eye, fwd = pose[:3, 3], pose[:3, 2]
            cam.lookat[:] = eye + fwd
            cam.distance = 1.0
            cam.azimuth = math.degrees(math.atan2(fwd[1], fwd[0]))
            cam.elevation = math.degrees(math.asin(fwd[2]))
            renderer.update_scene(data, cam)
            rgb = renderer.render().copy()
            renderer.enable_depth_rendering()
            renderer.update_scene(data, cam)
            depth = renderer.render().astype(np.float64)
            renderer.disable_depth_rendering()
            depth[depth > MAX_DEPTH] = 0.0
            if cfg.noise_std > 0:
                depth += rng.normal(0.0, cfg.noise_std, depth.shape) * depth**2
            if cfg.dropout > 0:
                depth[rng.random(depth.shape) < cfg.dropout] = 0.0
            mm = np.clip(np.round(depth * DEPTH_SCALE), 0, 65535).astype(np.uint16)
            Image.fromarray(rgb).save(out / f"color_{i:03d}.png")
            Image.fromarray(mm).save(out / f"depth_{i:03d}.png")
    finally:
        renderer.close()
    (out / "intrinsics.json").write_text(json.dumps(intr, indent=2) + "\n")
    (out / "poses.json").write_text(
        json.dumps({"camera_to_world": [p.round(6).tolist() for p in poses]}, indent=2) + "\n"
    )
    return out


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (every scan folder needs it)")
    text = path.read_text()
    if not text.strip():
        raise ValueError(f"{path}: empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _read_png(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing {what} image")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except (OSError, SyntaxError) as err:
        raise ValueError(f"{path}: not a readable PNG ({err})") from None


def read_rgbd(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every view of a scan folder into world points and their colours."""
    intr = _read_json(folder / "intrinsics.json")
    poses = _read_json(folder / "poses.json").get("camera_to_world")
    try:
        fx, fy, cx, cy = (float(intr[k]) for k in ("fx", "fy", "cx", "cy"))
        scale = float(intr.get("depth_scale", DEPTH_SCALE))
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{folder / 'intrinsics.json'}: expected numbers fx, fy, cx, cy (depth_scale)"
        ) from None
    depths = sorted(folder.glob("depth_*.png"))
    if not depths:
        raise FileNotFoundError(f"{folder}: no depth_XXX.png images")
    if not isinstance(poses, list) or len(poses) != len(depths):
        raise ValueError(
            f"{folder / 'poses.json'}: expected camera_to_world with {len(depths)} 4x4 poses"
        )
    pts, cols = [], []
    for dpath, pose in zip(depths, poses, strict=True):
        depth = _read_png(dpath, "depth")
        if depth.ndim != 2 or depth.dtype != np.uint16:
            raise ValueError(f"{dpath}: expected a 16-bit single-channel depth PNG")
        cpath = dpath.with_name(dpath.name.replace("depth_", "color_"))
        rgb = _read_png(cpath, "colour") if cpath.exists() else None
        pose = np.asarray(pose, float)
        if pose.shape != (4, 4):
            raise ValueError(f"{folder / 'poses.json'}: pose for {dpath.name} is not 4x4")
        v, u = np.nonzero(depth)
        z = depth[v, u] / scale
        cam = np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], axis=1)
        pts.append(cam @ pose[:3, :3].T + pose[:3, 3])
        if rgb is not None and rgb.shape[:2] == depth.shape:
            cols.append(rgb[v, u, :3] / 255.0)
        else:
            cols.append(np.full((len(z), 3), 0.5))
    points = np.concatenate(pts)
    if len(points) == 0:
        raise ValueError(f"{folder}: every depth image is empty (no returns)")
    return points, np.concatenate(cols)


def read_cloud_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    pcd = o3d.io.read_point_cloud(str(path), format="auto", print_progress=False)
    points = np.asarray(pcd.points)
    if len(points) == 0:
        raise ValueError(f"{path}: no points could be read (corrupt or empty point cloud)")
    if not np.isfinite(points).all():
        raise ValueError(f"{path}: point cloud holds non-finite coordinates")
    cols = np.asarray(pcd.colors) if pcd.has_colors() else np.full((len(points), 3), 0.5)
    return points, cols


def read_scan(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) world m, colours (N, 3) 0..1) of a scan folder or a .ply/.pcd file."""
    path = Path(path)
    if path.is_dir():
        return read_rgbd(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such scan folder or point-cloud file")
    if path.suffix.lower() not in (".ply", ".pcd"):
        raise ValueError(f"{path}: expected a scan folder or a .ply / .pcd file")
    return read_cloud_file(path)
