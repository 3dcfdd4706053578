"""The scenes of the twin-against-cousins experiment, built from a scan.

One "real" room (`random_room`, whose target cabinet gets its own hidden styles: handles,
panels, travel, damping, friction, mass) is written as MJCF, scanned and extracted by the
`perceive` function the caller hands in (xembody.real.perception.evaluate.scan_and_extract,
one view: models never imports real). The twin and the cousins are built from that
*estimate* (`make_twin`, `make_cousins`), exactly as `xembody cousins` does. The arm is
placed `standoff` m in front of the *estimated* cabinet front, so in the real scene the
cabinet also carries the extraction's pose and size errors. Every scene is a `Cabinet` in
the arm's frame, which becomes the `cabinet` task's scene (`Cabinet.scene`):

- twin: the estimate's twin;
- cousins: the first `cousins` cousins with the part (farthest-point ordered);
- heldout_near, heldout_far: a second draw, split at the median distance from the twin;
- broad: cabinets drawn across the whole asset library's ranges;
- real: the true cabinet at its true pose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xembody.sim.scenes.assets import Asset, sample_asset
from xembody.sim.scenes.cousins import make_cousins, make_twin
from xembody.sim.scenes.description import SceneDescription
from xembody.sim.scenes.random_room import random_room
from xembody.sim.tasks.cabinet import PARTS, cabinet_scene

if TYPE_CHECKING:
    from .experiment import ExperimentConfig

Perceive = Callable[[Path, Path], SceneDescription]
"""(MJCF file of a room, folder for the scan's files) -> the extracted description."""


@dataclass(frozen=True)
class Cabinet:
    """A cabinet asset and its pose in the arm's frame (box centre, yaw of its front)."""

    name: str
    asset: Asset
    pos: tuple[float, float, float]
    yaw: float
    distance: float = 0.0  # feature distance from the twin

    def scene(self) -> dict:
        """The `cabinet` task's `cabinet` config value (xembody.sim.tasks.cabinet)."""
        return cabinet_scene(self.asset, self.pos, self.yaw)

    def describe(self) -> dict:
        """Its size, position and the asset parameters the report records."""
        keys = ("n_drawers", "n_doors", "handle", "handle_place", "door_handle_place",
                "drawer_travel", "door_range", "slide_damping", "hinge_damping")  # fmt: skip
        return {"size": list(self.asset.size), "pos": [round(float(v), 4) for v in self.pos],
                **{k: self.asset.params.get(k) for k in keys}}  # fmt: skip


def _room(room_seed: int, key: str) -> SceneDescription:
    rng = np.random.default_rng(room_seed)
    for _ in range(100):
        desc = random_room(rng)
        cabs = [o for o in desc.objects if o.category == "cabinet"]
        if cabs and cabs[0].descriptors.get(key, 0) > 0:
            return desc
    raise RuntimeError(f"room seed {room_seed}: no room with a cabinet with {key} in 100 draws")


def _arm_frame(est_center, est_yaw: float, est_depth: float, standoff: float):
    """(origin xy, heading) of the arm in the room: `standoff` m in front of the estimated
    front, facing the cabinet."""
    f = np.array([math.cos(est_yaw), math.sin(est_yaw)])
    origin = np.asarray(est_center[:2], float) + (est_depth / 2 + standoff) * f
    return origin, est_yaw + math.pi


def _to_arm(placed, origin, heading: float, name: str, asset=None, dist: float = 0.0) -> Cabinet:
    c, s = math.cos(-heading), math.sin(-heading)
    rel = np.asarray(placed.center[:2], float) - origin
    xy = (c * rel[0] - s * rel[1], s * rel[0] + c * rel[1])
    yaw = (placed.yaw - heading + math.pi) % (2 * math.pi) - math.pi
    return Cabinet(name, asset or placed.asset, (*xy, placed.center[2]), yaw, dist)


MATCH_M = 0.25


def _scan_room(desc: SceneDescription, seed: int, key: str, perceive: Perceive, out: Path):
    """Build the real room (its target cabinet restyled), scan and extract it (`perceive`);
    (room, true cabinet, estimate, estimated cabinet), or None if no estimate matches."""
    real_room = make_twin(desc, seed=seed).scene
    cab_id = next(o.id for o in desc.objects if o.category == "cabinet" and o.descriptors[key])
    # the real cabinet has its own styles (handles, panels, travel, damping, friction, mass),
    # drawn across the library's ranges at the room's true size and part counts: what a
    # scan does not show, or the extraction does not recover, differs from the twin's guess
    placed = real_room.get(cab_id)
    counts = {k: placed.asset.params[k] for k in ("n_drawers", "n_doors", "drawer_share")}
    styled = sample_asset("cabinet", placed.asset.size, counts, seed=seed + 31, spread=1.0)
    styled = replace(styled, size=placed.asset.size, params={**styled.params, **counts})
    real_room = real_room.replace(replace(placed, asset=styled))
    true_cab = real_room.get(cab_id)
    (out / "real_room.xml").write_text(real_room.mjcf())
    est = perceive(out / "real_room.xml", out)
    cands = [o for o in est.objects if o.category == "cabinet"]
    dist = [math.dist(o.center[:2], true_cab.center[:2]) for o in cands]
    if not cands or min(dist) > MATCH_M:
        return None
    return real_room, true_cab, est, cands[int(np.argmin(dist))]


def build_scenes(cfg: ExperimentConfig, room_seed: int, perceive: Perceive,
                 out: str | Path | None = None) -> dict:  # fmt: skip
    """The real room `room_seed`, its scan and extraction (`perceive`), and every scene of
    the experiment (cabinets in the arm's frame): twin, cousins, held-out cousins, broad,
    real; with the estimate, the true cabinet and how many rooms were skipped."""
    key = PARTS[cfg.task]
    out = Path(out or "out/cousins_experiment")
    out.mkdir(parents=True, exist_ok=True)
    # a room counts when the scan finds its target cabinet (an estimated cabinet within
    # MATCH_M of the true centre); else the next room is drawn (`rooms_skipped` says how many)
    for skipped in range(10):
        desc = _room(room_seed + 1000 * skipped, key)
        found = _scan_room(desc, room_seed + 1000 * skipped, key, perceive, out)
        if found is not None:
            break
    else:
        raise RuntimeError(f"room seed {room_seed}: the scan found no target cabinet in 10 rooms")
    real_room, true_cab, est, est_cab = found
    if not est_cab.descriptors.get(key):  # the task names the part: there is one
        est_cab = replace(est_cab, descriptors={**est_cab.descriptors, key: 1})
    only = replace(est, objects=(est_cab,))
    twin = make_twin(only, seed=room_seed)
    tw = twin.scene.get(est_cab.id)
    origin, heading = _arm_frame(est_cab.center, tw.yaw, est_cab.size[0], cfg.standoff)

    def convert(results, prefix: str) -> list[Cabinet]:
        cabs = []
        for r in results:
            p = r.scene.get(est_cab.id)
            if p.asset.params.get(key, 0) > 0:
                name = f"{prefix}{r.scene.name}"
                cabs.append(_to_arm(p, origin, heading, name, None, r.distance))
        return cabs

    # cousins without the part (counts are drawn near the estimate) cannot hold the task:
    # draw more and keep the first ones with drawers, in farthest-point order
    cousins = convert(make_cousins(only, 2 * cfg.cousins, seed=room_seed), "")[: cfg.cousins]
    held = convert(make_cousins(only, 2 * cfg.heldout, seed=room_seed + 1000), "heldout_")
    held = held[: cfg.heldout]
    held.sort(key=lambda c: c.distance)
    half = len(held) // 2
    rng = np.random.default_rng(room_seed + 7)
    broad = []
    while len(broad) < cfg.broad:
        size = (rng.uniform(0.3, 0.55), rng.uniform(0.4, 0.9), rng.uniform(0.55, 1.05))
        if cfg.task == "drawer":
            targets = {"n_drawers": int(rng.integers(1, 5)), "n_doors": 0}
        else:
            targets = {"n_drawers": int(rng.integers(0, 3)), "n_doors": int(rng.integers(1, 3))}
        asset = sample_asset("cabinet", size, targets, seed=int(rng.integers(1 << 30)), spread=1.0)
        if asset.params[key] == 0:
            continue
        d = asset.size[0]  # back against the same wall plane as the estimate
        x = cfg.standoff + est_cab.size[0] - d / 2
        pos = (x, 0.0, asset.size[2] / 2)
        broad.append(Cabinet(f"broad_{len(broad):02d}", asset, pos, -math.pi))
    return {
        "twin": [_to_arm(tw, origin, heading, "twin")],
        "cousins": cousins,
        "heldout_near": held[:half],
        "heldout_far": held[half:],
        "broad": broad,
        "real": [_to_arm(true_cab, origin, heading, "real")],
        "estimate": {
            "center": list(est_cab.center),
            "size": list(est_cab.size),
            "yaw": est_cab.yaw,
            "descriptors": dict(est_cab.descriptors),
        },
        "truth_cabinet": {
            "center": list(true_cab.center),
            "size": list(true_cab.asset.size),
            "yaw": true_cab.yaw,
        },
        "rooms_skipped": skipped,
    }
