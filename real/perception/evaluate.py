"""The scan -> extraction -> twin + cousins pipeline, measured on generated rooms.

`scan_and_extract(mjcf, out)` is the perception step on its own: render a scan of a MuJoCo
scene and extract a SceneDescription from it. `evaluate_room(desc, out)` builds a room of
known layout (`random_room` in xembody.sim.scenes.random_room; the twin of the drawn
description, so the truth is the placed assets), scans and extracts it, scores the
extraction against the truth (accuracy.py), then builds the twin and `n_cousins` cousins of
the *extracted* description with their physical checks. `evaluate` runs K rooms and
aggregates them; `results_section` writes its "Digital cousins" section of docs/RESULTS.md
and `write_results_section` puts a section into a markdown file (the experiment's too).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from xembody.sim.scenes.cousins import SceneRefused, make_cousins, make_twin
from xembody.sim.scenes.description import SceneDescription
from xembody.sim.scenes.random_room import random_room

from .accuracy import TOLERANCES, extraction_accuracy, scene_truth
from .extract import extract_scan
from .scan import ScanConfig, render_scan


def scan_and_extract(mjcf: str | Path, out: str | Path, *, views: int = 1, width: int = 320,
                     height: int = 240) -> SceneDescription:  # fmt: skip
    """Render `views` RGB-D views of the scene in file `mjcf` into `out`/scan, extract them,
    write the description to `out`/scene.json and return it."""
    out = Path(out)
    scan = render_scan(mjcf, out / "scan", ScanConfig(views=views, width=width, height=height))
    est, _, _ = extract_scan(scan)
    est.to_json(out / "scene.json")
    return est


def evaluate_room(desc: SceneDescription, out: Path, *, seed: int = 0, views: int = 1,
                  n_cousins: int = 2, width: int = 320, height: int = 240) -> dict:  # fmt: skip
    """One room: build, scan (`views` views), extract, score; twin + cousins of the
    extracted description with their checks. Returns accuracy and check results."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    room = make_twin(desc, seed=seed).scene
    truth = scene_truth(room)
    mjcf = out / "room.xml"
    mjcf.write_text(room.mjcf())
    est = scan_and_extract(mjcf, out, views=views, width=width, height=height)
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
