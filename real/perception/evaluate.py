"""Evaluation of the scan -> extraction -> twin + cousins pipeline on generated rooms.

`random_room(rng)` draws a SceneDescription with known layout: a back wall (y = 2) and a
left wall (x = -2), one or two cabinets against the back wall (drawers or doors), maybe a
shelf against the left wall, a table (maybe with a box on it), and one to two boxes or
cylinders on the floor, spaced so that footprints never touch. `evaluate_room` builds the
room from the asset library (the twin of the drawn description, so truth is the placed
assets), renders a scan, extracts it, scores the extraction against the truth, then builds
the twin and `n_cousins` cousins of the *extracted* description with their physical checks.
`evaluate` runs K rooms and aggregates them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from .accuracy import TOLERANCES, extraction_accuracy, scene_truth
from .cousins import SceneRefused, make_cousins, make_twin
from .description import ObjectEstimate, SceneDescription, WallPlane
from .scan import ScanConfig, render_scan

BACK_Y, LEFT_X = 2.0, -2.0
WALL_GAP = 0.06  # m between a wall's inner face and the back of the furniture
SPACING = 0.15  # m kept free between footprints


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _radius(size) -> float:
    return 0.5 * math.hypot(size[0], size[1])


def _free(xy, r: float, taken: list) -> bool:
    return all(math.dist(xy, q) >= r + rq + SPACING for q, rq in taken)


def random_room(rng: np.random.Generator) -> SceneDescription:
    """A random room of 3 to 7 objects (see the module docstring); the same generator
    state gives the same room."""
    walls = (
        WallPlane(point=(0, BACK_Y, 0), normal=(0, -1, 0), extent=(4, 2.5)),
        WallPlane(point=(LEFT_X, 0, 0), normal=(1, 0, 0), extent=(4, 2.5)),
    )
    objs: list[ObjectEstimate] = []
    taken: list = []
    floor = "on_floor"

    def add(oid, category, xy, z, size, yaw, relations, **desc) -> None:
        objs.append(ObjectEstimate(id=oid, category=category, center=(*xy, z), size=size,
                                   yaw=yaw, relations=relations, descriptors=desc))  # fmt: skip
        taken.append((tuple(xy), _radius(size)))

    # cabinets along the back wall, left to right, front facing -y
    x = _u(rng, -1.5, -1.1)
    for i in range(int(rng.integers(1, 3))):
        size = (_u(rng, 0.35, 0.5), _u(rng, 0.5, 0.8), _u(rng, 0.6, 1.0))
        if x + size[1] > 1.6:
            break
        drawers = int(rng.integers(2, 5)) if rng.random() < 0.5 else 0
        doors = 0 if drawers else int(rng.integers(1, 3))
        xy = (x + size[1] / 2, BACK_Y - WALL_GAP - size[0] / 2)
        add(f"cabinet{i}", "cabinet", xy, size[2] / 2, size, -math.pi / 2,
            [floor, "against_wall:0"], n_drawers=drawers, n_doors=doors, handle=True)  # fmt: skip
        x += size[1] + _u(rng, 0.2, 0.4)
    if rng.random() < 0.7:  # shelf on the left wall, front facing +x
        size = (_u(rng, 0.3, 0.4), _u(rng, 0.6, 0.9), _u(rng, 1.0, 1.4))
        xy = (LEFT_X + WALL_GAP + size[0] / 2, _u(rng, -0.6, 0.6))
        if _free(xy, _radius(size), taken):
            add("shelf", "shelf", xy, size[2] / 2, size, 0.0,
                [floor, "against_wall:1"], n_shelves=int(rng.integers(1, 4)))  # fmt: skip
    free = [("table", "table")] + [
        (f"floor{i}", "box" if rng.random() < 0.6 else "cylinder")
        for i in range(int(rng.integers(1, 3)))
    ]
    for oid, category in free:
        if category == "table":
            size = (_u(rng, 0.5, 0.8), _u(rng, 0.8, 1.2), _u(rng, 0.6, 0.8))
        elif category == "box":
            size = (_u(rng, 0.25, 0.45), _u(rng, 0.3, 0.5), _u(rng, 0.2, 0.4))
        else:
            dia = _u(rng, 0.2, 0.35)
            size = (dia, dia, _u(rng, 0.3, 0.6))
        yaw = 0.0 if category == "cylinder" else _u(rng, -0.7, 0.7)
        for _ in range(50):
            xy = (_u(rng, -1.2, 1.3), _u(rng, -0.9, 1.0))
            if _free(xy, _radius(size), taken):
                break
        else:
            continue
        add(oid, category, xy, size[2] / 2, size, yaw, [floor],
            **({"cylinder_fit": 0.0} if category == "cylinder" else {}))  # fmt: skip
        if category == "table" and rng.random() < 0.7:
            top = (_u(rng, 0.15, 0.3), _u(rng, 0.2, 0.35), _u(rng, 0.1, 0.2))
            objs.append(
                ObjectEstimate(id="box_on_table", category="box",
                               center=(*xy, size[2] + top[2] / 2), size=top,
                               yaw=yaw + _u(rng, -0.4, 0.4), relations=["on_top_of:table"])
            )  # fmt: skip
    return SceneDescription(walls=walls, objects=tuple(objs))


def evaluate_room(desc: SceneDescription, out: Path, *, seed: int = 0, views: int = 1,
                  n_cousins: int = 2, width: int = 320, height: int = 240) -> dict:  # fmt: skip
    """One room: build, scan (`views` views), extract, score; twin + cousins of the
    extracted description with their checks. Returns accuracy and check results."""
    from .extract import extract_scan

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    room = make_twin(desc, seed=seed).scene
    truth = scene_truth(room)
    mjcf = out / "room.xml"
    mjcf.write_text(room.mjcf())
    scan = render_scan(mjcf, out / "scan", ScanConfig(views=views, width=width, height=height))
    est, _, _ = extract_scan(scan)
    est.to_json(out / "scene.json")
    acc = extraction_accuracy(truth, est)
    scenes, refused = [], []
    if est.objects:
        for build in (lambda: [make_twin(est, seed=seed)],
                      lambda: make_cousins(est, n_cousins, seed=seed)):  # fmt: skip
            try:
                scenes += build()
            except SceneRefused as err:
                refused.append(str(err))
    else:
        refused.append("extraction found no objects")
    acc["scenes_built"] = len(scenes)
    acc["scenes_passing"] = sum(r.report.ok for r in scenes)
    acc["scenes_expected"] = 1 + n_cousins
    acc["refused"] = refused
    return acc


def _finite(values) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def evaluate(k: int = 4, *, seed: int = 0, out: str | Path = "out/cousins_eval",
             views: int = 1, n_cousins: int = 2, width: int = 320,
             height: int = 240) -> dict:  # fmt: skip
    """K generated rooms through the pipeline; per-room accuracies and the aggregate
    (means over rooms, worst over objects, pass flags against TOLERANCES, % of generated
    scenes passing the physical checks)."""
    if k < 1:
        raise ValueError(f"--scenes {k}: expected at least 1 room")
    if views < 1 or n_cousins < 1:
        raise ValueError(f"views={views}, cousins={n_cousins}: expected both at least 1")
    rng = np.random.default_rng(seed)
    rooms, t0 = [], time.perf_counter()
    for i in range(k):
        desc = random_room(rng)
        acc = evaluate_room(desc, Path(out) / f"room_{i:02d}", seed=seed, views=views,
                            n_cousins=n_cousins, width=width, height=height)  # fmt: skip
        rooms.append(acc)
    rows = [r for acc in rooms for r in acc["objects"]]
    n_obj = len(rows)
    centre = [r["center_m"] for r in rows]
    yaw = [r["yaw_rad"] for r in rows]
    iou = [r["iou"] for r in rows]
    expected = sum(a["scenes_expected"] for a in rooms)
    passing = sum(a["scenes_passing"] for a in rooms)
    summary = dict(
        floor_normal_deg_max=max(a["floor_normal_deg"] for a in rooms),
        category_accuracy=sum(r["found"] == r["category"] for r in rows) / n_obj,
        center_error_cm_mean=100 * float(np.mean(_finite(centre) or [math.inf])),
        center_error_cm_max=100 * max(centre),
        yaw_error_rad_mean=float(np.mean(_finite(yaw) or [math.inf])),
        yaw_error_rad_max=max(yaw),
        iou_mean=float(np.mean(iou)),
        iou_min=float(min(iou)),
        objects=n_obj,
        objects_matched=sum(r["found"] is not None for r in rows),
        scenes_generated=expected,
        scenes_passing_checks=passing,
        scenes_passing_pct=100.0 * passing / expected,
    )
    tol = TOLERANCES
    summary["passed"] = dict(
        floor_normal=summary["floor_normal_deg_max"] < tol["floor_normal_deg"],
        category=summary["category_accuracy"] >= tol["category"],
        center=summary["center_error_cm_max"] <= 100 * tol["center_m"],
        yaw=summary["yaw_error_rad_max"] <= tol["yaw_rad"],
        iou=summary["iou_min"] >= tol["iou"],
        physical_checks=passing == expected,
    )
    config = dict(scenes=k, seed=seed, views=views, cousins=n_cousins, width=width,
                  height=height)  # fmt: skip
    result = dict(config=config, summary=summary, tolerances=dict(tol), rooms=rooms,
                  seconds=round(time.perf_counter() - t0, 1))  # fmt: skip
    return _json_safe(result)


def _json_safe(value):
    """`value` with every non-finite float (an unmatched object's error) as None."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


SECTION = "## Digital cousins"


def results_section(result: dict, command: str) -> str:
    """The "Digital cousins" section of docs/RESULTS.md for an `evaluate` result."""
    tol, cfg = result["tolerances"], result["config"]
    s = {k: (math.inf if v is None else v) for k, v in result["summary"].items()}
    ok = {True: "yes", False: "**no**"}
    p = s["passed"]
    rows = [
        ("floor normal error, worst room (deg)", f"{s['floor_normal_deg_max']:.3f}",
         f"< {tol['floor_normal_deg']:g}", p["floor_normal"]),
        ("category accuracy (all objects)", f"{100 * s['category_accuracy']:.1f} %",
         f">= {100 * tol['category']:g} %", p["category"]),
        ("centre error, mean / worst (cm)",
         f"{s['center_error_cm_mean']:.2f} / {s['center_error_cm_max']:.2f}",
         f"<= {100 * tol['center_m']:g} (worst)", p["center"]),
        ("yaw error, mean / worst (rad)",
         f"{s['yaw_error_rad_mean']:.3f} / {s['yaw_error_rad_max']:.3f}",
         f"<= {tol['yaw_rad']:g} (worst)", p["yaw"]),
        ("box IoU, mean / worst", f"{s['iou_mean']:.3f} / {s['iou_min']:.3f}",
         f">= {tol['iou']:g} (worst)", p["iou"]),
        ("generated scenes passing the physical checks",
         f"{s['scenes_passing_pct']:.0f} % ({s['scenes_passing_checks']}/"
         f"{s['scenes_generated']})", "100 %", p["physical_checks"]),
    ]  # fmt: skip
    table = ["| measure | measured | target | met |", "|---|---:|---|---|"]
    table += [f"| {a} | {b} | {c} | {ok[d]} |" for a, b, c, d in rows]
    misses = []
    for i, room in enumerate(result["rooms"]):
        for r in room["objects"]:
            c, y = (math.inf if r[k] is None else r[k] for k in ("center_m", "yaw_rad"))
            if (r["found"] != r["category"] or c > tol["center_m"] or y > tol["yaw_rad"]
                    or r["iou"] < tol["iou"]):  # fmt: skip
                misses.append(
                    f"room {i} {r['id']} ({r['category']}, found {r['found']}): "
                    f"centre {100 * c:.1f} cm, yaw {y:.3f} rad, IoU {r['iou']:.2f}"
                )
    miss_txt = "; ".join(misses) if misses else "none"
    return (
        f"{SECTION} (issue 10)\n\n"
        f"Command: `{command}` ({result['seconds']:.0f} s on the shared 2-core CPU). "
        f"{cfg['scenes']} generated rooms (seed {cfg['seed']}; {s['objects']} objects, "
        f"{s['objects_matched']} matched), each built from the asset library, scanned from "
        f"{cfg['views']} view(s) at {cfg['width']}x{cfg['height']}, extracted, and scored "
        "against the placed assets; then the twin and "
        f"{cfg['cousins']} cousins of each *extracted* description were built and checked "
        "(no interpenetration, supported, settles, joints sweep).\n\n"
        + "\n".join(table)
        + f"\n\nObjects outside a tolerance: {miss_txt}.\n\n"
        "The policy experiment (training on the twin against 2, 4 and 8 cousins, evaluated "
        "on held-out cousins and a held-out real scene) has its own section, written by "
        "`xembody cousins experiment`.\n"
    )


def write_results_section(section: str, path: str | Path) -> None:
    """Replace the section of `path` titled exactly like `section`'s first line (or append
    it); other sections stay, the policy experiment's "Digital cousins: ..." ones too."""
    title = section.split("\n", 1)[0].strip()
    path = Path(path)
    text = path.read_text() if path.exists() else "# Results\n"
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == title), None)
    if start is None:
        path.write_text(text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), None)
    tail = "\n".join(lines[end:]) if end is not None else ""
    head = "\n".join(lines[:start])
    new = head + "\n" + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    path.write_text(new.rstrip("\n") + "\n")
