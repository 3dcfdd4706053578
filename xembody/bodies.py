"""`xembody bodies`: list the body generators, sample a body to MJCF, render a picture, and
check a robot file: what the loader decided (with its evidence) and whether the body holds
its pose or stands on its PD gains (`check`, which also writes the body card)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from pathlib import Path

from xembody.sim import bodies as registry
from xembody.sim.bodies.card import CARD_CLASSES, BodyCard, Gains, write_card
from xembody.sim.bodies.embodiment import Embodiment


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bodies", help="procedural bodies: list, sample, show")
    verbs = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = verbs.add_parser("list", help="body classes and the ranges each generator samples")
    ls.set_defaults(run=run_list)

    sample = verbs.add_parser("sample", help="sample one body and write its MJCF (+ .json facts)")
    _body_args(sample, allow_file=False)
    sample.add_argument("--out", required=True, help="path of the MJCF file to write")
    sample.set_defaults(run=run_sample)

    show = verbs.add_parser("show", help="render a picture of a sampled body or an MJCF/URDF file")
    _body_args(show, allow_file=True)
    show.add_argument("--out", default="body.png", help="PNG to write (default: body.png)")
    show.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    show.add_argument("--height", type=int, default=480, help="image height (default: 480)")
    show.set_defaults(run=run_show)

    check = verbs.add_parser(
        "check",
        help="what a robot file does not say (decided, with evidence) and physical checks",
        description="Load FILE (MJCF, URDF or a body card), print each decision with how it "
        "was made and its evidence, run the physical checks (fixed base: holds the default "
        "pose; floating base: stands on PD) and optionally write the body card. Exit status "
        "1 when a check fails.",
    )
    check.add_argument("file", nargs="?", help="robot file (.urdf, .xml) or body card (.yaml)")
    check.add_argument("--seed", type=int, default=0, help="seed of a generated body (--class)")
    add_card_options(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--write-card", metavar="YAML", help="write the body card to this file")
    check.add_argument("--seconds", type=float, default=2.0, help="check duration (default: 2)")
    check.set_defaults(run=run_check)


def add_card_options(p: argparse.ArgumentParser) -> None:
    """The options that say what a robot file does not (each replaces the card's field)."""
    p.add_argument("--card", help="body card (YAML); default: <robot>.yaml beside the file")
    p.add_argument(
        "--no-card", action="store_true", help="ignore a card beside the file (guesses only)"
    )
    p.add_argument(
        "--class", dest="body_class", help="arm, quadruped, humanoid or wheeled (card: class)"
    )
    p.add_argument("--base", choices=("fixed", "floating"), help="card: base")
    p.add_argument("--ee", metavar="LINK", help="end-effector link or site (card: ee)")
    p.add_argument("--feet", nargs="+", metavar="LINK", help="foot links or sites (card: feet)")
    p.add_argument("--imu", metavar="LINK", help="IMU link or site (card: imu)")
    p.add_argument(
        "--package-path", nargs="+", metavar="DIR", help="folders holding ROS packages (meshes)"
    )


def card_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of `loader.load_report` from `add_card_options`' options."""
    keys = ("card", "body_class", "base", "ee", "feet", "imu", "package_path")
    out = {k: getattr(args, k, None) for k in keys if getattr(args, k, None) is not None}
    if getattr(args, "no_card", False):
        out["find"] = False
    return out


def _body_args(p: argparse.ArgumentParser, allow_file: bool) -> None:
    p.add_argument("--class", dest="body_class", help=f"one of {registry.names()}")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    if allow_file:
        p.add_argument("--file", help="an MJCF (.xml) or URDF (.urdf) file instead of --class")
        for flag, help_ in (
            ("--card", "body card of --file (default: <robot>.yaml beside it)"),
            ("--ee", "end-effector link or site of --file"),
        ):
            p.add_argument(flag, help=help_)


def load_embodiment(args: argparse.Namespace) -> Embodiment:
    if getattr(args, "file", None):
        from xembody.sim.bodies.loader import load_body

        return load_body(args.file, **card_options(args))
    if not args.body_class:
        raise ValueError("give --class (one of " + ", ".join(registry.names()) + ") or --file")
    return registry.sample(args.body_class, seed=args.seed)


def run_list(args: argparse.Namespace) -> int:
    for name in registry.names():
        gen = registry.get(name)
        print(f"{name}: {gen.summary}")
        for f in dataclasses.fields(gen.ranges_type):
            print(f"    {f.name:<24} {f.default}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    emb = load_embodiment(args)
    path = emb.write(args.out)
    card = write_card(generated_card(emb, path), path.with_suffix(".yaml"))
    model = emb.compile()
    print(
        f"{emb.name}: {emb.body_class}, {emb.num_actions} actuated joints, nq={model.nq}, "
        f"mass={model.body_subtreemass[0]:.2f} kg -> {path} (+ {path.name}.json, {card.name})"
    )
    return 0


def generated_card(emb: Embodiment, robot: Path) -> BodyCard:
    """The card of a generated body: the same fields a loaded body's card has."""
    model = emb.compile()
    feet = [model.site(s).name for s in range(model.nsite) if model.site(s).name.endswith("_foot")]
    return BodyCard(
        robot=robot.name,
        name=emb.name,
        body_class=emb.body_class if emb.body_class in CARD_CLASSES else None,
        base="floating" if emb.floating_base else "fixed",
        ee=emb.sensors.ee_site,
        feet=tuple(feet) or None,
        imu=emb.sensors.imu_site,
        keyframe="home",
    )


def run_check(args: argparse.Namespace) -> int:
    import json

    from xembody.sim.bodies.check import run_checks

    report = _check_report(args)
    emb = report["embodiment"]
    checks = run_checks(emb, args.seconds)
    passed = all(c["passed"] for c in checks)
    doc = {
        "file": report["file"],
        "card": report["card"],
        "body": emb.name,
        "class": emb.body_class,
        "floating_base": emb.floating_base,
        "decisions": report["decisions"],
        "notes": report["notes"],
        "joints": [
            {
                "name": j.name,
                "kp": j.kp,
                "kd": j.kd,
                "effort_limit": j.effort_limit,
                "velocity_limit": j.velocity_limit if math.isfinite(j.velocity_limit) else None,
                "default": j.default,
                "gain_rule": report["gains"].get(j.name, "from the file"),
            }
            for j in emb.joints
        ],
        "checks": checks,
        "passed": passed,
    }
    if args.write_card:
        out = write_card(report["card_out"], args.write_card, notes=report["evidence"])
        doc["card_written"] = str(out)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0 if passed else 1
    print(f"{doc['file']}: {emb.name}, {emb.num_actions} actuated joints")
    if doc["card"]:
        print(f"  card: {doc['card']}")
    for item, d in doc["decisions"].items():
        value = d["value"]
        shown = ", ".join(value) if isinstance(value, list) else value
        shown = "none" if shown in (None, "") else shown
        print(f"  {item:<10} {shown}  [{d['how']}] {d['evidence']}")
    for note in doc["notes"]:
        print(f"  note: {note}")
    for j in doc["joints"]:
        print(
            f"  joint {j['name']:<24} kp {j['kp']:9.4g}  kd {j['kd']:8.4g}  effort "
            f"{j['effort_limit']:7.4g}  ({j['gain_rule']})"
        )
    for c in checks:
        print(f"  check {c['name']}: {'PASS' if c['passed'] else 'FAIL'}: {c['message']}")
    if args.write_card:
        print(f"  card written: {doc['card_written']} (edit it, then check again with --card)")
    return 0 if passed else 1


def _check_report(args: argparse.Namespace) -> dict:
    """The loaded (or generated) body, its decisions, and the card to write."""
    if args.file:
        from xembody.sim.bodies.loader import load_report

        r = load_report(args.file, **card_options(args))
        decisions = {
            k: {"value": d.value, "how": d.how, "evidence": d.evidence}
            for k, d in r.decisions.items()
        }
        robot = Path(r.embodiment.source)
        where = Path(args.write_card).resolve().parent if args.write_card else robot.parent
        card = r.card.merged(
            robot=os.path.relpath(robot.resolve(), where),
            body_class=r.decisions["class"].value,
            base=r.decisions["base"].value,
            ee=r.decisions["ee"].value,
            feet=tuple(r.decisions["feet"].value) or None,
            imu=r.decisions["imu"].value,
            gains=r.card.gains or Gains(),
        )
        evidence = {
            ("class" if k == "class" else k): f"[{d.how}] {d.evidence}"
            for k, d in r.decisions.items()
        }
        evidence["gains"] = "the natural-frequency rule (sim/bodies/gains.py); joints: overrides"
        return {
            "embodiment": r.embodiment,
            "file": str(robot),
            "card": r.card.path,
            "decisions": decisions,
            "notes": r.notes,
            "gains": r.gain_reasons,
            "card_out": card,
            "evidence": evidence,
        }
    if not args.body_class:
        raise ValueError("give a robot FILE (.urdf, .xml, .yaml) or --class for a generated body")
    emb = registry.sample(args.body_class, seed=args.seed)
    card = generated_card(emb, Path(f"{emb.name}.xml"))
    how = f"generator {args.body_class}(seed={args.seed})"
    decisions = {
        "class": emb.body_class,
        "base": card.base,
        "feet": list(card.feet or ()),
        "ee": card.ee,
        "imu": card.imu,
        "base_body": emb.sensors.base_body,
    }
    return {
        "embodiment": emb,
        "file": emb.source,
        "card": "",
        "decisions": {
            k: {"value": v, "how": "file", "evidence": how} for k, v in decisions.items()
        },
        "notes": [],
        "gains": {},
        "card_out": card,
        "evidence": {"class": how},
    }


def run_show(args: argparse.Namespace) -> int:
    import mujoco

    from xembody.sim.render import render_model, save_png

    emb = load_embodiment(args)
    model = emb.compile()
    data = mujoco.MjData(model)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        mujoco.mj_resetDataKeyframe(model, data, key)
    mujoco.mj_forward(model, data)
    img = render_model(model, data, width=args.width, height=args.height)
    out = save_png(img, Path(args.out))
    print(f"{emb.name}: picture -> {out}")
    return 0
