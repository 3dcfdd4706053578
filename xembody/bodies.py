"""`xembody bodies`: list the body generators, sample a body to MJCF, render a picture."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from xembody.sim import bodies as registry
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


def _body_args(p: argparse.ArgumentParser, allow_file: bool) -> None:
    p.add_argument("--class", dest="body_class", help=f"one of {registry.names()}")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    if allow_file:
        p.add_argument("--file", help="an MJCF (.xml) or URDF (.urdf) file instead of --class")


def load_embodiment(args: argparse.Namespace) -> Embodiment:
    if getattr(args, "file", None):
        from xembody.sim.bodies.loader import load_body

        return load_body(args.file)
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
    model = emb.compile()
    print(
        f"{emb.name}: {emb.body_class}, {emb.num_actions} actuated joints, nq={model.nq}, "
        f"mass={model.body_subtreemass[0]:.2f} kg -> {path} (+ {path.name}.json)"
    )
    return 0


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
