"""Geometric extraction: a world-frame cloud (z up) -> SceneDescription, with open3d on the CPU.

Steps, in order: voxel down-sampling; planes by RANSAC, the lowest near-horizontal one is
the floor, large vertical ones at the cloud's edge are walls; plane points removed; DBSCAN
clusters; clusters split where a small object stands on a larger one's top; per object a
gravity-aligned box (yaw from the minimum-area rectangle of the footprint, snapped to a
wall's direction: within `snap_deg` when the object stands against that wall, within
`free_snap_deg` otherwise; extents from robust percentiles), its front (away from
the wall it backs onto, else towards the cameras), relations, descriptors and a category by
rules over descriptors (see `categorise`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from xembody.sim.scenes.description import Floor, ObjectEstimate, SceneDescription, WallPlane


@dataclass(frozen=True, kw_only=True)
class ExtractConfig:
    voxel: float = 0.01  # m
    plane_dist: float = 0.015  # m, RANSAC inlier distance
    wall_min_length: float = 1.5  # m
    wall_min_height: float = 1.2  # m
    cluster_eps: float = 0.04  # m, DBSCAN neighbourhood
    cluster_min_points: int = 10
    min_object_points: int = 80
    snap_deg: float = 12.0  # wall-backed objects: snap to the wall's direction within this
    snap_gap: float = 0.15  # m; an object whose points come this close to a wall is wall-backed
    free_snap_deg: float = 3.0  # others snap only within this (under the 0.1 rad yaw target)
    percentile: float = 1.0  # robust extents: [p, 100 - p]
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.free_snap_deg <= self.snap_deg < 45.0:
            raise ValueError(
                f"free_snap_deg = {self.free_snap_deg}, snap_deg = {self.snap_deg}: expected "
                "0 <= free_snap_deg <= snap_deg < 45"
            )
        if self.snap_gap < 0:
            raise ValueError(f"snap_gap = {self.snap_gap}: expected >= 0 (m)")


def _o3d_cloud(points: np.ndarray):
    import open3d as o3d

    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(np.asarray(points, float))
    return pcd


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _hull(xy: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise) of 2-D points, monotone chain."""
    pts = np.unique(np.round(xy, 4), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and _cross(out[-1] - out[-2], p - out[-2]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def min_area_yaw(xy: np.ndarray) -> float:
    """Yaw (rad, in [0, pi/2)) of the minimum-area rectangle around 2-D points."""
    hull = _hull(xy)
    if len(hull) < 3:
        return 0.0
    best, yaw = np.inf, 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    for a in np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2):
        c, s = math.cos(a), math.sin(a)
        r = hull @ np.array([[c, -s], [s, c]])
        area = np.ptp(r[:, 0]) * np.ptp(r[:, 1])
        if area < best:
            best, yaw = area, float(a)
    return yaw


def _rot(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


def find_planes(
    points: np.ndarray, cfg: ExtractConfig
) -> tuple[Floor, list[WallPlane], np.ndarray]:
    """Floor, walls and a mask of the points on neither (the objects)."""
    import open3d as o3d

    o3d.utility.random.seed(cfg.seed)
    rest = np.ones(len(points), bool)
    floor, walls = None, []
    for _ in range(8):
        idx = np.nonzero(rest)[0]
        if len(idx) < 500:
            break
        model, inl = _o3d_cloud(points[idx]).segment_plane(cfg.plane_dist, 3, 500)
        n = np.asarray(model[:3]) / np.linalg.norm(model[:3])
        inl = idx[np.asarray(inl)]
        if len(inl) < 0.03 * len(points):
            break
        on = points[inl]
        if (
            abs(n[2]) > 0.95
            and floor is None
            and on[:, 2].mean() < np.percentile(points[:, 2], 20) + 0.05
        ):
            n = n if n[2] > 0 else -n
            height = float(-model[3] / np.linalg.norm(model[:3]) * np.sign(model[2]))
            floor = Floor(normal=tuple(n), height=height)
            rest &= np.abs(points @ n - height) > cfg.plane_dist
            continue
        if abs(n[2]) < 0.1:
            n = np.array([n[0], n[1], 0.0]) / np.linalg.norm(n[:2])
            along = np.array([-n[1], n[0]])
            length = np.ptp(on[:, :2] @ along)
            height = np.ptp(on[:, 2])
            side = (points[rest][:, :2] - on[:, :2].mean(0)) @ n[:2]
            if (side > -cfg.plane_dist).mean() < (side < cfg.plane_dist).mean():
                n = -n  # the normal points into the room, where the other points lie
                side = -side
            if (
                length >= cfg.wall_min_length
                and height >= cfg.wall_min_height
                and (side > -0.05).mean() > 0.97
            ):
                mid = on.mean(0)
                p0 = np.array([*mid[:2], floor.height if floor else on[:, 2].min()])
                walls.append(WallPlane(point=tuple(p0), normal=tuple(n), extent=(length, height)))
                rest &= np.abs((points[:, :2] - mid[:2]) @ n[:2]) > 2 * cfg.plane_dist
                continue
        break  # the largest plane left is part of an object
    if floor is None:
        raise ValueError("no floor found: expected a large horizontal plane at the cloud's bottom")
    above = points @ np.asarray(floor.normal) - floor.height
    return floor, walls, rest & (above > 1.5 * cfg.plane_dist)


def _clusters(points: np.ndarray, cfg: ExtractConfig) -> list[np.ndarray]:
    labels = np.asarray(
        _o3d_cloud(points).cluster_dbscan(cfg.cluster_eps, cfg.cluster_min_points, False)
    )
    out = [np.nonzero(labels == k)[0] for k in range(labels.max() + 1)]
    return _merge_below(points, [c for c in out if len(c) >= cfg.min_object_points])


def _merge_below(points: np.ndarray, clusters: list[np.ndarray]) -> list[np.ndarray]:
    """Join a cluster to the one whose footprint covers it and that lies right above it (a
    table's legs are cut from its top by the unseen underside) or spans its heights (a
    fragment of a shelf's back seen between boards)."""
    merged = True
    while merged:
        merged = False
        for a in range(len(clusters)):
            pa = points[clusters[a]]
            for b in range(len(clusters)):
                pb = points[clusters[b]]
                if a == b or len(pb) < len(pa) / 4:
                    continue
                lo, hi = pb[:, :2].min(0) - 0.03, pb[:, :2].max(0) + 0.03
                inside = (pa[:, :2] >= lo).all() and (pa[:, :2] <= hi).all()
                alo, ahi = pa[:, :2].min(0) - 0.05, pa[:, :2].max(0) + 0.05
                over = pb[((pb[:, :2] >= alo) & (pb[:, :2] <= ahi)).all(1)]
                gap = (over[:, 2].min() if len(over) else np.inf) - pa[:, 2].max()
                within = pa[:, 2].min() > pb[:, 2].min() - 0.03 and pa[:, 2].max() < pb[:, 2].max()
                if inside and (-0.02 < gap < 0.15 or within):
                    clusters[b] = np.concatenate([clusters[b], clusters[a]])
                    del clusters[a]
                    merged = True
                    break
            if merged:
                break
    return clusters


def _split_on_top(pts: np.ndarray, cfg: ExtractConfig) -> list[np.ndarray]:
    """Indices of `pts` split into a supporting object and what stands on its largest top."""
    z = pts[:, 2]
    bins = np.arange(z.min(), z.max() + 0.02, 0.02)
    if len(bins) < 4:
        return [np.arange(len(pts))]
    hist, _ = np.histogram(z, bins)
    k = int(np.argmax(hist))
    top = bins[k + 1]
    if hist[k] < 0.15 * len(pts) or top > z.max() - 0.04:
        return [np.arange(len(pts))]
    up = np.nonzero(z > top + 0.01)[0]
    base_xy = pts[np.abs(z - top) < 0.03][:, :2]
    if len(up) < cfg.min_object_points:
        return [np.arange(len(pts))]
    area = lambda xy: np.ptp(xy[:, 0]) * np.ptp(xy[:, 1])  # noqa: E731
    if area(pts[up][:, :2]) > 0.5 * area(base_xy):
        return [np.arange(len(pts))]
    rest = np.nonzero(z <= top + 0.01)[0]
    return [rest, up]


def _front_yaw(yaw: float, pts: np.ndarray, walls, views_xy) -> tuple[float, int]:
    """The yaw (4-fold choice) whose +x faces away from the wall the object backs onto (gap
    under 15 cm), else its best-seen side (ties towards the cameras at `views_xy`); and the
    index of that wall (-1: none)."""
    c0 = (pts[:, :2].min(0) + pts[:, :2].max(0)) / 2
    local = (pts[:, :2] - c0) @ _rot(yaw)
    lo, hi = np.percentile(local, 1, axis=0), np.percentile(local, 99, axis=0)
    centre = c0 + _rot(yaw) @ ((lo + hi) / 2)
    half = (hi - lo) / 2
    best_wall, best_gap = -1, 0.15
    for i, w in enumerate(walls):
        n = _rot(yaw).T @ np.asarray(w.normal[:2])  # wall normal in the box frame
        gap = w.distance(centre) - abs(n[0]) * half[0] - abs(n[1]) * half[1]
        if -0.05 < gap < best_gap:
            best_wall, best_gap = i, gap
    cands = [yaw + k * math.pi / 2 for k in range(4)]
    if best_wall >= 0:
        target = np.asarray(walls[best_wall].normal[:2])
        score = [math.cos(a) * target[0] + math.sin(a) * target[1] for a in cands]
    else:
        # free-standing: the best-seen side (points within 3 cm of it), ties towards the cameras
        loc = local - (lo + hi) / 2
        seen = [
            np.sum(loc[:, 0] > half[0] - 0.03),
            np.sum(loc[:, 1] > half[1] - 0.03),
            np.sum(loc[:, 0] < -half[0] + 0.03),
            np.sum(loc[:, 1] < -half[1] + 0.03),
        ]
        to_cam = np.asarray(views_xy, float) - centre
        to_cam /= max(1e-9, float(np.linalg.norm(to_cam)))
        score = [
            seen[k] / max(1, max(seen)) + 0.1 * (math.cos(a) * to_cam[0] + math.sin(a) * to_cam[1])
            for k, a in enumerate(cands)
        ]
    return float(np.mod(cands[int(np.argmax(score))] + math.pi, 2 * math.pi) - math.pi), best_wall


def snap_yaw(yaw: float, xy: np.ndarray, walls, cfg: ExtractConfig) -> float:
    """`yaw` turned onto the direction of the first wall within reach: `cfg.snap_deg` for an
    object whose footprint points (1st percentile) come within `cfg.snap_gap` of that wall
    (furniture backed onto it), `cfg.free_snap_deg` for any other (a free object may stand
    a few degrees off a wall on purpose)."""
    for w in walls:
        wy = math.atan2(w.normal[1], w.normal[0])
        diff = (yaw - wy + math.pi / 4) % (math.pi / 2) - math.pi / 4
        gap = np.percentile((xy - np.asarray(w.point[:2])) @ np.asarray(w.normal[:2]), 1)
        limit = cfg.snap_deg if gap < cfg.snap_gap else cfg.free_snap_deg
        if abs(diff) < math.radians(limit):
            return yaw - diff
    return yaw


def describe_object(pts: np.ndarray, floor: Floor, walls, views_xy, cfg: ExtractConfig) -> dict:
    """Box, front, descriptors of one cluster (world points)."""
    yaw = snap_yaw(min_area_yaw(pts[:, :2]), pts[:, :2], walls, cfg)
    yaw, wall = _front_yaw(yaw, pts, walls, views_xy)
    c0 = (pts[:, :2].min(0) + pts[:, :2].max(0)) / 2
    local = (pts[:, :2] - c0) @ _rot(yaw)
    p = cfg.percentile
    lo = np.percentile(local, p, axis=0)
    hi = np.percentile(local, 100 - p, axis=0)
    zlo, zhi = floor.height, np.percentile(pts[:, 2], 100 - p / 4)
    if pts[:, 2].min() > floor.height + 0.05:
        zlo = np.percentile(pts[:, 2], p / 4)
    centre_xy = c0 + _rot(yaw) @ ((lo + hi) / 2)
    size = np.array([*(hi - lo), zhi - zlo]).clip(0.02)
    loc = np.column_stack([local - (lo + hi) / 2, pts[:, 2] - zlo])  # box frame, z from bottom
    side = pts[:, 2] < zhi - 0.02  # the cylinder fit looks at the sides, not the top
    desc = descriptors(loc, size, pts[side, :2] if side.sum() > 10 else pts[:, :2])
    return dict(center=(*centre_xy, (zlo + zhi) / 2), size=tuple(size), yaw=yaw, wall=wall,
                desc=desc, n=len(pts))  # fmt: skip


def _span(v: np.ndarray) -> float:
    return float(np.ptp(v)) if len(v) else 0.0


def _occupancy(a: np.ndarray, b: np.ndarray, la: float, lb: float, cell: float = 0.03) -> float:
    na, nb = max(1, int(la / cell)), max(1, int(lb / cell))
    ia = np.clip(((a + la / 2) / la * na).astype(int), 0, na - 1)
    ib = np.clip((b / lb * nb).astype(int), 0, nb - 1)
    return len(np.unique(ia * nb + ib)) / (na * nb)


def descriptors(loc: np.ndarray, size: np.ndarray, xy: np.ndarray) -> dict:
    """Shape descriptors of points in the box frame (x front, y width, z up from the bottom)."""
    d, w, h = size
    x, y, z = loc.T
    # fill: the larger occupied fraction of the two side projections (a table's is low)
    fill = max(_occupancy(y, z, w, h), _occupancy(x, z, d, h))
    # front: points within 3 cm of the front face; recess: front cells seen only deeper
    front = x > d / 2 - 0.04
    cell = 0.04
    ny, nz = max(1, int(w / cell)), max(1, int(h / cell))
    iy = np.clip(((y + w / 2) / w * ny).astype(int), 0, ny - 1)
    iz = np.clip((z / h * nz).astype(int), 0, nz - 1)
    seen = np.zeros((ny, nz), bool)
    seen_front = np.zeros((ny, nz), bool)
    seen[iy, iz] = True
    seen_front[iy[front], iz[front]] = True
    recess = 1.0 - seen_front.sum() / max(1, seen.sum())
    # inner horizontal layers: z bins crowded across the width, away from the top and bottom
    n_shelves = 0
    if h > 0.3:
        edges = np.arange(0.0, h + 0.02, 0.02)
        # inside the box: off the front, the back panel and the sides
        inner = (x < d / 2 - 0.06) & (x > -d / 2 + 0.04) & (np.abs(y) < w / 2 - 0.05)
        hist, _ = np.histogram(z[inner], edges)
        yi, zi = y[inner], z[inner]
        wide = np.array([_span(yi[(zi >= a) & (zi < a + 0.02)]) for a in edges[:-1]])
        layer = (hist > max(10, 3 * np.median(hist))) & (wide > 0.6 * w)
        layer[(edges[:-1] < 0.08) | (edges[:-1] > h - 0.08)] = False
        # a board seen from above and below shows as two close layers: runs 6 cm apart join
        zs = edges[:-1][layer]
        n_shelves = int(len(zs) > 0) + int(np.sum(np.diff(zs) > 0.06))
    # handles: points standing out 1 cm+ in front of the front face, grouped
    face = np.percentile(x[front], 50) if front.sum() > 20 else d / 2
    # the face's own depth noise (robust std) sets how far out a handle must stand
    noise = 1.48 * np.median(np.abs(x[front] - face)) if front.sum() > 20 else 0.0
    out = np.nonzero((x > face + max(0.012, 4 * noise)) & (z > 0.03))[0]
    n_drawers = n_doors = 0
    if len(out) >= 5:
        lab = np.asarray(
            _o3d_cloud(np.column_stack([x[out], y[out], z[out]])).cluster_dbscan(0.05, 3, False)
        )
        for k in range(lab.max() + 1):
            g = out[lab == k]
            if len(g) < 3:
                continue
            if np.ptp(y[g]) >= np.ptp(z[g]):
                n_drawers += 1
            else:
                n_doors += 1
    # vertical-cylinder fit of the footprint: algebraic circle fit, residual over radius
    a = np.column_stack([2 * xy, np.ones(len(xy))])
    sol, *_ = np.linalg.lstsq(a, (xy**2).sum(1), rcond=None)
    r = math.sqrt(max(1e-9, sol[2] + sol[0] ** 2 + sol[1] ** 2))
    resid = np.sqrt(((np.linalg.norm(xy - sol[:2], axis=1) - r) ** 2).mean()) / r
    if not 0.8 < r / ((d + w) / 4) < 1.25:
        resid = max(resid, 1.0)  # a circle unlike the footprint (e.g. through a box's corner)
    return dict(fill_ratio=float(fill), n_shelves=n_shelves, n_drawers=n_drawers,
                n_doors=n_doors, handle=bool(n_drawers + n_doors), cylinder_fit=float(resid),
                recess=float(recess))  # fmt: skip


def categorise(desc: dict, size) -> tuple[str, float]:
    """Category and confidence by rules over descriptors (first rule that fires)."""
    d, w, h = size
    squareish = min(d, w) / max(d, w) > 0.75
    # a solid side (fill): four table legs on a square also lie on one circle
    if desc["cylinder_fit"] < 0.06 and squareish and desc["fill_ratio"] >= 0.5:
        return "cylinder", float(np.clip(1 - desc["cylinder_fit"] / 0.06, 0.5, 1))
    if desc["fill_ratio"] < 0.5 and h > 0.3:
        return "table", float(np.clip(1 - desc["fill_ratio"], 0.5, 1))
    if desc["n_shelves"] >= 1 or desc["recess"] > 0.4:
        return "shelf", 0.9 if desc["n_shelves"] >= 1 else 0.6
    if desc["handle"]:
        return "cabinet", 0.9 if desc["n_drawers"] + desc["n_doors"] >= 2 else 0.7
    return "box", 0.8 if h < 0.6 else 0.6


def extract(points: np.ndarray, views_xy=(0.0, 0.0), cfg: ExtractConfig = ExtractConfig()):
    """SceneDescription of a world-frame cloud (z up). `views_xy`: where the cameras stood
    (mean), to tell an object's front when no wall backs it. Returns (description, object
    points list) — the points for the picture."""
    points = np.asarray(points, float)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 1000:
        raise ValueError(f"cloud of shape {points.shape}: expected (N >= 1000, 3) points")
    pts = np.asarray(_o3d_cloud(points).voxel_down_sample(cfg.voxel).points)
    floor, walls, rest = find_planes(pts, cfg)
    obj_pts = pts[rest]
    if len(obj_pts) < cfg.min_object_points:
        return SceneDescription(floor=floor, walls=walls), []
    # sparse clouds (small images, far cameras): widen DBSCAN and shrink the size floor
    nn = np.asarray(_o3d_cloud(obj_pts).compute_nearest_neighbor_distance())
    spacing = max(cfg.voxel, float(np.percentile(nn, 75)))
    cfg = dataclasses.replace(
        cfg,
        cluster_eps=max(cfg.cluster_eps, 3 * spacing),
        min_object_points=max(15, int(cfg.min_object_points * (cfg.voxel / spacing) ** 2)),
    )
    groups = []
    for c in _clusters(obj_pts, cfg):
        for part in _split_on_top(obj_pts[c], cfg):
            if len(part) >= cfg.min_object_points:
                groups.append(obj_pts[c][part])
    # what lies behind a wall (its ends, the next room seen past it) is not in the room
    groups = [g for g in groups if all(w.distance(np.median(g[:, :2], 0)) > 0 for w in walls)]
    found = [describe_object(g, floor, walls, views_xy, cfg) for g in groups]
    objects = []
    for i, f in enumerate(found):
        category, conf = categorise(f["desc"], f["size"])
        rel = relations(i, found, floor, walls)
        desc = {k: v for k, v in f["desc"].items() if k != "recess"}
        objects.append(
            ObjectEstimate(
                id=f"obj{i}",
                category=category,
                center=f["center"],
                size=f["size"],
                yaw=f["yaw"],
                relations=rel,
                descriptors=desc,
                confidence=conf,
            )  # fmt: skip
        )
    return SceneDescription(floor=floor, walls=walls, objects=objects), groups


def relations(i: int, found: list[dict], floor: Floor, walls) -> list[str]:
    """Relations of object i among `found` boxes (dicts with center, size, yaw): on_floor
    (bottom within 4 cm of the floor), else on_top_of the object whose top is within 4 cm of
    its bottom and whose footprint holds its centre; against_wall:k when its back faces wall
    k within 10 cm, wall_mounted:k instead when nothing supports it."""
    f = found[i]
    bottom = f["center"][2] - f["size"][2] / 2
    rel = []
    if bottom < floor.height + 0.04:
        rel.append("on_floor")
    else:
        for j, g in enumerate(found):
            top = g["center"][2] + g["size"][2] / 2
            local = _rot(g["yaw"]).T @ (np.asarray(f["center"][:2]) - g["center"][:2])
            inside = (np.abs(local) <= np.asarray(g["size"][:2]) / 2).all()
            if j != i and abs(top - bottom) < 0.04 and inside:
                rel.append(f"on_top_of:obj{j}")
                break
    wall_kind = "against_wall" if rel else "wall_mounted"
    for k, w in enumerate(walls):
        back = w.distance(f["center"][:2]) - f["size"][0] / 2
        facing = math.cos(f["yaw"]) * w.normal[0] + math.sin(f["yaw"]) * w.normal[1] > 0.95
        if facing and back < 0.1:
            rel.append(f"{wall_kind}:{k}")
    return rel


def extract_scan(path, cfg: ExtractConfig = ExtractConfig()):
    """Read a scan folder or .ply/.pcd file and extract it: (description, object clouds,
    all points). Camera positions come from a folder's poses.json (else the origin)."""
    import json
    from pathlib import Path

    from .scan import read_scan

    points, _ = read_scan(path)
    poses = Path(path) / "poses.json"
    views_xy = (0.0, 0.0)
    if poses.is_file():
        eyes = [
            np.asarray(p, float)[:2, 3] for p in json.loads(poses.read_text())["camera_to_world"]
        ]
        views_xy = tuple(np.mean(eyes, axis=0))
    desc, groups = extract(points, views_xy, cfg)
    return desc, groups, points


def draw_top_view(desc: SceneDescription, groups, points, path, px: int = 640) -> None:
    """A PNG seen from above: the cloud (grey), each object's points (its colour), its box
    (outline, front edge thick) and label, walls (black lines)."""
    from PIL import Image, ImageDraw

    from .accuracy import footprint

    pts = np.asarray(points)[:: max(1, len(points) // 200_000)]
    lo, hi = pts[:, :2].min(0) - 0.1, pts[:, :2].max(0) + 0.1
    scale = px / max(hi - lo)
    size = tuple(int(v) for v in np.ceil((hi - lo) * scale))

    def uv(xy):
        xy = np.atleast_2d(xy)
        return np.column_stack([(xy[:, 0] - lo[0]) * scale, (hi[1] - xy[:, 1]) * scale])

    canvas = np.full((size[1], size[0], 3), 255, np.uint8)

    def splat(xy, colour) -> None:
        u, v = uv(xy).astype(int).T
        canvas[np.clip(v, 0, size[1] - 1), np.clip(u, 0, size[0] - 1)] = colour

    splat(pts[:, :2], (200, 200, 200))
    rng = np.random.default_rng(0)
    colours = [tuple(int(c) for c in rng.integers(40, 200, 3)) for _ in desc.objects]
    for g, colour in zip(groups, colours, strict=True):
        splat(g[:, :2], colour)
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for obj, colour in zip(desc.objects, colours, strict=True):
        corners = [tuple(p) for p in uv(footprint(obj))]
        draw.polygon(corners, outline=colour)
        draw.line([corners[3], corners[0]], fill=colour, width=3)  # the front edge (+x)
        draw.text(corners[1], f"{obj.id} {obj.category} {obj.confidence:.2f}", fill="black")
    for w in desc.walls:
        n = np.asarray(w.normal[:2])
        along = np.array([-n[1], n[0]]) * w.extent[0] / 2
        a, b = uv(np.asarray(w.point[:2]) - along)[0], uv(np.asarray(w.point[:2]) + along)[0]
        draw.line([tuple(a), tuple(b)], fill="black", width=2)
    img.save(path)
