"""How well an extracted SceneDescription matches the truth (issue 10's extraction targets).

Objects are matched greedily by centre distance (nearest pairs first, at most `max_match`
apart). Yaw error respects symmetry: cabinets and shelves have a front (mod 2 pi), boxes and
tables are the same box every quarter turn (mod pi/2), cylinders have no yaw. IoU is that of
the two gravity-aligned oriented boxes (footprint polygon intersection times height overlap).
"""

from __future__ import annotations

import math

import numpy as np

from xembody.sim.scenes.description import ObjectEstimate, SceneDescription, WallPlane

TOLERANCES = dict(floor_normal_deg=2.0, category=0.9, center_m=0.05, yaw_rad=0.1, iou=0.6)
_PERIOD = {"cabinet": 2 * math.pi, "shelf": 2 * math.pi, "box": math.pi / 2, "table": math.pi / 2}


def footprint(o: ObjectEstimate) -> np.ndarray:
    """(4, 2) corners, counter-clockwise."""
    c, s = math.cos(o.yaw), math.sin(o.yaw)
    half = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * np.asarray(o.size[:2]) / 2
    return half @ np.array([[c, s], [-s, c]]) + np.asarray(o.center[:2])


def _clip(poly: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Part of convex polygon `poly` left of the directed line a -> b."""
    out = []
    side = lambda p: (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])  # noqa: E731
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        sp, sq = side(p), side(q)
        if sp >= 0:
            out.append(p)
        if sp * sq < 0:
            out.append(p + (q - p) * sp / (sp - sq))
    return np.array(out)


def _area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def box_iou(a: ObjectEstimate, b: ObjectEstimate) -> float:
    """3-D IoU of two gravity-aligned oriented boxes."""
    pa, pb = footprint(a), footprint(b)
    inter = pa
    for i in range(4):
        inter = _clip(inter, pb[i], pb[(i + 1) % 4])
        if len(inter) == 0:
            return 0.0
    za = (a.center[2] - a.size[2] / 2, a.center[2] + a.size[2] / 2)
    zb = (b.center[2] - b.size[2] / 2, b.center[2] + b.size[2] / 2)
    dz = max(0.0, min(za[1], zb[1]) - max(za[0], zb[0]))
    vi = _area(inter) * dz
    va, vb = np.prod(a.size), np.prod(b.size)
    return float(vi / (va + vb - vi))


def yaw_error(truth: ObjectEstimate, est: ObjectEstimate) -> float:
    """Smallest yaw difference (rad) under the truth category's symmetry; 0 for cylinders."""
    period = _PERIOD.get(truth.category)
    if period is None:
        return 0.0
    d = (est.yaw - truth.yaw) % period
    return float(min(d, period - d))


def match(truth: SceneDescription, est: SceneDescription, max_match: float = 0.3) -> list:
    """[(truth object, estimate or None)] pairing nearest centres first."""
    pairs = sorted(
        (np.linalg.norm(np.subtract(t.center, e.center)), i, j)
        for i, t in enumerate(truth.objects)
        for j, e in enumerate(est.objects)
    )
    used_t, used_e, out = set(), set(), {}
    for d, i, j in pairs:
        if d <= max_match and i not in used_t and j not in used_e:
            used_t.add(i)
            used_e.add(j)
            out[i] = est.objects[j]
    return [(t, out.get(i)) for i, t in enumerate(truth.objects)]


def extraction_accuracy(truth: SceneDescription, est: SceneDescription) -> dict:
    """Floor-normal angle (deg), category accuracy, centre / yaw errors (mean, max over
    matched objects), IoU (mean, min; unmatched count as 0), per-object rows, and `passed`
    per tolerance in TOLERANCES (centre, yaw and IoU judged on every truth object)."""
    if not truth.objects:
        raise ValueError("truth has no objects: expected at least one to score against")
    cosang = np.clip(np.dot(truth.floor.normal, est.floor.normal), -1.0, 1.0)
    floor_deg = math.degrees(math.acos(cosang))
    rows = []
    for t, e in match(truth, est):
        if e is None:
            rows.append(dict(id=t.id, category=t.category, found=None, center_m=math.inf,
                             yaw_rad=math.inf, iou=0.0))  # fmt: skip
            continue
        rows.append(
            dict(
                id=t.id,
                category=t.category,
                found=e.category,
                center_m=float(np.linalg.norm(np.subtract(t.center, e.center))),
                yaw_rad=yaw_error(t, e),
                iou=box_iou(t, e),
            )  # fmt: skip
        )
    matched = [r for r in rows if r["found"] is not None]
    cat = sum(r["found"] == r["category"] for r in rows) / len(rows)
    centre = [r["center_m"] for r in matched] or [math.inf]
    yaw = [r["yaw_rad"] for r in matched] or [math.inf]
    iou = [r["iou"] for r in rows]
    tol = TOLERANCES
    return dict(
        floor_normal_deg=floor_deg,
        category_accuracy=cat,
        center_error_mean=float(np.mean(centre)),
        center_error_max=max(r["center_m"] for r in rows),
        yaw_error_mean=float(np.mean(yaw)),
        yaw_error_max=max(r["yaw_rad"] for r in rows),
        iou_mean=float(np.mean(iou)),
        iou_min=float(min(iou)),
        n_truth=len(truth.objects),
        n_found=len(est.objects),
        n_matched=len(matched),
        objects=rows,
        passed=dict(
            floor_normal=floor_deg < tol["floor_normal_deg"],
            category=cat >= tol["category"],
            center=max(r["center_m"] for r in rows) <= tol["center_m"],
            yaw=max(r["yaw_rad"] for r in rows) <= tol["yaw_rad"],
            iou=min(iou) >= tol["iou"],
        ),
    )


def scene_truth(scene) -> SceneDescription:
    """The true SceneDescription of a generated room (sim/scenes/room.py `Scene`): per
    placed object its id, category, box centre, full extents and yaw; the walls' planes.
    A cylinder's diameter is the mean of its depth and width, as the asset library builds it.
    Relations and descriptors are left out (the accuracy does not score them)."""
    objects = []
    for p in scene.objects:
        d, w, h = p.asset.size
        if p.asset.category == "cylinder":
            d = w = (d + w) / 2
        objects.append(
            ObjectEstimate(
                id=p.id, category=p.asset.category, center=p.center, size=(d, w, h), yaw=p.yaw
            )  # fmt: skip
        )
    walls = tuple(
        WallPlane(point=(*w.point, 0.0), normal=(*w.normal, 0.0), extent=(w.length, w.height))
        for w in scene.walls
    )
    return SceneDescription(walls=walls, objects=tuple(objects))
