"""Digital twin and digital cousins of a scanned scene.

`make_twin(desc)` turns a SceneDescription into a `Scene` of best-estimate assets (each
object's extracted size and descriptor targets, mid-range styles). `make_cousins(desc, n,
seed)` draws, per object, a pool of assets of the same category near the extracted size
and descriptors and picks `n` of them by farthest-point sampling in the asset feature
space, starting from the twin's asset, so that cousins spread out instead of clustering.
Cousin k takes the k-th pick of every object. Every scene is checked (`checks.py`);
failures are repaired (objects nudged apart, put on their support), then, for cousins,
the failing objects re-drawn from the pool; a twin that cannot be repaired is refused
with `SceneRefused` naming the reasons. The same description and seed give the same
scenes, MJCF text included.

Orientation: an object against a wall is turned (by a multiple of 90 deg, swapping its
extents) so that its front (+x, drawers and doors) faces away from that wall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .assets import Asset, sample_asset
from .checks import Report, check_scene, repair
from .room import CLEARANCE, Placed, Scene, Wall

POOL = 48  # candidates per object
COUSIN_SPREAD = 0.5
REPAIR_ROUNDS = 4
RESAMPLES = 6


class SceneRefused(ValueError):
    """A scene failed its physical checks and could not be repaired."""


@dataclass(frozen=True, kw_only=True)
class Result:
    """A checked scene, its check report and its distance from the twin."""

    scene: Scene
    report: Report
    distance: float
    repairs: int
    redraws: int = 0  # objects re-drawn from the pool (cousins)


def _get(item: Any, key: str, default: Any = None) -> Any:
    return item.get(key, default) if isinstance(item, dict) else getattr(item, key, default)


def _walls(desc: Any) -> tuple[Wall, ...]:
    walls = []
    for i, w in enumerate(desc.walls or []):
        point = np.asarray(_get(w, "point"), float)[:2]
        normal = np.asarray(_get(w, "normal"), float)[:2]
        if point.shape != (2,) or not np.linalg.norm(normal) > 0:
            raise ValueError(
                f"wall {i}: point={point}, normal={normal}, expected a point and "
                "a non-zero horizontal normal"
            )
        normal = normal / np.linalg.norm(normal)
        ext = _get(w, "extent", 4.0)
        ext = np.atleast_1d(np.asarray(ext, float))
        height = float(ext[1]) if ext.size > 1 else 2.5
        walls.append(Wall(point=tuple(point), normal=tuple(normal), length=float(ext[0]),
                          height=height))  # fmt: skip
    return tuple(walls)


def _relation(obj: Any, kind: str) -> str | None:
    for rel in _get(obj, "relations", []) or []:
        if rel.startswith(kind + ":"):
            return rel.split(":", 1)[1]
    return None


def _frame(obj: Any, walls: tuple[Wall, ...]) -> tuple[tuple[float, ...], float, int]:
    """Extents in the object's own frame, its yaw, and the wall its back is against."""
    size = [float(v) for v in _get(obj, "size")]
    yaw = float(_get(obj, "yaw", 0.0))
    wall = _relation(obj, "against_wall")
    if wall is None or not walls:
        return tuple(size), yaw, -1
    idx = int(wall)
    if not 0 <= idx < len(walls):
        raise ValueError(f"object {_get(obj, 'id')}: against_wall:{idx}, but {len(walls)} walls")
    n = np.asarray(walls[idx].normal)
    k = int(np.argmax([np.dot(n, [math.cos(yaw + q * math.pi / 2), math.sin(yaw + q * math.pi / 2)])
                       for q in range(4)]))  # fmt: skip
    if k % 2:
        size[0], size[1] = size[1], size[0]
    return tuple(size), math.atan2(n[1], n[0]), idx


def _targets(obj: Any) -> dict:
    d = dict(_get(obj, "descriptors", {}) or {})
    return {k: d[k] for k in ("n_shelves", "n_drawers", "n_doors", "handle") if k in d}


def _stack_order(objs: list) -> list:
    """Objects ordered so that supports come before what stands on them."""
    ids = {_get(o, "id") for o in objs}
    done: list = []
    pending = list(objs)
    while pending:
        ready = [o for o in pending if (_relation(o, "on_top_of") or "floor") not in ids
                 or any(_get(d, "id") == _relation(o, "on_top_of") for d in done)]  # fmt: skip
        if not ready:
            raise ValueError(
                f"on_top_of relations form a cycle among {[_get(o, 'id') for o in pending]}"
            )  # noqa: E501
        done += ready
        pending = [o for o in pending if o not in ready]
    return done


def _place(scene_objs: dict[str, Placed], obj: Any, asset: Asset, yaw: float, wall: int,
           twin_depth: float, walls: tuple[Wall, ...]) -> Placed:  # fmt: skip
    """Put `asset` where `obj` was seen: its back stays on the wall, it stands on its support."""
    cx, cy = (float(v) for v in np.asarray(_get(obj, "center"), float)[:2])
    if wall >= 0:
        n = np.asarray(walls[wall].normal)
        cx, cy = np.array([cx, cy]) + n * (asset.size[0] - twin_depth) / 2
    sup = _relation(obj, "on_top_of")
    sup = sup if sup in scene_objs else "floor"
    top = 0.0
    if sup != "floor":
        under = scene_objs[sup]
        top = under.center[2] + under.asset.size[2] / 2
    z = top + asset.size[2] / 2 + CLEARANCE
    oid = str(_get(obj, "id"))
    return Placed(id=oid, asset=asset, center=(float(cx), float(cy), z), yaw=yaw,
                  support=sup, wall=wall)  # fmt: skip


def _build(name: str, desc: Any, assets: dict[str, Asset]) -> Scene:
    walls = _walls(desc)
    placed: dict[str, Placed] = {}
    for obj in _stack_order(list(desc.objects)):
        size, yaw, wall = _frame(obj, walls)
        oid = str(_get(obj, "id"))
        placed[oid] = _place(placed, obj, assets[oid], yaw, wall, size[0], walls)
    order = [str(_get(o, "id")) for o in desc.objects]
    return Scene(name=name, walls=walls, objects=tuple(placed[i] for i in order))


def twin_assets(desc: Any, seed: int = 0) -> dict[str, Asset]:
    walls = _walls(desc)
    out = {}
    for i, obj in enumerate(desc.objects):
        size, _, _ = _frame(obj, walls)
        out[str(_get(obj, "id"))] = sample_asset(
            _get(obj, "category"), size, _targets(obj), seed=seed * 1000 + i, spread=0.0
        )
    return out


def checked(scene: Scene, *, joints: bool = True) -> tuple[Scene, Report, int]:
    """(scene, report, rounds): `scene` repaired until it passes (at most REPAIR_ROUNDS
    rounds); when it never does, the scene as given with its own report, whose reasons
    are the clearest account of what is wrong."""
    first = rep = check_scene(scene, joints=joints)
    fixed, rounds = scene, 0
    while not rep.ok and rounds < REPAIR_ROUNDS:
        fixed = repair(fixed, rep)
        rounds += 1
        rep = check_scene(fixed, joints=joints)
    return (fixed, rep, rounds) if rep.ok else (scene, first, rounds)


def make_twin(desc: Any, *, seed: int = 0) -> Result:
    """The twin: best-estimate assets, checked and repaired; `SceneRefused` when it fails."""
    if not list(desc.objects):
        raise ValueError("scene description has no objects")
    scene, rep, rounds = checked(_build("twin", desc, twin_assets(desc, seed)))
    if not rep.ok:
        raise SceneRefused(
            f"twin refused ({rounds} repair rounds did not clear it): " + "; ".join(rep.reasons())
        )
    return Result(scene=scene, report=rep, distance=0.0, repairs=rounds)


def farthest_points(features: np.ndarray, start: np.ndarray, n: int) -> list[int]:
    """Indices of `n` rows of `features` picked greedily, each farthest from `start` and
    the rows picked before it."""
    dist = np.linalg.norm(features - start, axis=1)
    picks: list[int] = []
    for _ in range(min(n, len(features))):
        i = int(np.argmax(dist))
        picks.append(i)
        dist = np.minimum(dist, np.linalg.norm(features - features[i], axis=1))
        dist[i] = -1.0
    return picks


def _pool(desc: Any, twin: dict[str, Asset], n: int, seed: int) -> dict[str, list[Asset]]:
    """Per object, `n` FPS picks then the rest of its candidate pool (for re-draws)."""
    walls = _walls(desc)
    out = {}
    for i, obj in enumerate(desc.objects):
        oid = str(_get(obj, "id"))
        size, _, _ = _frame(obj, walls)
        cands = [
            sample_asset(_get(obj, "category"), size, _targets(obj),
                         seed=(seed * 7919 + i) * 1000 + k, spread=COUSIN_SPREAD)
            for k in range(max(POOL, n + RESAMPLES))
        ]  # fmt: skip
        picks = farthest_points(np.stack([c.features() for c in cands]), twin[oid].features(), n)
        rest = [c for k, c in enumerate(cands) if k not in picks]
        out[oid] = [cands[k] for k in picks] + rest
    return out


def distance(a: dict[str, Asset], b: dict[str, Asset]) -> float:
    """Mean over objects of the feature distance between two asset choices."""
    return float(np.mean([np.linalg.norm(a[k].features() - b[k].features()) for k in a]))


def make_cousins(desc: Any, n: int, *, seed: int = 0) -> list[Result]:
    """`n` checked cousins (see the module docstring); `SceneRefused` when one cannot be
    made to pass after RESAMPLES re-draws."""
    if n < 1:
        raise ValueError(f"n={n}, expected at least 1 cousin")
    twin = twin_assets(desc, seed)
    pool = _pool(desc, twin, n, seed)
    spare = {oid: n for oid in pool}  # next unused candidate per object
    out = []
    for k in range(n):
        assets = {oid: cands[k] for oid, cands in pool.items()}
        redrawn = 0
        for attempt in range(RESAMPLES + 1):
            scene, rep, rounds = checked(_build(f"cousin_{k:02d}", desc, assets))
            if rep.ok:
                break
            bad = {r[0].split("/")[0] for r in rep.penetrations + rep.unsupported + rep.drift}
            bad |= {r[1] for r in rep.penetrations} | {j.split("/")[0] for j, _, _ in rep.joints}
            bad &= set(assets)
            if attempt == RESAMPLES or not bad:
                raise SceneRefused(f"cousin_{k:02d} refused: " + "; ".join(rep.reasons()))
            for oid in sorted(bad):
                assets[oid] = pool[oid][spare[oid] % len(pool[oid])]
                spare[oid] += 1
                redrawn += 1
        dist = distance(assets, twin)
        out.append(Result(scene=scene, report=rep, distance=dist, repairs=rounds, redraws=redrawn))
    return out


def manifest_entry(result: Result) -> dict:
    """What the manifest says about one scene: assets, parameters, distance, checks."""
    scene = result.scene
    return {
        "name": scene.name,
        "digest": scene.digest(),
        "distance_from_twin": round(result.distance, 4),
        "repairs": result.repairs,
        "redraws": result.redraws,
        "checks": result.report.summary(),
        "objects": [
            {
                "id": o.id,
                "category": o.asset.category,
                "size": list(o.asset.size),
                "center": [round(v, 4) for v in o.center],
                "yaw": round(o.yaw, 4),
                "support": o.support,
                "wall": o.wall,
                "params": o.asset.params,
            }
            for o in scene.objects
        ],  # fmt: skip
    }


__all__ = ["SceneRefused", "Result", "make_twin", "make_cousins", "farthest_points",
           "manifest_entry", "checked", "distance"]  # fmt: skip
