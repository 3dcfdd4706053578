"""Per-tick cost of the safety node's checks on a 29-joint body, before and after them.

    .venv/bin/python benchmarks/safety_checks.py                 # prints JSON
    .venv/bin/python benchmarks/safety_checks.py --ticks 20000 --paced-seconds 20

In one process, no ROS: the work the safety node does per control period, for one joint
state and one command, timed around the whole of it in wall time (`perf_counter_ns`) and in
this thread's CPU time (`thread_time_ns`: on a shared machine the wall-time p99 is mostly
the scheduler handing the core to another process mid-tick; CPU time leaves that out, and
keeps what a cold cache costs):

- new (this tree, `xembody.real.validate` / `xembody.real.safety`): `JointStateCheck`
  (merge by name, ahead-of-clock and order checks, velocity), `SafetyFilter.state`
  (plausibility), `RateGates` (per publisher), `check_vector`, `SafetyFilter.command`,
  `SafetyFilter.output` (effort, range, then the rate bound);
- old (commit 17bb18e, before these checks): the same calls on the modules as they were,
  written from `git show` into a temporary folder and imported by path.

The two are interleaved tick by tick (the order swapped every tick) on the same inputs, so
load on the machine falls on both alike. Three pacings: back to back (warm caches), and a
2 ms (500 Hz) or 20 ms (50 Hz) sleep before every tick: a 50 Hz tick starts cold, and that
is what the node meets (docs/BENCHMARKS.md, cold_cache.py). A third variant times the new
code on the message joint_state_broadcaster publishes for position-only hardware (effort
NaN, no velocity: the filtered difference runs), which the old code refused.

The 29-joint body (`write_body29`) is a humanoid-like MJCF tree, written to a folder and
loaded with `xembody.sim.bodies.loader`; `benchmarks/ros_latency.py --node safety` uses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

import mujoco
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD = "17bb18e"  # the commit before the checks
# (name, axis, range rad, effort N m, kp, velocity limit rad/s), 29 hinges in all:
# legs 2 x 6, waist 3, arms 2 x 7 (the layout of a Unitree G1-class humanoid)
LEG = [
    ("hip_pitch", [0, 1, 0], (-2.5, 2.8), 88.0, 150.0, 32.0),
    ("hip_roll", [1, 0, 0], (-0.5, 2.9), 88.0, 150.0, 32.0),
    ("hip_yaw", [0, 0, 1], (-2.7, 2.7), 88.0, 150.0, 32.0),
    ("knee", [0, 1, 0], (-0.1, 2.9), 139.0, 200.0, 20.0),
    ("ankle_pitch", [0, 1, 0], (-0.87, 0.52), 50.0, 40.0, 37.0),
    ("ankle_roll", [1, 0, 0], (-0.26, 0.26), 50.0, 40.0, 37.0),
]
WAIST = [
    ("waist_yaw", [0, 0, 1], (-2.6, 2.6), 88.0, 200.0, 32.0),
    ("waist_roll", [1, 0, 0], (-0.52, 0.52), 50.0, 200.0, 37.0),
    ("waist_pitch", [0, 1, 0], (-0.52, 0.52), 50.0, 200.0, 37.0),
]
ARM = [
    ("shoulder_pitch", [0, 1, 0], (-3.1, 2.6), 25.0, 40.0, 37.0),
    ("shoulder_roll", [1, 0, 0], (-1.6, 2.2), 25.0, 40.0, 37.0),
    ("shoulder_yaw", [0, 0, 1], (-2.6, 2.6), 25.0, 40.0, 37.0),
    ("elbow", [0, 1, 0], (-1.0, 2.1), 25.0, 40.0, 37.0),
    ("wrist_roll", [1, 0, 0], (-2.0, 2.0), 25.0, 20.0, 37.0),
    ("wrist_pitch", [0, 1, 0], (-1.6, 1.6), 5.0, 20.0, 22.0),
    ("wrist_yaw", [0, 0, 1], (-1.6, 1.6), 5.0, 20.0, 22.0),
]


def humanoid29_mjcf() -> str:
    """A 29-hinge humanoid-like MJCF: floating pelvis, two 6-joint legs hanging down, a
    3-joint waist up to a torso that carries two 7-joint arms; each hinge has a range and an
    `actuatorfrcrange`, each position actuator a kp, kv, ctrlrange and forcerange."""
    spec = mujoco.MjSpec()
    spec.modelname = "humanoid29"
    spec.compiler.degree = False  # ranges in rad
    pelvis = spec.worldbody.add_body(name="pelvis", pos=[0, 0, 0.9])
    pelvis.add_freejoint(name="root")
    pelvis.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.08, 0.12, 0.06], mass=6.0)

    def chain(parent, prefix: str, joints: list, pos: list, link: float):
        body = parent
        for k, (name, axis, (lo, hi), effort, kp, _) in enumerate(joints):
            full = prefix + name
            body = body.add_body(name=f"{full}_link", pos=pos if k == 0 else [0, 0, link])
            body.add_joint(
                name=full, type=mujoco.mjtJoint.mjJNT_HINGE, axis=axis, range=[lo, hi],
                limited=mujoco.mjtLimited.mjLIMITED_TRUE, actfrcrange=[-effort, effort],
                actfrclimited=mujoco.mjtLimited.mjLIMITED_TRUE, damping=0.5, armature=0.01,
            )  # fmt: skip
            body.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[0, 0, 0, 0, 0, link],
                          size=[0.03, 0, 0], mass=0.8)  # fmt: skip
            act = spec.add_actuator(name=full, target=full, ctrlrange=[lo, hi],
                                    forcerange=[-effort, effort])  # fmt: skip
            act.trntype = mujoco.mjtTrn.mjTRN_JOINT
            act.set_to_position(kp=kp, kv=0.05 * kp)
            act.ctrllimited = act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        return body

    for side, y in (("left_", 0.1), ("right_", -0.1)):
        chain(pelvis, side, LEG, [0, y, -0.05], -0.12)
    torso = chain(pelvis, "", WAIST, [0, 0, 0.05], 0.08)
    torso.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.07, 0.12, 0.15], pos=[0, 0, 0.2],
                   mass=8.0)  # fmt: skip
    for side, y in (("left_", 0.18), ("right_", -0.18)):
        chain(torso, side, ARM, [0, y, 0.3], -0.1)
    return spec.to_xml()


def write_body29(folder: str | Path) -> tuple[Path, dict]:
    """Write the 29-joint MJCF into `folder`, load it with the project's file loader and
    write the loaded body (MJCF + `.json` facts, `Embodiment.write`) beside it; returns the
    path a node takes as `body:=` and notes on what the loader did."""
    from xembody.sim.bodies.loader import load_body

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mjcf = folder / "humanoid29.xml"
    mjcf.write_text(humanoid29_mjcf())
    emb = load_body(mjcf)
    if len(emb.joints) != 29:
        raise RuntimeError(f"{mjcf}: loaded {len(emb.joints)} joints, expected 29")
    vmax = {f"{p}{j[0]}": j[5] for p in ("left_", "right_") for j in LEG + ARM}
    vmax.update({j[0]: j[5] for j in WAIST})
    loaded = [j.velocity_limit for j in emb.joints]
    notes = {"file": str(mjcf), "joints": len(emb.joints),
             "velocity_limits_from_loader_finite": bool(np.isfinite(loaded).all())}  # fmt: skip
    if not np.isfinite(loaded).all():  # MJCF has no velocity limit: the loader leaves inf
        joints = tuple(dataclasses.replace(j, velocity_limit=vmax[j.name]) for j in emb.joints)
        emb = dataclasses.replace(emb, joints=joints)
        notes["velocity_limits"] = "set from the table in benchmarks/safety_checks.py"
    return emb.write(folder / "humanoid29_body.xml"), notes


def load_old(folder: Path) -> tuple:
    """real/validate.py and real/safety.py as of OLD, imported by path (module objects)."""
    mods = []
    for name in ("validate", "safety"):
        src = subprocess.run(["git", "show", f"{OLD}:real/{name}.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        path = folder / f"old_{name}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(f"old_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        mods.append(mod)
    return tuple(mods)


def make_tick(emb, modules: tuple | None = None, variant: str = "full"):
    """A closure doing one control period's safety work (returns the output), on the
    (validate, safety) `modules` of OLD, or this tree's when None; `variant`: "full" (a
    JointState with velocity and effort) or "broadcaster" (effort NaN, no velocity)."""
    old = modules is not None
    if old:
        validate, safety = modules
    else:
        from xembody.real import safety, validate
    names = list(emb.joint_names)
    n = len(names)
    check = validate.JointStateCheck(names)
    filt = safety.SafetyFilter(
        safety.SafetyConfig(ramp_s=0.0), safety.JointLimits.from_embodiment(emb)
    )
    rng = np.random.default_rng(0)
    q0 = emb.default_pose
    states = [array("d", (q0 + rng.normal(0, 0.002, n)).tolist()) for _ in range(64)]
    commands = [array("d", (q0 + rng.normal(0, 0.002, n)).tolist()) for _ in range(64)]
    zeros = array("d", bytes(8 * n))
    nan = array("d", [float("nan")] * n)
    velocity, effort = (array("d"), nan) if variant == "broadcaster" else (zeros, zeros)
    gid = b"\x01" * 16
    if old:
        gate = validate.RateGate(100000.0, burst=10, what="commands")
    else:
        gate = validate.RateGates(100000.0, burst=10, what="commands")
    clock = {"k": 0, "stamp": 1000.0}

    def tick_new() -> np.ndarray:
        k = clock["k"] = clock["k"] + 1
        clock["stamp"] += 0.002
        now = time.monotonic()
        q, dq, _ = check(names, states[k & 63], velocity, effort, clock["stamp"],
                         now=clock["stamp"] + 1e-4, received=now)  # fmt: skip
        filt.state(check.oldest, q, dq)
        gate(now, gid)
        values = validate.check_vector(commands[k & 63], n, "joint command")
        filt.command(now, values)
        return filt.output(time.monotonic())

    def tick_old() -> np.ndarray:
        k = clock["k"] = clock["k"] + 1
        clock["stamp"] += 0.002
        now = time.monotonic()
        q, dq, _ = check(names, states[k & 63], velocity, effort, clock["stamp"])
        filt.state(now, q, dq)
        gate(now)
        values = validate.check_vector(commands[k & 63], n, "joint command")
        filt.command(now, values)
        return filt.output(time.monotonic())

    tick = tick_old if old else tick_new
    tick.filter = filt  # for the mode after the run: "active", or the ticks were not alike
    return tick


def run(ticks: dict, count: int, gap_s: float) -> dict[str, dict[str, np.ndarray]]:
    """Time each closure `count` times, interleaved (order swapped every round): wall time
    (`perf_counter_ns`) and this thread's CPU time (`thread_time_ns`, which leaves out the
    time the thread was descheduled), ns."""
    keys = list(ticks)
    out = {k: {"wall": np.empty(count), "cpu": np.empty(count)} for k in keys}
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    for i in range(count):
        order = keys if i % 2 == 0 else keys[::-1]
        for key in order:
            if gap_s:
                time.sleep(gap_s)
            fn = ticks[key]
            c0, w0 = cpu(), wall()
            fn()
            w1, c1 = wall(), cpu()
            out[key]["wall"][i], out[key]["cpu"][i] = w1 - w0, c1 - c0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20000, help="back-to-back ticks per version")
    parser.add_argument("--paced-seconds", type=float, default=10.0,
                        help="seconds for each paced run (500 Hz and 50 Hz)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xembody-safety-") as tmp:
        old = load_old(Path(tmp))
        body_path, notes = write_body29(Path(tmp) / "body")
        from xembody.sim.bodies.embodiment import Embodiment

        emb = Embodiment.read(body_path)
    load_before = os.getloadavg()
    results = []
    for label, gap, count in (
        ("back to back", 0.0, args.ticks),
        ("500 Hz (2 ms gap)", 0.002, int(args.paced_seconds / 0.0021 / 3)),
        ("50 Hz (20 ms gap)", 0.020, int(args.paced_seconds / 0.0201 / 3)),
    ):
        ticks = {"old": make_tick(emb, old), "new": make_tick(emb),
                 "new, broadcaster message": make_tick(emb, variant="broadcaster")}  # fmt: skip
        for fn in ticks.values():  # warm-up: first state, first command, past the start
            for _ in range(50):
                fn()
        times = run(ticks, count, gap)
        row = {"pacing": label, "ticks_each": count}
        for key, clocks in times.items():
            row[key] = {"mode_after": ticks[key].filter.mode}
            for name, ns in clocks.items():
                us = ns / 1e3
                row[key][name] = {"p50_us": round(float(np.percentile(us, 50)), 2),
                                  "p99_us": round(float(np.percentile(us, 99)), 2),
                                  "max_us": round(float(us.max()), 1)}  # fmt: skip
        for name in ("wall", "cpu"):
            new, old_ = row["new"][name], row["old"][name]
            row[f"new/old {name}"] = {k: round(new[k] / old_[k], 3) for k in ("p50_us", "p99_us")}
            row[f"new-old {name}"] = {k: round(new[k] - old_[k], 2) for k in ("p50_us", "p99_us")}
        row["load_avg_after"] = os.getloadavg()
        results.append(row)
    print(json.dumps({
        "benchmark": "safety_checks", "joints": 29, "old": OLD, "body": notes,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_before": load_before},
        "command": " ".join(["benchmarks/safety_checks.py", *sys.argv[1:]]),
        "results": results,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
