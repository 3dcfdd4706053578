"""Procedural furniture written with MjSpec: boxes, cylinders, tables, shelves, cabinets.

An `Asset` is data: a category, its full extents and the parameters a generator sampled.
`sample_asset(category, size, targets, seed, spread)` draws one; `spread=0` gives the best
estimate (the size and descriptor targets as given, mid-range styles), larger spreads
draw sizes within `size * (1 +- spread / 2)` and styles across the ranges below. `add_asset`
writes an asset into any MjSpec as one free body (furniture stands on the floor and can be
pushed), a cabinet's drawers on slide joints and its doors on hinges (cabinet.py).
Each category is one `Category` entry in CATEGORY_SPECS (parameters, builder, features).

Frame: an asset's local +x is its front (drawers slide out along +x, handles face +x), y
is its width, z up; `size` is (depth, width, height) in metres; the body origin is the
centre of the box, so an asset on the floor sits at z = size[2] / 2. Angles are radians
(the spec's compiler is told so; MjSpec's default is degrees).

Ranges (m, kg/m^3):
- every category: size per axis within SIZE_RANGE; density BOX_DENSITY (boxes, cylinders),
  WOOD_DENSITY (furniture panels).
- table: top thickness TABLE_TOP, legs "box" or "cylinder" LEG_WIDTH wide, inset LEG_INSET.
- shelf: board thickness BOARD, n_shelves 1..6 (target +- 1 when spread > 0), back panel.
- cabinet: see cabinet.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from .cabinet import build_cabinet, cabinet_features, cabinet_params
from .parts import add_box, add_cylinder, choice, count, draw, yaw_quat

SIZE_RANGE = (0.04, 3.0)
BOX_DENSITY = (150.0, 600.0)
WOOD_DENSITY = (400.0, 700.0)
TABLE_TOP = (0.02, 0.05)
LEG_WIDTH = (0.03, 0.07)
LEG_INSET = (0.0, 0.08)
BOARD = (0.015, 0.03)


def _no_params(rng, size, targets, spread) -> dict[str, Any]:
    return {}


def _table_params(rng, s, targets, spread) -> dict[str, Any]:
    return {
        "top": min(draw(rng, TABLE_TOP, spread), 0.3 * s[2]),
        "legs": choice(rng, ("box", "cylinder"), spread),
        "leg_width": min(draw(rng, LEG_WIDTH, spread), 0.2 * min(s[0], s[1])),
        "leg_inset": min(draw(rng, LEG_INSET, spread), 0.15 * min(s[0], s[1])),
    }


def _shelf_params(rng, s, targets, spread) -> dict[str, Any]:
    return {
        "n_shelves": count(rng, int(targets.get("n_shelves", 3)), 1, 6, spread),
        "board": draw(rng, BOARD, spread),
        "back": bool(spread == 0 or rng.random() < 0.7),
    }


def _build_box(body, n: str, size, p: dict, ang: float) -> None:
    d, w, h = size
    add_box(body, n + "box", (d / 2, w / 2, h / 2), (0, 0, 0), p["rgba"], p["density"])


def _build_cylinder(body, n: str, size, p: dict, ang: float) -> None:
    add_cylinder(body, n + "cylinder", size[0] / 2, size[2] / 2, (0, 0, 0), p["rgba"], p["density"])


def _build_table(body, n: str, size, p: dict, ang: float) -> None:
    d, w, h = size
    rho, rgba = p["density"], p["rgba"]
    top, lw, inset = p["top"], p["leg_width"], p["leg_inset"]
    add_box(body, n + "top", (d / 2, w / 2, top / 2), (0, 0, h / 2 - top / 2), rgba, rho)
    leg_h = h - top
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        at = (sx * (d / 2 - inset - lw / 2), sy * (w / 2 - inset - lw / 2), -top / 2)
        if p["legs"] == "box":
            add_box(body, f"{n}leg{i}", (lw / 2, lw / 2, leg_h / 2), at, rgba, rho)
        else:
            add_cylinder(body, f"{n}leg{i}", lw / 2, leg_h / 2, at, rgba, rho)


def _build_shelf(body, n: str, size, p: dict, ang: float) -> None:
    d, w, h = size
    rho, rgba = p["density"], p["rgba"]
    t = p["board"]
    for side, sy in (("left", 1), ("right", -1)):
        add_box(body, n + side, (d / 2, t / 2, h / 2), (0, sy * (w / 2 - t / 2), 0), rgba, rho)
    if p["back"]:
        add_box(body, n + "back", (t / 2, w / 2 - t, h / 2), (-d / 2 + t / 2, 0, 0), rgba, rho)
    levels = p["n_shelves"] + 1  # bottom board, shelves, top board
    for i in range(levels + 1):
        z = -h / 2 + t / 2 + i * (h - t) / levels
        add_box(body, f"{n}board{i}", (d / 2, w / 2 - t, t / 2), (0, 0, z), rgba, rho)


@dataclass(frozen=True)
class Category:
    """How one category is drawn (`params`), written (`build`) and compared (`features`)."""

    params: Callable[..., dict[str, Any]]
    build: Callable[..., None]
    features: Callable[[dict], list[float]]
    colour: tuple[float, float, float]
    density: tuple[float, float]


CATEGORY_SPECS: dict[str, Category] = {
    "box": Category(_no_params, _build_box, lambda p: [], (0.45, 0.55, 0.75), BOX_DENSITY),
    "cylinder": Category(
        _no_params, _build_cylinder, lambda p: [], (0.35, 0.65, 0.45), BOX_DENSITY
    ),
    "table": Category(
        _table_params,
        _build_table,
        lambda p: [p["top"] / 0.01, p["leg_width"] / 0.01, float(p["legs"] == "box")],
        (0.62, 0.48, 0.33),
        WOOD_DENSITY,
    ),
    "shelf": Category(
        _shelf_params,
        _build_shelf,
        lambda p: [p["n_shelves"], float(p["back"])],
        (0.62, 0.48, 0.33),
        WOOD_DENSITY,
    ),
    "cabinet": Category(
        cabinet_params, build_cabinet, cabinet_features, (0.62, 0.48, 0.33), WOOD_DENSITY
    ),
}
CATEGORIES = tuple(CATEGORY_SPECS)


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
        """A descriptor vector for distances between assets of one category: log extents
        scaled by 0.15, then the category's counts and styles, each about unit spread."""
        extra = CATEGORY_SPECS[self.category].features(self.params)
        return np.asarray([*np.log(self.size) / 0.15, *extra], float)


def sample_asset(
    category: str,
    size: tuple[float, float, float],
    targets: dict[str, Any] | None = None,
    *,
    seed: int,
    spread: float = 0.0,
) -> Asset:
    """An asset of `category` near `size` (full extents, m) and descriptor `targets`
    (n_shelves, n_drawers, n_doors), drawn with `seed`; see the module ranges."""
    if category not in CATEGORIES:
        raise ValueError(f"category={category!r}, expected one of {CATEGORIES}")
    if not 0.0 <= spread <= 1.0:
        raise ValueError(f"spread={spread}, expected 0 <= spread <= 1")
    spec = CATEGORY_SPECS[category]
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-spread * 0.5, spread * 0.5, 3) if spread > 0 else np.zeros(3)
    s = np.clip(np.asarray(size, float) * (1 + jitter), *SIZE_RANGE)
    if category == "cylinder":  # round: one diameter
        s[0] = s[1] = float(np.mean(s[:2]))
    tint = 0.15 * rng.uniform(-1, 1, 3) * min(spread * 4, 1.0)
    p: dict[str, Any] = {"density": draw(rng, spec.density, spread)}
    p["rgba"] = [*np.clip(np.asarray(spec.colour) + tint, 0, 1).round(3).tolist(), 1.0]
    p.update(spec.params(rng, s, targets or {}, spread))
    p = {k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()}
    return Asset(category=category, size=tuple(round(float(x), 4) for x in s), params=p)


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
    ang = 180.0 / math.pi if degree else 1.0
    CATEGORY_SPECS[asset.category].build(body, f"{name}/", asset.size, asset.params, ang)
    return body
