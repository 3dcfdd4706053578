"""Procedural furniture written with MjSpec: boxes, cylinders, tables, shelves, cabinets.

An `Asset` is data: a category, its full extents and the parameters a generator sampled.
`sample_asset(category, size, targets, seed, spread)` draws one; `spread=0` gives the best
estimate (the size and descriptor targets as given, mid-range styles), larger spreads
draw sizes within `size * (1 +- spread)` and styles across the ranges below. `add_asset`
writes an asset into any MjSpec as one free body (furniture stands on the floor and can be
pushed), its drawers on slide joints and its doors on hinges.

Frame: an asset's local +x is its front (drawers slide out along +x, handles face +x), y
is its width, z up; `size` is (depth, width, height) in metres; the body origin is the
centre of the box, so an asset on the floor sits at z = size[2] / 2. Angles are radians
(the spec's compiler is told so; MjSpec's default is degrees).

Ranges (units: m, kg/m^3, N s/m, N m s/rad, N, N m, rad):
- every category: size per axis within SIZE_RANGE; density BOX_DENSITY (boxes, cylinders),
  WOOD_DENSITY (furniture panels).
- table: top thickness TABLE_TOP, legs "box" or "cylinder" LEG_WIDTH wide, inset LEG_INSET.
- shelf: board thickness BOARD, n_shelves 1..6 (target +- 1 when spread > 0), back panel.
- cabinet: n_drawers 0..4, n_doors 0..2 (targets +- 1 when spread > 0, at least one part),
  handle "bar" or "knob" at "center" or "top" of drawers and the free "edge" or "top" of
  doors; drawer travel DRAWER_TRAVEL x depth, door range DOOR_RANGE; damping and friction
  loss SLIDE_DAMPING, SLIDE_FRICTION, HINGE_DAMPING, HINGE_FRICTION.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

CATEGORIES = ("box", "cylinder", "table", "shelf", "cabinet")
HANDLE_SHAPES = ("bar", "knob")
DRAWER_HANDLE_PLACES = ("center", "top")
DOOR_HANDLE_PLACES = ("edge", "top")
SIZE_RANGE = (0.04, 3.0)
BOX_DENSITY = (150.0, 600.0)
WOOD_DENSITY = (400.0, 700.0)
TABLE_TOP = (0.02, 0.05)
LEG_WIDTH = (0.03, 0.07)
LEG_INSET = (0.0, 0.08)
BOARD = (0.015, 0.03)
PANEL = (0.015, 0.025)
DRAWER_TRAVEL = (0.55, 0.8)
DOOR_RANGE = (1.4, 1.9)
SLIDE_DAMPING = (1.0, 5.0)
SLIDE_FRICTION = (0.2, 1.0)
HINGE_DAMPING = (0.05, 0.3)
HINGE_FRICTION = (0.02, 0.1)
GAP = 0.003  # clearance between moving fronts
HANDLE_REACH = 0.035  # how far handles stand out of a front
GREY = [0.55, 0.55, 0.58, 1.0]


@dataclass(frozen=True, kw_only=True)
class Asset:
    """One piece of furniture: category, full extents (depth, width, height), parameters."""

    category: str
    size: tuple[float, float, float]
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"category={self.category!r}, expected one of {CATEGORIES}")
        if len(self.size) != 3 or not all(SIZE_RANGE[0] <= s <= SIZE_RANGE[1] for s in self.size):
            raise ValueError(f"size={self.size}, expected 3 extents within {SIZE_RANGE} m")

    def features(self) -> np.ndarray:
        """A descriptor vector for distances between assets of one category: log extents,
        then the category's counts and styles, each scaled to about unit spread."""
        p = self.params
        f = [*np.log(self.size) / 0.15]
        if self.category == "table":
            f += [p["top"] / 0.01, p["leg_width"] / 0.01, float(p["legs"] == "box")]
        elif self.category == "shelf":
            f += [p["n_shelves"], float(p["back"])]
        elif self.category == "cabinet":
            f += [p["n_drawers"], p["n_doors"], float(p["handle"] == "bar")]
            f += [float(p["handle_place"] in ("top",))]
        return np.asarray(f, float)


def _draw(rng: np.random.Generator, bounds: tuple[float, float], spread: float) -> float:
    """Mid-range at spread 0, uniform over `bounds` at spread >= 1, in between otherwise."""
    lo, hi = bounds
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * min(spread, 1.0)
    return float(mid if half == 0 else rng.uniform(mid - half, mid + half))


def _count(rng: np.random.Generator, target: int, lo: int, hi: int, spread: float) -> int:
    step = int(rng.integers(-1, 2)) if spread > 0 else 0
    return int(np.clip(target + step, lo, hi))


def _choice(rng: np.random.Generator, options: tuple[str, ...], spread: float) -> str:
    return options[0] if spread == 0 else str(options[int(rng.integers(len(options)))])


def sample_asset(
    category: str,
    size: tuple[float, float, float],
    targets: dict[str, Any] | None = None,
    *,
    seed: int,
    spread: float = 0.0,
) -> Asset:
    """An asset of `category` near `size` (full extents, m) and descriptor `targets`
    (n_shelves, n_drawers, n_doors, handle), drawn with `seed`; see the module ranges."""
    if category not in CATEGORIES:
        raise ValueError(f"category={category!r}, expected one of {CATEGORIES}")
    if not 0.0 <= spread <= 1.0:
        raise ValueError(f"spread={spread}, expected 0 <= spread <= 1")
    targets = targets or {}
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-spread * 0.5, spread * 0.5, 3) if spread > 0 else np.zeros(3)
    s = np.clip(np.asarray(size, float) * (1 + jitter), *SIZE_RANGE)
    tint = 0.15 * rng.uniform(-1, 1, 3) * min(spread * 4, 1.0)
    p: dict[str, Any] = {}
    if category in ("box", "cylinder"):
        p["density"] = _draw(rng, BOX_DENSITY, spread)
        if category == "cylinder":
            s[0] = s[1] = float(np.mean(s[:2]))
        base = [0.45, 0.55, 0.75] if category == "box" else [0.35, 0.65, 0.45]
    else:
        p["density"] = _draw(rng, WOOD_DENSITY, spread)
        base = [0.62, 0.48, 0.33]
    p["rgba"] = [*np.clip(np.asarray(base) + tint, 0, 1).round(3).tolist(), 1.0]
    if category == "table":
        p["top"] = min(_draw(rng, TABLE_TOP, spread), 0.3 * s[2])
        p["legs"] = _choice(rng, ("box", "cylinder"), spread)
        p["leg_width"] = min(_draw(rng, LEG_WIDTH, spread), 0.2 * min(s[0], s[1]))
        p["leg_inset"] = min(_draw(rng, LEG_INSET, spread), 0.15 * min(s[0], s[1]))
    elif category == "shelf":
        n = int(targets.get("n_shelves", 3))
        p["n_shelves"] = _count(rng, n, 1, 6, spread)
        p["board"] = _draw(rng, BOARD, spread)
        p["back"] = bool(spread == 0 or rng.random() < 0.7)
    elif category == "cabinet":
        n_dr = _count(rng, int(targets.get("n_drawers", 2)), 0, 4, spread)
        n_do = _count(rng, int(targets.get("n_doors", 0)), 0, 2, spread)
        if n_dr + n_do == 0:
            n_dr = 1
        p.update(n_drawers=n_dr, n_doors=n_do, panel=_draw(rng, PANEL, spread))
        p["handle"] = _choice(rng, HANDLE_SHAPES, spread)
        p["handle_place"] = _choice(rng, DRAWER_HANDLE_PLACES, spread)
        p["door_handle_place"] = _choice(rng, DOOR_HANDLE_PLACES, spread)
        p["drawer_travel"] = _draw(rng, DRAWER_TRAVEL, spread)
        p["door_range"] = _draw(rng, DOOR_RANGE, spread)
        p["drawer_share"] = 1.0 if n_do == 0 else (0.0 if n_dr == 0 else 0.25 + 0.12 * n_dr)
        for key, bounds in (
            ("slide_damping", SLIDE_DAMPING),
            ("slide_friction", SLIDE_FRICTION),
            ("hinge_damping", HINGE_DAMPING),
            ("hinge_friction", HINGE_FRICTION),
        ):
            p[key] = _draw(rng, bounds, spread)
    p = {k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()}
    return Asset(category=category, size=tuple(round(float(x), 4) for x in s), params=p)


# --- writing assets into a spec ----------------------------------------------------------


def yaw_quat(yaw: float) -> list[float]:
    """The (w, x, y, z) quaternion of a rotation by `yaw` rad about z."""
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _box(body: mujoco.MjsBody, name: str, half, pos, rgba, density: float) -> None:
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[float(h) for h in half],
        pos=[float(x) for x in pos],
        rgba=list(rgba),
        density=density,
        friction=[0.8, 0.005, 0.0001],
    )


def add_asset(
    parent: mujoco.MjsBody,
    asset: Asset,
    name: str,
    pos: tuple[float, float, float],
    yaw: float,
    *,
    degree: bool = False,
) -> mujoco.MjsBody:
    """Write `asset` under `parent` as a free body `name` at `pos` (the box centre) turned
    by `yaw` rad; names of its geoms and joints start with `name/`. `degree` must match
    the spec's compiler (joint ranges are written in its unit)."""
    body = parent.add_body(name=name, pos=[float(x) for x in pos], quat=yaw_quat(yaw))
    body.add_freejoint(name=f"{name}/free")
    d, w, h = asset.size
    p, rho, rgba = asset.params, asset.params["density"], asset.params["rgba"]
    n = f"{name}/"
    if asset.category == "box":
        _box(body, n + "box", (d / 2, w / 2, h / 2), (0, 0, 0), rgba, rho)
    elif asset.category == "cylinder":
        body.add_geom(
            name=n + "cylinder",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[d / 2, h / 2, 0],
            rgba=list(rgba),
            density=rho,
            friction=[0.8, 0.005, 0.0001],
        )
    elif asset.category == "table":
        top, lw, inset = p["top"], p["leg_width"], p["leg_inset"]
        _box(body, n + "top", (d / 2, w / 2, top / 2), (0, 0, h / 2 - top / 2), rgba, rho)
        leg_h = h - top
        for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
            at = (sx * (d / 2 - inset - lw / 2), sy * (w / 2 - inset - lw / 2), -top / 2)
            if p["legs"] == "box":
                _box(body, f"{n}leg{i}", (lw / 2, lw / 2, leg_h / 2), at, rgba, rho)
            else:
                body.add_geom(
                    name=f"{n}leg{i}",
                    type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                    size=[lw / 2, leg_h / 2, 0],
                    pos=list(at),
                    rgba=list(rgba),
                    density=rho,
                )
    elif asset.category == "shelf":
        _shelf(body, n, asset)
    else:
        _cabinet(body, n, asset, 180.0 / math.pi if degree else 1.0)
    return body


def _shelf(body: mujoco.MjsBody, n: str, asset: Asset) -> None:
    d, w, h = asset.size
    p, rho, rgba = asset.params, asset.params["density"], asset.params["rgba"]
    t = p["board"]
    for side, sy in (("left", 1), ("right", -1)):
        _box(body, n + side, (d / 2, t / 2, h / 2), (0, sy * (w / 2 - t / 2), 0), rgba, rho)
    if p["back"]:
        _box(body, n + "back", (t / 2, w / 2 - t, h / 2), (-d / 2 + t / 2, 0, 0), rgba, rho)
    levels = p["n_shelves"] + 1  # bottom board, shelves, top board
    for i in range(levels + 1):
        z = -h / 2 + t / 2 + i * (h - t) / levels
        _box(body, f"{n}board{i}", (d / 2, w / 2 - t, t / 2), (0, 0, z), rgba, rho)


def _cabinet(body: mujoco.MjsBody, n: str, asset: Asset, ang: float) -> None:
    """Carcass (top, bottom, sides, back), drawers stacked at the top, doors below."""
    d, w, h = asset.size
    p, rho, rgba = asset.params, asset.params["density"], asset.params["rgba"]
    t = p["panel"]
    depth = d - t  # the fronts sit in the last panel thickness at +x
    cx = -t / 2  # carcass centre along x
    for side, sy in (("left", 1), ("right", -1)):
        _box(body, n + side, (depth / 2, t / 2, h / 2), (cx, sy * (w / 2 - t / 2), 0), rgba, rho)
    for part, z in (("top", h / 2 - t / 2), ("bottom", -h / 2 + t / 2)):
        _box(body, n + part, (depth / 2, w / 2 - t, t / 2), (cx, 0, z), rgba, rho)
    _box(body, n + "back", (t / 2, w / 2 - t, h / 2 - t), (-d / 2 + t / 2, 0, 0), rgba, rho)
    inner_h, inner_w = h - 2 * t, w - 2 * t
    front_x = d / 2 - t / 2  # centre of a front panel
    dr_h = inner_h * p["drawer_share"]
    z_top = h / 2 - t
    for i in range(p["n_drawers"]):
        fh = dr_h / p["n_drawers"]
        zc = z_top - (i + 0.5) * fh
        _drawer(body, f"{n}drawer{i}", asset, (front_x, 0, zc), inner_w, fh, ang)
    if p["n_doors"]:
        door_h = inner_h - dr_h
        zc = -h / 2 + t + door_h / 2
        dw = inner_w / p["n_doors"]
        for i in range(p["n_doors"]):
            left = i == 0  # door 0 hinges on the +y edge, door 1 on the -y edge
            edge_y = (inner_w / 2) if left else (-inner_w / 2)
            _door(body, f"{n}door{i}", asset, (front_x, edge_y, zc), dw, door_h, left, ang)


def _handle(body: mujoco.MjsBody, name: str, shape: str, at, vertical: bool, size: float) -> None:
    x = at[0] + HANDLE_REACH
    if shape == "knob":
        body.add_geom(
            name=name,
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[0.015, 0, 0],
            pos=[x - 0.012, at[1], at[2]],
            rgba=GREY,
            density=2000.0,
        )
        return
    half = min(0.08, 0.35 * size)
    a = np.array([x - 0.01, at[1], at[2]])
    off = np.array([0, 0, half]) if vertical else np.array([0, half, 0])
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_CAPSULE,
        size=[0.008, 0, 0],
        fromto=[*(a - off), *(a + off)],
        rgba=GREY,
        density=2000.0,
    )
    for k, sgn in enumerate((-1, 1)):
        post = a + sgn * off * 0.9 - np.array([HANDLE_REACH / 2 - 0.005, 0, 0])
        body.add_geom(
            name=f"{name}_post{k}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[HANDLE_REACH / 2 - 0.005, 0.005, 0.005],
            pos=post.tolist(),
            rgba=GREY,
            density=2000.0,
        )


def _drawer(body, name: str, asset: Asset, at, inner_w: float, fh: float, ang: float) -> None:
    d = asset.size[0]
    p, rho, rgba = asset.params, asset.params["density"], asset.params["rgba"]
    t = p["panel"]
    box_d = 0.85 * (d - 2 * t)  # tray depth behind the front
    drawer = body.add_body(name=name, pos=list(at))
    drawer.add_joint(
        name=name,
        type=mujoco.mjtJoint.mjJNT_SLIDE,
        axis=[1, 0, 0],
        range=[0.0, p["drawer_travel"] * box_d],
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        damping=[p["slide_damping"], 0, 0],
        frictionloss=p["slide_friction"],
        armature=0.01,
    )
    fw, fhh = inner_w / 2 - GAP, fh / 2 - GAP
    _box(drawer, name + "/front", (t / 2, fw, fhh), (0, 0, 0), rgba, rho)
    tray_h = max(fhh * 1.4, 0.02)
    tz = -fhh + tray_h / 2
    tc = -t / 2 - box_d / 2
    wall = 0.008
    _box(
        drawer,
        name + "/floor",
        (box_d / 2, fw - wall, wall / 2),
        (tc, 0, -fhh + wall / 2),
        rgba,
        rho,
    )
    for k, sy in enumerate((1, -1)):
        _box(
            drawer,
            f"{name}/wall{k}",
            (box_d / 2, wall / 2, tray_h / 2),
            (tc, sy * (fw - wall / 2), tz),
            rgba,
            rho,
        )  # noqa: E501
    _box(
        drawer,
        name + "/rear",
        (wall / 2, fw - wall, tray_h / 2),
        (tc - box_d / 2, 0, tz),
        rgba,
        rho,
    )
    hz = fhh - min(0.04, 0.4 * fhh) if p["handle_place"] == "top" else 0.0
    _handle(drawer, name + "/handle", p["handle"], (t / 2, 0.0, hz), False, fw)


def _door(body, name: str, asset: Asset, at, dw: float, dh: float, left: bool, ang: float) -> None:
    """A door panel hinged on its outer front edge, so that it opens outward (+x)."""
    p, rho, rgba = asset.params, asset.params["density"], asset.params["rgba"]
    t = p["panel"]
    sy = -1.0 if left else 1.0  # from the hinge towards the free edge
    door = body.add_body(name=name, pos=[at[0] + t / 2, at[1], at[2]])
    door.add_joint(
        name=name,
        type=mujoco.mjtJoint.mjJNT_HINGE,
        axis=[0, 0, 1 if left else -1],
        range=[0.0, p["door_range"] * ang],
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        damping=[p["hinge_damping"], 0, 0],
        frictionloss=p["hinge_friction"],
        armature=0.01,
    )
    half_w, half_h = dw / 2 - GAP, dh / 2 - GAP
    _box(door, name + "/panel", (t / 2, half_w, half_h), (-t / 2, sy * dw / 2, 0), rgba, rho)
    hy = sy * (dw - min(0.05, 0.25 * dw))
    hz = half_h - min(0.06, 0.3 * half_h) if p["door_handle_place"] == "top" else 0.0
    _handle(door, name + "/handle", p["handle"], (0.0, hy, hz), True, half_h)
