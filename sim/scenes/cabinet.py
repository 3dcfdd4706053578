"""Articulated cabinets: a carcass, drawers on slide joints, doors on hinges, handles.

Ranges (m, N s/m, N m s/rad, N, N m, rad): n_drawers 0..4 and n_doors 0..2 (targets +- 1
when spread > 0, at least one part); panels PANEL thick; handle "bar" or "knob" at the
"center" or "top" of drawer fronts and the free "edge" or "top" of doors; drawer travel
DRAWER_TRAVEL x tray depth, door range DOOR_RANGE; damping and friction loss SLIDE_DAMPING,
SLIDE_FRICTION, HINGE_DAMPING, HINGE_FRICTION. Drawers fill the top `drawer_share` of the
inside, doors the rest; door 0 hinges on the +y edge, door 1 on the -y edge, both opening
outwards (+x).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from .parts import GREY, add_box, choice, count, draw

HANDLE_SHAPES = ("bar", "knob")
DRAWER_HANDLE_PLACES = ("center", "top")
DOOR_HANDLE_PLACES = ("edge", "top")
PANEL = (0.015, 0.025)
DRAWER_TRAVEL = (0.55, 0.8)
DOOR_RANGE = (1.4, 1.9)
SLIDE_DAMPING = (1.0, 5.0)
SLIDE_FRICTION = (0.2, 1.0)
HINGE_DAMPING = (0.05, 0.3)
HINGE_FRICTION = (0.02, 0.1)
GAP = 0.003  # clearance between moving fronts
HANDLE_REACH = 0.035  # how far handles stand out of a front


def cabinet_params(rng: np.random.Generator, size, targets: dict, spread: float) -> dict[str, Any]:
    """Counts, styles and joint properties of a cabinet (see the module ranges)."""
    p: dict[str, Any] = {}
    n_dr = count(rng, int(targets.get("n_drawers", 2)), 0, 4, spread)
    n_do = count(rng, int(targets.get("n_doors", 0)), 0, 2, spread)
    if n_dr + n_do == 0:
        n_dr = 1
    p.update(n_drawers=n_dr, n_doors=n_do, panel=draw(rng, PANEL, spread))
    p["handle"] = choice(rng, HANDLE_SHAPES, spread)
    p["handle_place"] = choice(rng, DRAWER_HANDLE_PLACES, spread)
    p["door_handle_place"] = choice(rng, DOOR_HANDLE_PLACES, spread)
    p["drawer_travel"] = draw(rng, DRAWER_TRAVEL, spread)
    p["door_range"] = draw(rng, DOOR_RANGE, spread)
    p["drawer_share"] = 1.0 if n_do == 0 else (0.0 if n_dr == 0 else 0.25 + 0.12 * n_dr)
    for key, bounds in (
        ("slide_damping", SLIDE_DAMPING),
        ("slide_friction", SLIDE_FRICTION),
        ("hinge_damping", HINGE_DAMPING),
        ("hinge_friction", HINGE_FRICTION),
    ):
        p[key] = draw(rng, bounds, spread)
    return p


def cabinet_features(p: dict) -> list[float]:
    return [
        p["n_drawers"],
        p["n_doors"],
        float(p["handle"] == "bar"),
        float(p["handle_place"] == "top"),
    ]


def build_cabinet(body: mujoco.MjsBody, n: str, size, p: dict, ang: float) -> None:
    """Carcass (top, bottom, sides, back), drawers stacked at the top, doors below."""
    d, w, h = size
    rho, rgba = p["density"], p["rgba"]
    t = p["panel"]
    depth = d - t  # the fronts sit in the last panel thickness at +x
    cx = -t / 2  # carcass centre along x
    for side, sy in (("left", 1), ("right", -1)):
        add_box(body, n + side, (depth / 2, t / 2, h / 2), (cx, sy * (w / 2 - t / 2), 0), rgba, rho)
    for part, z in (("top", h / 2 - t / 2), ("bottom", -h / 2 + t / 2)):
        add_box(body, n + part, (depth / 2, w / 2 - t, t / 2), (cx, 0, z), rgba, rho)
    add_box(body, n + "back", (t / 2, w / 2 - t, h / 2 - t), (-d / 2 + t / 2, 0, 0), rgba, rho)
    inner_h, inner_w = h - 2 * t, w - 2 * t
    front_x = d / 2 - t / 2  # centre of a front panel
    dr_h = inner_h * p["drawer_share"]
    z_top = h / 2 - t
    for i in range(p["n_drawers"]):
        fh = dr_h / p["n_drawers"]
        zc = z_top - (i + 0.5) * fh
        _drawer(body, f"{n}drawer{i}", size, p, (front_x, 0, zc), inner_w, fh, ang)
    if p["n_doors"]:
        door_h = inner_h - dr_h
        zc = -h / 2 + t + door_h / 2
        dw = inner_w / p["n_doors"]
        for i in range(p["n_doors"]):
            left = i == 0  # door 0 hinges on the +y edge, door 1 on the -y edge
            edge_y = (inner_w / 2) if left else (-inner_w / 2)
            _door(body, f"{n}door{i}", size, p, (front_x, edge_y, zc), dw, door_h, left, ang)


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


def _drawer(body, name: str, size, p: dict, at, inner_w: float, fh: float, ang: float) -> None:
    d = size[0]
    rho, rgba = p["density"], p["rgba"]
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
    add_box(drawer, name + "/front", (t / 2, fw, fhh), (0, 0, 0), rgba, rho)
    tray_h = max(fhh * 1.4, 0.02)
    tz = -fhh + tray_h / 2
    tc = -t / 2 - box_d / 2
    wall = 0.008
    add_box(
        drawer,
        name + "/floor",
        (box_d / 2, fw - wall, wall / 2),
        (tc, 0, -fhh + wall / 2),
        rgba,
        rho,
    )
    for k, sy in enumerate((1, -1)):
        add_box(
            drawer,
            f"{name}/wall{k}",
            (box_d / 2, wall / 2, tray_h / 2),
            (tc, sy * (fw - wall / 2), tz),
            rgba,
            rho,
        )  # noqa: E501
    add_box(
        drawer,
        name + "/rear",
        (wall / 2, fw - wall, tray_h / 2),
        (tc - box_d / 2, 0, tz),
        rgba,
        rho,
    )
    hz = fhh - min(0.04, 0.4 * fhh) if p["handle_place"] == "top" else 0.0
    _handle(drawer, name + "/handle", p["handle"], (t / 2, 0.0, hz), False, fw)


def _door(body, name: str, size, p: dict, at, dw: float, dh: float, left: bool, ang: float) -> None:
    """A door panel hinged on its outer front edge, so that it opens outward (+x)."""
    rho, rgba = p["density"], p["rgba"]
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
    add_box(door, name + "/panel", (t / 2, half_w, half_h), (-t / 2, sy * dw / 2, 0), rgba, rho)
    hy = sy * (dw - min(0.05, 0.25 * dw))
    hz = half_h - min(0.06, 0.3 * half_h) if p["door_handle_place"] == "top" else 0.0
    _handle(door, name + "/handle", p["handle"], (0.0, hy, hz), True, half_h)
